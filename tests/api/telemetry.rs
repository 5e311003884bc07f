//! OpenTelemetry: `idp-graph serve` with `telemetry.otlp` exports spans over OTLP/HTTP
//! (protobuf) to a local receiver — the operation as a child of the caller's `traceparent`,
//! upstream requests under it, source syncs — and the simulated upstream sees the same trace.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use idp_graph::demo::{DemoOptions, DemoWorld};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use prost::Message;
use serde_json::json;

use crate::helpers::{serve_process, wait_for, wait_ready_at};

const WAIT: Duration = Duration::from_secs(20);

/// An OTLP/HTTP trace receiver: decodes every export with the official protobuf types.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Default::default();
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("valid OTLP protobuf");
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref())
                        .and_then(|v| v.value.clone());
                    assert_eq!(
                        service,
                        Some(AnyValue::StringValue("idp-graph-test".into()))
                    );
                    for ss in rs.scope_spans {
                        sink.lock().extend(ss.spans);
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| match &v.value {
            Some(AnyValue::StringValue(s)) => Some(s.clone()),
            Some(AnyValue::IntValue(i)) => Some(i.to_string()),
            _ => None,
        })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn one_query_is_one_trace_from_the_caller_through_the_upstreams() {
    let (endpoint, spans) = receiver().await;
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let server = serve_process(
        &world,
        &format!(
            "telemetry: {{ otlp: {{ endpoint: '{endpoint}', service_name: idp-graph-test, export_interval_ms: 100 }} }}\n"
        ),
    );
    wait_ready_at(&server.base, WAIT).await;

    // The caller is part of a trace already.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let query = r#"query ServicePage { repository(slug: "yourcompany/sample-app") { pullRequests { number } }
        application(name: "sample-app") { resourceTree { nodes { kind } } } }"#;
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/graphql", server.base))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["errors"].is_null(), "{body}");

    // The operation span: a child of the caller's span, named for the operation, with the
    // document's hash and the caller.
    let op = wait_for("the operation span", WAIT, || async {
        spans
            .lock()
            .iter()
            .find(|s| hex(&s.trace_id) == trace_id && s.name == "query ServicePage")
            .cloned()
    })
    .await;
    assert_eq!(hex(&op.parent_span_id), caller_span);
    use sha2::Digest;
    assert_eq!(
        attr(&op, "graphql.document.hash"),
        Some(hex(&sha2::Sha256::digest(query.as_bytes())))
    );
    assert_eq!(
        attr(&op, "graphql.operation.type").as_deref(),
        Some("query")
    );
    assert!(attr(&op, "enduser.id").is_some());

    // Upstream requests under it, one per source asked.
    let children = wait_for("upstream spans of both sources", WAIT, || async {
        let all = spans.lock();
        let children: Vec<Span> = all
            .iter()
            .filter(|s| s.parent_span_id == op.span_id && s.name.ends_with(" GET"))
            .cloned()
            .collect();
        let names: std::collections::BTreeSet<&str> =
            children.iter().map(|s| s.name.as_str()).collect();
        (names.contains("github GET") && names.contains("argocd GET")).then_some(children)
    })
    .await;
    // The repository through the request's loader (its own task, same trace) and the pull
    // requests directly.
    let github_paths: std::collections::BTreeSet<String> = children
        .iter()
        .filter(|s| s.name == "github GET")
        .filter_map(|s| attr(s, "url.path"))
        .collect();
    assert!(
        github_paths.contains("/repos/yourcompany/sample-app")
            && github_paths.contains("/repos/yourcompany/sample-app/pulls"),
        "{github_paths:?}"
    );
    let github = children.iter().find(|s| s.name == "github GET").unwrap();
    assert_eq!(hex(&github.trace_id), trace_id);
    assert_eq!(
        attr(github, "http.response.status_code").as_deref(),
        Some("200")
    );

    // The upstreams saw the trace: the `traceparent` each got names our trace and its span.
    for (sim, child) in [
        (&world.github.faults, github),
        (
            &world.argocd.faults,
            children.iter().find(|s| s.name == "argocd GET").unwrap(),
        ),
    ] {
        let expected = format!("00-{trace_id}-{}-01", hex(&child.span_id));
        assert!(
            sim.traceparents().contains(&expected),
            "{expected} not in {:?}",
            sim.traceparents()
        );
    }

    // Source syncs are traced too, each its own trace (a root span), with its requests.
    wait_for("a catalog sync span", WAIT, || async {
        spans
            .lock()
            .iter()
            .any(|s| s.name == "backstage sync" && s.parent_span_id.is_empty())
            .then_some(())
    })
    .await;
    let syncs: Vec<Span> = spans
        .lock()
        .iter()
        .filter(|s| s.name == "backstage sync")
        .cloned()
        .collect();
    assert!(syncs.iter().any(|sync| spans
        .lock()
        .iter()
        .any(|s| s.parent_span_id == sync.span_id && s.name == "backstage GET")));
}
