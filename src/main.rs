//! The `idp-graph` command: parse the CLI, load settings, start telemetry, build, run.
//! Exit codes: 0 ok, 1 runtime failure, 64 bad usage or config (EX_USAGE).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use idp_graph::app::{App, AppError};
use idp_graph::config::Settings;
use idp_graph::demo::{DemoOptions, DemoWorld};
use idp_graph::telemetry::{self, LogFormat};

const EX_USAGE: u8 = 64;

/// `idp-graph --version`: the crate's version and the commit it was built from (build.rs records
/// it: the Docker build passes it in, release builds ask git), so a running image can be traced
/// back to its source.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IDP_GRAPH_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "idp-graph",
    version = VERSION,
    about = "One GraphQL endpoint over Backstage, ArgoCD, Kubernetes and GitHub"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start simulated upstreams on loopback and the server against them.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Generated services to add (catalog entity, ArgoCD app and repo each).
        #[arg(long, default_value_t = 0)]
        scale: usize,
        /// No scripted weather (pushes, syncs, degradations): a quiet world for measurements.
        #[arg(long)]
        no_weather: bool,
        /// `auth.mode: none`: every caller may do everything (local measurements only).
        #[arg(long)]
        no_auth: bool,
    },
    /// Start only the simulated upstreams (no server); prints one JSON line with their URLs.
    /// For pointing `serve`, kubectl or curl at the demo world, and for benchmarks.
    Simulate {
        #[arg(long, default_value_t = 0)]
        scale: usize,
        /// Run the scripted weather (pushes, syncs, an app that degrades).
        #[arg(long)]
        weather: bool,
        /// Extra Deployments in the Kubernetes simulation (5 pods each, with realistic
        /// `managedFields` and last-applied annotations), spread over 100 namespaces.
        #[arg(long, default_value_t = 0)]
        kube_scale: usize,
    },
    /// Serve against real upstreams.
    Serve {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Follow a subscription and print each event as one JSON line (reconnects, resumes from
    /// the last `cursor` when the subscription declares `$after`).
    Watch {
        /// The server (http://host:port or a ws:// URL).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Environment variable holding a bearer token.
        #[arg(long)]
        token_env: Option<String>,
        /// Variables as a JSON object.
        #[arg(long, default_value = "{}")]
        variables: String,
        /// Stop after this many events.
        #[arg(long)]
        max_events: Option<usize>,
        /// Send the operation's SHA-256 instead of its text (APQ; required by a server in
        /// trusted-documents mode); the text only when the server asks for it.
        #[arg(long)]
        persisted: bool,
        /// The subscription, e.g. 'subscription { healthTransitions { kind from to application { name } } }'.
        query: String,
    },
    /// The chatops bot: follows the server's subscriptions (with durable cursors) and posts
    /// to Slack and webhooks; answers Slack slash commands on `listen`, as the Slack user.
    Notify {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the GraphQL schema (SDL).
    Schema {
        /// The Apollo Federation v2 subgraph SDL (what `_service { sdl }` answers with
        /// `federation.enabled`).
        #[arg(long)]
        federation: bool,
    },
    /// Validate a config file and its credentials' presence; say precisely what is wrong.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EX_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Schema { federation } => {
            if federation {
                print!("{}", idp_graph::graph::federation_sdl());
            } else {
                print!("{}", idp_graph::graph::sdl());
            }
            ExitCode::SUCCESS
        }
        Command::CheckConfig { config } => match load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Serve { config, listen } => {
            let (mut settings, secrets) = match load(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            if let Some(l) = listen {
                settings.listen = l;
            }
            let _telemetry = match telemetry::init(cli.log_format, &settings.telemetry) {
                Ok(guard) => guard,
                Err(message) => {
                    eprintln!("{}: {message}", config.display());
                    return ExitCode::from(64);
                }
            };
            run(async move {
                let app = App::build(settings, secrets).await?;
                tracing::info!(
                    url = %format!("http://{}/graphql", app.local_addr()),
                    version = VERSION,
                    "serving"
                );
                serve(app).await
            })
        }
        Command::Watch {
            url,
            token_env,
            variables,
            max_events,
            persisted,
            query,
        } => {
            let _telemetry = telemetry::init(cli.log_format, &Default::default());
            let token = match token_env {
                None => None,
                Some(var) => match std::env::var(&var) {
                    Ok(v) if !v.trim().is_empty() => {
                        Some(secrecy::SecretString::from(v.trim().to_string()))
                    }
                    _ => {
                        eprintln!("error: --token-env: environment variable {var} is not set");
                        return ExitCode::from(EX_USAGE);
                    }
                },
            };
            let variables: serde_json::Value = match serde_json::from_str(&variables) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: --variables is not JSON: {e}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let opts = idp_graph::watch::WatchOptions {
                url,
                token,
                query,
                variables,
                max_events,
                persisted,
                after: None,
            };
            let mut stdout = std::io::stdout();
            match rt.block_on(idp_graph::watch::run(opts, &mut stdout)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(idp_graph::watch::WatchError::Usage(m)) => {
                    eprintln!("error: {m}");
                    ExitCode::from(EX_USAGE)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Notify { config } => {
            let settings = match idp_graph::notify::NotifySettings::load(&config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            let secrets = match settings.resolve_secrets() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            let _telemetry = telemetry::init(cli.log_format, &Default::default());
            run(async move {
                let shutdown = tokio_util::sync::CancellationToken::new();
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    wait_for_signal().await;
                    stop.cancel();
                });
                idp_graph::notify::run(settings, secrets, shutdown).await?;
                Ok(())
            })
        }
        Command::Simulate {
            scale,
            weather,
            kube_scale,
        } => {
            let _telemetry = telemetry::init(cli.log_format, &Default::default());
            run(async move {
                let opts = DemoOptions {
                    scale,
                    weather,
                    kube_scale,
                    ..DemoOptions::default()
                };
                let world = DemoWorld::start(&opts).await?;
                println!(
                    "{}",
                    serde_json::json!({
                        "token": idp_graph::demo::DEMO_TOKEN,
                        "backstage": world.backstage.url(),
                        "argocd": world.argocd.url(),
                        "github": world.github.url(),
                        "kubernetes": world.kubernetes.url(),
                        "slack": world.slack.api_url(),
                    })
                );
                wait_for_signal().await;
                world.stop();
                Ok(())
            })
        }
        Command::Demo {
            listen,
            scale,
            no_weather,
            no_auth,
        } => {
            let _telemetry = telemetry::init(cli.log_format, &Default::default());
            run(async move {
                let opts = DemoOptions {
                    scale,
                    weather: !no_weather,
                    auth: !no_auth,
                    ..DemoOptions::default()
                };
                let world = DemoWorld::start(&opts).await?;
                let (mut settings, secrets) = world.settings(&opts);
                settings.listen = listen;
                let app = App::build(settings, secrets).await?;
                let addr = app.local_addr();
                println!("idp-graph demo");
                println!("  GraphiQL:          http://{addr}/");
                println!("  GraphQL:           http://{addr}/graphql");
                println!("  subscriptions:     ws://{addr}/graphql/ws");
                println!(
                    "  simulated upstreams (bearer token `{}`):",
                    idp_graph::demo::DEMO_TOKEN
                );
                println!("    backstage        {}", world.backstage.url());
                println!("    argocd (main)    {}", world.argocd.url());
                println!("    github           {}", world.github.url());
                println!(
                    "    kubernetes       {}  (kubectl --server {} get pods -A)",
                    world.kubernetes.url(),
                    world.kubernetes.url()
                );
                println!(
                    "    slack            {}  (bot token `{}`, signing secret `{}`)",
                    world.slack.api_url(),
                    idp_graph::demo::slack::DEMO_BOT_TOKEN,
                    idp_graph::demo::slack::DEMO_SIGNING_SECRET
                );
                if opts.auth {
                    println!("  auth: Backstage user tokens (anonymous callers are read-only); one per persona:");
                    for (persona, groups, token) in world.persona_tokens() {
                        println!("  {persona} ({groups})  Bearer {token}");
                    }
                }
                serve(app).await?;
                world.stop();
                Ok(())
            })
        }
    }
}

fn load(
    path: &std::path::Path,
) -> Result<(Settings, idp_graph::config::ResolvedSecrets), ExitCode> {
    let settings = Settings::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EX_USAGE)
    })?;
    let secrets = settings.resolve_secrets().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EX_USAGE)
    })?;
    Ok((settings, secrets))
}

fn run(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "idp-graph stopped");
            eprintln!("error: {e:#}");
            // The server's own failures say which code they end with (a config it cannot use:
            // 64); anything else (the demo's simulations, the runtime) is a runtime failure.
            match e.downcast_ref::<AppError>() {
                Some(app) => ExitCode::from(app.exit_code()),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// Runs until SIGTERM or Ctrl-C.
async fn serve(app: App) -> anyhow::Result<()> {
    let token = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        token.cancel();
    });
    app.run_until_stopped().await?;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
