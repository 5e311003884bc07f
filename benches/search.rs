//! `search` over 10,000 catalog entities and 8,000 ArgoCD applications, in process: the state's
//! ranked scan alone, and the whole GraphQL query (visibility, paging, serialization) through
//! the real schema. Issue #15 asks for a median under 5 ms.

use criterion::{criterion_group, criterion_main, Criterion};
use idp_graph::auth::Principal;
use idp_graph::domain::argocd::{
    AppKey, AppSource, Application, Destination, HealthStatus, SyncStatus,
};
use idp_graph::graph::{build_schema, GraphContext, Limits};
use idp_graph::sources::backstage::parse_entity;
use idp_graph::state::{AppWriter, CatalogWriter, SourceKind, State};
use serde_json::json;

const ENTITIES: usize = 10_000;
const APPS: usize = 8_000;

fn app(i: usize) -> Application {
    let key = AppKey {
        instance: "main".into(),
        namespace: "argocd".into(),
        name: format!("svc-{i:05}"),
    };
    Application {
        project: "applications".into(),
        sources: vec![AppSource {
            repo_url: format!("https://github.com/yourcompany/svc-{i:05}.git"),
            ..Default::default()
        }],
        destination: Destination {
            server: None,
            name: Some("demo".into()),
            namespace: Some(format!("ns-{}", i % 100)),
        },
        auto_sync: true,
        sync_status: SyncStatus::Synced,
        health: HealthStatus::Healthy,
        ..Application::named(key)
    }
}

fn world() -> std::sync::Arc<State> {
    let state = State::new();
    let entities = (0..ENTITIES)
        .map(|i| {
            parse_entity(json!({
                "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": format!("svc-{i:05}"), "namespace": "default",
                    "title": format!("Service {i}"), "description": "A generated payments-ish service",
                    "tags": ["generated"],
                    "annotations": {"argocd/app-name": format!("svc-{i:05}"), "github.com/project-slug": format!("yourcompany/svc-{i:05}")}},
                "spec": {"type": "service", "lifecycle": "production", "owner": "app-team"}
            }))
            .expect("a valid entity")
        })
        .collect();
    let health = state
        .sources
        .register("backstage", SourceKind::Backstage, "http://bench");
    CatalogWriter::new(state.clone(), health).observe_list(entities, 0.0);
    let apps = AppWriter::new(state.clone(), "main");
    for i in 0..APPS {
        apps.observe(app(i));
    }
    state
}

fn bench(c: &mut Criterion) {
    let state = world();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let schema = build_schema(GraphContext::bare(state.clone(), Limits::default()));
    let mut g = c.benchmark_group("search");
    g.sample_size(30);
    for text in ["svc-04200", "svc-042", "payments"] {
        g.bench_function(format!("state/{text}"), |b| {
            b.iter(|| state.search(text, &[]).len())
        });
        let query = format!(
            r#"{{ search(text: "{text}", first: 20) {{ totalCount edges {{ node {{ kind rank name }} }} }} }}"#
        );
        g.bench_function(format!("graphql/{text}"), |b| {
            b.to_async(&rt).iter(|| async {
                let r = schema
                    .execute(
                        async_graphql::Request::new(query.as_str()).data(Principal::unrestricted()),
                    )
                    .await;
                assert!(r.errors.is_empty(), "{:?}", r.errors);
                serde_json::to_string(&r).expect("serializes").len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
