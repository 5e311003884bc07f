//! The chatops bot as a library call: what `idp-graph notify --config notify.yaml` runs
//! (`idp_graph::notify`), for embedding it in a program of your own. The bot itself —
//! triggers, routing by the catalog, Slack Block Kit and webhooks with retries, the durable
//! cursor, slash commands as the Slack user — lives in `src/notify/`; README "Chatops".
//!
//!     cargo run --example chatops_bot -- notify.yaml

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: chatops_bot <notify.yaml>");
        return ExitCode::from(64);
    };
    let settings = match idp_graph::notify::NotifySettings::load(path.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(64);
        }
    };
    let secrets = match settings.resolve_secrets() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(64);
        }
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    match idp_graph::notify::run(settings, secrets, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
