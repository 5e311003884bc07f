// The playground at `/`: GraphiQL, served whole by the binary (no other host is ever asked).
// Queries and mutations go over POST /graphql, subscriptions over graphql-transport-ws at
// /graphql/ws; the Headers tab's `Authorization` is sent with both (in `connection_init` for
// websockets, one connection per distinct header value).
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { parse } from 'graphql';
import { createClient } from 'graphql-ws';
import 'graphiql/graphiql.css';
import { EXAMPLES } from './examples.js';

const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`;
const clients = new Map();

function wsClient(authorization) {
  const key = authorization ?? '';
  if (!clients.has(key)) {
    clients.set(
      key,
      createClient({
        url: wsUrl,
        connectionParams: authorization ? { Authorization: authorization } : {},
        retryAttempts: 5,
        lazy: true,
      }),
    );
  }
  return clients.get(key);
}

function operationType(query, operationName) {
  try {
    const ops = parse(query).definitions.filter((d) => d.kind === 'OperationDefinition');
    // GraphiQL may pass the previous tab's operation name: a one-operation document is that one.
    const op = (operationName && ops.find((o) => o.name?.value === operationName)) ?? (ops.length === 1 ? ops[0] : undefined);
    return op?.operation ?? 'query';
  } catch {
    return 'query'; // the server reports the syntax error
  }
}

// Drops an operation name the document does not define (a previous tab's).
function operationNameIn(params) {
  const name = params.operationName;
  if (!name) return undefined;
  try {
    const defined = parse(params.query).definitions.some((d) => d.kind === 'OperationDefinition' && d.name?.value === name);
    return defined ? name : undefined;
  } catch {
    return name;
  }
}

function authorizationOf(headers) {
  const entry = Object.entries(headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization');
  return entry?.[1] || undefined;
}

async function* subscription(params, authorization) {
  const iterator = wsClient(authorization).iterate({
    query: params.query,
    variables: params.variables ?? {},
    operationName: operationNameIn(params),
  });
  try {
    for await (const result of iterator) yield result;
  } finally {
    await iterator.return?.();
  }
}

function fetcher(params, options) {
  const headers = options?.headers ?? {};
  if (operationType(params.query, params.operationName) === 'subscription') {
    return subscription(params, authorizationOf(headers));
  }
  return fetch('/graphql', {
    method: 'POST',
    headers: {
      ...headers,
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    },
    body: JSON.stringify({ ...params, operationName: operationNameIn(params) }),
  }).then((r) => r.json());
}

// The portal's token (if one was given there), so both faces act as the same caller; else no
// header: anonymous (read-only in the demo). The examples say how to add one.
const savedToken = localStorage.getItem('idp-graph.token');
const defaultHeaders = savedToken ? JSON.stringify({ Authorization: `Bearer ${savedToken}` }, null, 2) : '';

createRoot(document.getElementById('graphiql')).render(
  <GraphiQL
    fetcher={fetcher}
    defaultTabs={EXAMPLES.map((e) => ({ query: e.query, variables: e.variables, headers: defaultHeaders }))}
    defaultEditorToolsVisibility="headers"
    shouldPersistHeaders={true}
    isHeadersEditorEnabled={true}
  />,
);
