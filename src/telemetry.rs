//! Structured logs and traces through `tracing`.
//!
//! Logs: human-readable by default, JSON lines with `--log-format json`. Messages are fixed
//! strings; data goes in fields.
//!
//! Traces (`telemetry.otlp` in the config): every span of this crate becomes an OpenTelemetry
//! span, exported over OTLP/HTTP (protobuf) in batches — the operation (`graphql.operation`,
//! with its name, document hash and the caller's subject), each upstream request under it
//! ([`upstream_span`]), and each source sync. W3C trace context flows both ways: an incoming
//! `traceparent` becomes the operation's parent ([`set_remote_parent`]), and every upstream
//! request carries the current span's ([`inject`]). Without `telemetry.otlp`, no OpenTelemetry
//! layer is installed and both are no-ops.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `telemetry:` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// Export traces over OTLP/HTTP; none: no traces.
    pub otlp: Option<OtlpSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSettings {
    /// The collector's OTLP/HTTP base URL (`http://otel-collector:4318`); spans are POSTed to
    /// `{endpoint}/v1/traces` as protobuf. Plain `http://` only: run a collector beside the
    /// server (sidecar or node agent) to forward over TLS.
    pub endpoint: String,
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Fraction of new traces sampled (0 to 1); a caller's `traceparent` decides for its own.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// How often a batch of finished spans is sent.
    #[serde(default = "default_export_interval_ms")]
    pub export_interval_ms: u64,
}

fn default_service_name() -> String {
    "idp-graph".into()
}
fn default_sample_ratio() -> f64 {
    1.0
}
fn default_export_interval_ms() -> u64 {
    5000
}

impl TelemetrySettings {
    /// Config errors as (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let Some(o) = &self.otlp else { return Ok(()) };
        let url = url::Url::parse(&o.endpoint)
            .map_err(|e| ("telemetry.otlp.endpoint".to_string(), e.to_string()))?;
        if url.scheme() != "http" {
            return Err((
                "telemetry.otlp.endpoint".into(),
                "must be an http:// URL (OTLP/HTTP to a local collector)".into(),
            ));
        }
        if !(0.0..=1.0).contains(&o.sample_ratio) {
            return Err((
                "telemetry.otlp.sample_ratio".into(),
                "must be between 0 and 1".into(),
            ));
        }
        if o.export_interval_ms == 0 {
            return Err((
                "telemetry.otlp.export_interval_ms".into(),
                "must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Keeps the trace pipeline alive; dropping it flushes the last spans.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber: logs (`RUST_LOG` overrides the default level, `info`) and,
/// when configured, the OTLP trace export of this crate's spans (independent of `RUST_LOG`).
/// Call it outside the async runtime: the exporter owns a blocking HTTP client.
pub fn init(format: LogFormat, settings: &TelemetrySettings) -> Result<TelemetryGuard, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let (traces, provider) = match &settings.otlp {
        None => (None, None),
        Some(o) => {
            let provider = tracer_provider(o)?;
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("idp-graph"))
                .with_filter(
                    Targets::new()
                        .with_target("idp_graph", LevelFilter::INFO)
                        .with_default(LevelFilter::OFF),
                );
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            (Some(layer), Some(provider))
        }
    };
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(o: &OtlpSettings) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let endpoint = format!("{}/v1/traces", o.endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(10))
        .with_headers(Default::default())
        .build()
        .map_err(|e| format!("telemetry.otlp: {e}"))?;
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(o.export_interval_ms))
                .build(),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            o.sample_ratio,
        ))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(o.service_name.clone())
                .build(),
        )
        .build())
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes the current span's W3C trace context (`traceparent`) into outgoing headers.
pub fn inject(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Makes a caller's `traceparent` (if any, and valid) the parent of `span`.
pub fn set_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key("traceparent") {
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(cx);
    }
}

/// The span of one request to an upstream: a child of whatever is current (an operation, a
/// sync), named by source and method so that names stay few; the path is an attribute.
pub fn upstream_span(source: &str, method: &str, url: &url::Url) -> tracing::Span {
    tracing::info_span!(
        "upstream.request",
        otel.name = %format!("{source} {method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        upstream.source = %source,
        http.request.method = %method,
        server.address = %url.host_str().unwrap_or(""),
        url.path = %url.path(),
        http.response.status_code = tracing::field::Empty,
    )
}

/// Records an upstream response (or failure) on its span.
pub fn record_response(span: &tracing::Span, status: Option<u16>) {
    match status {
        Some(s) => {
            span.record("http.response.status_code", s);
            if s >= 500 {
                span.record("otel.status_code", "ERROR");
            }
        }
        None => {
            span.record("otel.status_code", "ERROR");
        }
    }
}
