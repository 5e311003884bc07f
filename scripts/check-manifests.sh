#!/usr/bin/env bash
# Renders every kustomization and validates each built-in object against its Kubernetes schema
# (kubernetes-validate from PyPI, offline, strict: unknown fields fail). ArgoCD's own kinds
# (Application, AppProject) are checked by tests/deploy.rs against typed structs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "kubectl is needed to render the manifests" >&2; exit 1; }
command -v kubernetes-validate >/dev/null || { echo "kubernetes-validate is needed (pip install kubernetes-validate)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for dir in deploy deploy/namespaces gitops/overlays/dev gitops/overlays/staging gitops/overlays/prod; do
  kubectl kustomize "$dir" > "$out/rendered.yaml"
  kubernetes-validate --strict --quiet "$out/rendered.yaml"
  echo "manifests: $dir renders and validates ($(grep -c '^kind:' "$out/rendered.yaml") objects)"
done
