// The portal's only way to the server: the public GraphQL API. Queries and mutations over
// POST /graphql; live data over one graphql-transport-ws connection, each subscription resuming
// from its last `cursor` after a drop (and asking for a refetch on RESYNC_REQUIRED).
import { createClient } from 'graphql-ws';

const TOKEN_KEY = 'idp-graph.token';

export function token() {
  return localStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t.trim());
  else localStorage.removeItem(TOKEN_KEY);
  // A new caller: a new connection, and every page asks again.
  resetClient();
  location.reload();
}

function authHeaders() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

export class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join('; '));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code;
  }
}

/** Runs a query or mutation; resolves to `data`, rejects with the errors when there is no data. */
export async function gql(query, variables = {}) {
  const r = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...authHeaders() },
    body: JSON.stringify({ query, variables }),
  });
  const body = await r.json().catch(() => ({ errors: [{ message: `HTTP ${r.status}` }] }));
  if (body.errors?.length && !body.data) throw new GraphQLError(body.errors);
  return { data: body.data, errors: body.errors ?? [] };
}

// --- live ----------------------------------------------------------------------------------

const listeners = new Set();
let status = 'connecting';

/** `connecting`, `live` or `reconnecting`; the header shows it. */
export function onStatus(f) {
  listeners.add(f);
  f(status);
  return () => listeners.delete(f);
}

function setStatus(s) {
  status = s;
  for (const f of listeners) f(s);
}

let client = null;

function resetClient() {
  client?.dispose();
  client = null;
}

function ws() {
  if (!client) {
    client = createClient({
      url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`,
      connectionParams: () => (token() ? { Authorization: `Bearer ${token()}` } : {}),
      // Reconnection is ours (below), so that each subscription resumes from its cursor.
      retryAttempts: 0,
      lazy: true,
      keepAlive: 10_000,
      on: {
        connected: () => setStatus('live'),
        closed: () => setStatus('reconnecting'),
      },
    });
  }
  return client;
}

/**
 * Follows a subscription whose operation declares `$after` and `$initial`: `onEvent(event)` for
 * each event (the root field's value), `onResync()` when the server cannot replay from our
 * cursor. The first subscription asks for `initial` events only to learn a cursor (the page
 * has just fetched that state); after a dropped connection it subscribes again from the last
 * cursor, so the events missed meanwhile arrive.
 */
export function live(query, variables, onEvent, onResync) {
  let cursor = null;
  let first = true;
  let stopped = false;
  let dispose = null;
  let attempt = 0;
  let timer = null;
  const retry = () => {
    if (stopped) return;
    setStatus('reconnecting');
    const wait = Math.min(250 * 2 ** attempt++, 4000);
    timer = setTimeout(start, wait);
  };
  const start = () => {
    if (stopped) return;
    const baseline = first;
    first = false;
    dispose = ws().subscribe(
      { query, variables: { ...variables, after: cursor, initial: cursor === null } },
      {
        next: (result) => {
          attempt = 0;
          setStatus('live');
          const event = result.data ? Object.values(result.data)[0] : null;
          if (!event) return;
          if (event.type === 'RESYNC_REQUIRED') {
            cursor = null;
            onResync?.();
            return;
          }
          if (event.cursor) cursor = event.cursor;
          if (baseline && event.type === 'INITIAL') return;
          onEvent(event);
        },
        error: () => retry(),
        complete: () => retry(),
      },
    );
  };
  start();
  return () => {
    stopped = true;
    clearTimeout(timer);
    dispose?.();
  };
}

/** Test hook: drops the websocket as a network failure would (the page must catch up). */
window.__idpDropConnection = () => client?.terminate();
