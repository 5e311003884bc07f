# The shipped image: a Node stage bundles ui/, a Rust stage builds the server with that bundle
# embedded (build.rs reads IDP_GRAPH_UI_DIST instead of running npm), and the binary alone runs as
# non-root on distroless.
#
#   docker build --build-arg VERSION=0.1.0 --build-arg GIT_COMMIT="$(git rev-parse HEAD)" \
#     -t ghcr.io/yourcompany/idp-graph:0.1.0 .
#
# CI has no container runtime: scripts/check-image.sh copies exactly what the COPY lines name into
# an empty directory and runs these stages' commands there. So RUN and ENV use paths relative to
# WORKDIR, and every instruction is one of those that script knows.

FROM node:20-bookworm-slim AS ui
WORKDIR /ui
# The lock file alone decides the dependency layer, so editing ui/src reuses it.
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY ui/build.mjs ./
COPY ui/src ./src
RUN node build.mjs dist

# The toolchain CI builds and tests with (rust-version in Cargo.toml is the floor, not the target).
FROM rust:1.95-bookworm AS build
WORKDIR /src
# benches/ only because Cargo.toml declares its targets (cargo refuses a manifest whose targets'
# files are missing); migrations/ is compiled in (src/auth/audit_store.rs), build.rs embeds the UI.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY migrations ./migrations
COPY --from=ui /ui/dist ./ui-dist
# The context has no .git: the commit comes in as a build arg, and `idp-graph --version` prints it.
ARG GIT_COMMIT=unknown
ENV IDP_GRAPH_UI_DIST=ui-dist IDP_GRAPH_GIT_COMMIT=${GIT_COMMIT}
RUN cargo build --locked --profile dist --bin idp-graph

# glibc and libgcc only (rustls, no OpenSSL; jemalloc is linked in), CA certificates, uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="idp-graph" \
      org.opencontainers.image.description="One GraphQL endpoint over Backstage, ArgoCD, Kubernetes and GitHub" \
      org.opencontainers.image.source="https://github.com/yourcompany/idp" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}"
COPY --from=build /src/target/dist/idp-graph /usr/local/bin/idp-graph
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/idp-graph"]
CMD ["serve", "--config", "/etc/idp-graph/config.yaml"]
