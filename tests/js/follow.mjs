// Follows one subscription with a real client and prints every result as one JSON line.
//   node follow.mjs <transport> <http-base-url> <count> <query> [variables-json]
// transport: graphql-ws | graphql-sse | legacy (subscriptions-transport-ws).
// Prints {"ready":true} after the first result arrives (send `initial: true` so it comes at once),
// then exits 0 after <count> further results, or 1 on an error or after 30 s.
import WebSocket from 'ws';

const [transport, base, countArg, query, vars] = process.argv.slice(2);
const count = Number(countArg);
const variables = vars ? JSON.parse(vars) : {};
const wsUrl = base.replace(/^http/, 'ws') + '/graphql/ws';
let seen = -1;
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const done = (code) => { setTimeout(() => process.exit(code), 10); };
setTimeout(() => { out({ error: 'timeout' }); done(1); }, 30000);

function onResult(result) {
  seen += 1;
  if (seen === 0) { out({ ready: true, result }); return; }
  out(result);
  if (seen >= count) done(0);
}
function onError(err) { out({ error: String(err && (err.message || err.reason || JSON.stringify(err))) }); done(1); }

if (transport === 'graphql-ws') {
  const { createClient } = await import('graphql-ws');
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  client.subscribe({ query, variables }, { next: onResult, error: onError, complete: () => { out({ complete: true }); done(0); } });
} else if (transport === 'graphql-sse') {
  const { createClient } = await import('graphql-sse');
  const client = createClient({ url: base + '/graphql/sse', retryAttempts: 0 });
  client.subscribe({ query, variables }, { next: onResult, error: onError, complete: () => { out({ complete: true }); done(0); } });
} else if (transport === 'legacy') {
  const { SubscriptionClient } = await import('subscriptions-transport-ws');
  const client = new SubscriptionClient(wsUrl, { reconnect: false }, WebSocket);
  client.onDisconnected(() => { out({ disconnected: true }); done(0); });
  client.request({ query, variables }).subscribe({ next: onResult, error: onError, complete: () => { out({ complete: true }); done(0); } });
} else {
  onError(`unknown transport ${transport}`);
}
