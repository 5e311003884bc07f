# Multi-stage build: a static-enough release binary on a distroless, non-root base.
#   docker build -t ghcr.io/yourcompany/idp-graph:0.1.0 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY schema.graphql ./
RUN cargo build --release --locked --bin idp-graph

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/idp-graph /usr/local/bin/idp-graph
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/idp-graph"]
CMD ["serve", "--config", "/etc/idp-graph/config.yaml"]
