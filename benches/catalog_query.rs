//! The components query of the skeleton issue, executed by the real schema against the
//! in-memory catalog (1,000 and 10,000 entities), beside serde_json serializing the same rows.
//! The ratio of the two is the figure: what the GraphQL layer costs over bare serialization.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use idp_graph::auth::Principal;
use idp_graph::demo::{seed, BackstageSim, DEMO_TOKEN};
use idp_graph::domain::{Entity, RelationType};
use idp_graph::graph::{build_schema, AppSchema, GraphContext, Limits};
use idp_graph::sources::backstage::parse_entity;
use idp_graph::state::{CatalogWriter, SourceKind, State};
use serde::Serialize;

const QUERY: &str = r#"query($n:Int){ entities(filter:{kind:"Component"}, first:$n) { totalCount nodes { ref name ... on Component { owner { ref } system { ref } } } } }"#;

#[derive(Serialize)]
struct RefOnly {
    #[serde(rename = "ref")]
    r: String,
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "ref")]
    r: String,
    name: String,
    owner: Option<RefOnly>,
    system: Option<RefOnly>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    entities: Conn<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Conn<'a> {
    total_count: usize,
    nodes: &'a [Row],
}

fn catalog(rt: &tokio::runtime::Runtime, scale: usize) -> Vec<Entity> {
    rt.block_on(async {
        let token = tokio_util::sync::CancellationToken::new();
        let sim = BackstageSim::start(seed::catalog(scale), DEMO_TOKEN, token.clone())
            .await
            .expect("simulation starts");
        let entities = sim
            .entities()
            .into_iter()
            .map(|v| parse_entity(v).expect("seed entities parse"))
            .collect();
        token.cancel();
        entities
    })
}

fn schema_over(entities: Vec<Entity>) -> (AppSchema, Arc<State>) {
    let state = State::new();
    let health = state
        .sources
        .register("backstage", SourceKind::Backstage, "http://bench");
    CatalogWriter::new(state.clone(), health).observe_list(entities, 0.0);
    let limits = Limits {
        max_page_size: 100_000,
        max_complexity: usize::MAX,
        ..Limits::default()
    };
    let schema = build_schema(GraphContext::bare(state.clone(), limits));
    (schema, state)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("components_query");
    group.sample_size(20);
    for total in [1_000usize, 10_000] {
        // seed::catalog adds 21 fixed entities to `scale` generated components.
        let entities = catalog(&rt, total - 21);
        let (schema, state) = schema_over(entities);
        let snapshot = state.catalog.snapshot();
        let n_components = snapshot
            .entities
            .iter()
            .filter(|e| e.kind_name == "Component")
            .count();
        group.throughput(Throughput::Elements(n_components as u64));

        group.bench_with_input(BenchmarkId::new("graphql", total), &total, |b, _| {
            b.to_async(&rt).iter(|| async {
                let req = async_graphql::Request::new(QUERY)
                    .variables(async_graphql::Variables::from_json(
                        serde_json::json!({ "n": n_components }),
                    ))
                    .data(Principal::unrestricted());
                let resp = schema.execute(req).await;
                assert!(resp.errors.is_empty(), "{:?}", resp.errors);
                serde_json::to_string(&resp).unwrap()
            })
        });

        // The baseline gets the answer's rows for free, built once outside the timing:
        // it measures serialization alone.
        let first = |e: &Entity, rel: RelationType, kind: &str| {
            snapshot
                .edges(&e.ref_string)
                .iter()
                .filter(|r| r.kind == rel)
                .filter_map(|r| snapshot.at(r.target?))
                .find(|t| t.entity_ref.kind() == kind)
                .map(|t| RefOnly {
                    r: t.ref_string.clone(),
                })
        };
        let rows: Vec<Row> = snapshot
            .entities
            .iter()
            .filter(|e| e.kind_name == "Component")
            .map(|e| Row {
                r: e.ref_string.clone(),
                name: e.name.clone(),
                owner: first(e, RelationType::OwnedBy, "group"),
                system: first(e, RelationType::PartOf, "system"),
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("serde_json", total), &total, |b, _| {
            b.iter(|| {
                serde_json::to_string(&Envelope {
                    data: Data {
                        entities: Conn {
                            total_count: rows.len(),
                            nodes: &rows,
                        },
                    },
                })
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
