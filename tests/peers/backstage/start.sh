#!/usr/bin/env bash
# Starts the real Backstage peer on 127.0.0.1:PORT and waits until its catalog holds every
# entity of catalog.yaml. Prints the PID as the last line of stdout.
#   tests/peers/backstage/start.sh PORT TOKEN
# Env: PEER_PLUGINS (catalog, scaffolder, auth, app; see server.js), PEER_APP (the built
# frontend package the app plugin serves), APP_CONFIG_* (Backstage's config overrides).
# Installs node_modules first if they are missing (better-sqlite3 compiles from source).
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$DIR"
PORT="${1:?usage: start.sh PORT TOKEN}"
TOKEN="${2:?usage: start.sh PORT TOKEN}"
if [[ ! -d node_modules/@backstage/plugin-app-backend || ! -d node_modules/better-sqlite3/build ]]; then
  [[ -f /usr/include/node/node.h ]] && export npm_config_nodedir=/usr
  npm ci --no-audit --no-fund >&2
fi
if [[ -n "${PEER_APP:-}" ]]; then
  # The app backend serves the package named `app` (app.packageName): the built frontend.
  [[ -f "$PEER_APP/dist/index.html" ]] || { echo "no built app at $PEER_APP/dist" >&2; exit 1; }
  ln -sfn "$PEER_APP" node_modules/app
fi
expected=$(( $(grep -c '^kind:' catalog.yaml) + 1 ))   # + the Location entity Backstage generates
LOG="${PEER_LOG:-$DIR/peer-$PORT.log}"
PEER_PORT="$PORT" PEER_TOKEN="$TOKEN" PEER_CATALOG="$DIR/catalog.yaml" NODE_ENV=production \
  nohup node server.js --config "$DIR/backstage.yaml" >"$LOG" 2>&1 </dev/null &
PID=$!
deadline=$(( $(date +%s) + ${PEER_READY_TIMEOUT:-120} ))
while :; do
  kill -0 "$PID" 2>/dev/null || { echo "peer exited early; log:" >&2; tail -20 "$LOG" >&2; exit 1; }
  n=$(curl -sf --max-time 2 -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$PORT/api/catalog/entities/by-query?limit=1&fields=kind" \
      | sed -n 's/.*"totalItems":\([0-9]*\).*/\1/p' || true)
  [[ -n "$n" && "$n" -ge "$expected" ]] && break
  (( $(date +%s) < deadline )) || { echo "peer catalog not loaded (${n:-?}/$expected); log:" >&2; tail -20 "$LOG" >&2; kill "$PID"; exit 1; }
  sleep 0.3
done
echo "$PID"
