//! Black-box tests: the real server on port 0 against the simulated upstreams (and the real
//! Backstage backend where available), spoken to over HTTP and websockets.

// ArgoCD in the graph: applications from list + stream, joins, actions, several instances.
mod argocd;
// The durable audit trail against a real PostgreSQL: restarts, replicas, backlog, refusals.
mod audit_pg;
// Who may see and do what: tokens on every transport, personas, allowed and denied actions.
mod auth;
// `serve` against the real Backstage catalog backend: same entities and relations.
mod backstage_real;
// The Backstage plugin (plugins/backstage) in a real Backstage app and backend, in Chromium.
mod backstage_plugin;
// The Backstage simulation behaves like the real catalog backend on the wire.
mod backstage_sim;
// The security boundary at its edges: repositories, template tasks, take-overs, sources,
// upstream errors, anonymous callers, /metrics, cursors — each attack replayed per persona.
mod boundary;
// The playground and portal in headless Chromium, checked against the GraphQL API.
mod browser;
// The response cache: hits, invalidation on change, no sharing across callers, ETag/304.
mod cache;
// The catalog in the graph: listing, paging, filters, relations, lookups, freshness.
mod catalog;
// Upstream streams and watches killed under subscriber load: nothing lost, nothing repeated.
mod chaos;
// The command line: schema drift, config validation, exit codes.
mod cli;
// The fault matrix: each upstream x each fault x each kind of query, and recovery.
mod faults;
// Apollo Federation subgraph mode, and composition through a real gateway.
mod federation;
// GitHub in the graph: repositories, commits behind revisions, the request budget.
mod github;
// The GitHub simulation's answers validated against GitHub's OpenAPI description.
mod github_schema;
// Production switches: introspection, suggestions, CORS, rate limit, metrics listener.
mod hardening;
// Not tests: spawning the app against a demo world, clients, waiting on conditions.
mod helpers;
// Hostile input: the generated request corpus, garbage frames, slowloris.
mod hostile;
// GraphQL over HTTP as the spec says, limits; health, readiness and graceful shutdown.
mod http;
// Kubernetes through the graph: the kube-rs watchers against the API simulation.
mod kubernetes;
// The Kubernetes API simulation speaks the real protocol (kubectl, watches).
mod kubernetes_sim;
// Live updates through real client libraries: protocols, close codes, cursor resume.
mod live;
// Global object identification: `node(id:)`, `nodes(ids:)`, stable and opaque ids.
mod node;
// `idp-graph notify` against the simulated Slack: routing, kill -9, 429, slash commands.
mod notify;
// Persisted operations on every transport: APQ and trusted documents.
mod persisted;
// One table of bad operations, the same code over every transport.
mod pipeline;
// Several `serve` processes sharing one change log on a real Redis (`cluster:`).
mod replicas;
// Replicas sharing state on a real Redis: APQ, one rate limit, webhooks once, GitHub's cache.
mod shared_state;
// `entityEvents` over graphql-transport-ws: catalog changes arrive live.
mod subscriptions;
// OpenTelemetry: spans exported over OTLP, `traceparent` in and out.
mod telemetry;
// Creating a service from a template and watching it appear and sync.
mod templates;
// Not tests: each upstream's truth beside the graph's state, for chaos and faults.
mod truth;
// `idp-graph watch`: JSON lines, reconnect and resume from the cursor.
mod watch;
// GitHub webhooks: verified deliveries applied at once, bad signatures refused.
mod webhooks;
// The four simulations agree with each other (one consistent demo world).
mod world;
// workloadEvents: pods and Warning events in trouble, joined, filtered, per caller.
mod workloads;
