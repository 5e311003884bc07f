// @backstage/catalog-client (the real one, from this folder's node_modules) against a catalog:
// getEntities with a filter, fields and paging, getEntityByRef and queryEntities. Prints one
// JSON line with what it got; any error exits 1 with the message.
//
// usage: node catalog-client.mjs <catalog base URL, e.g. http://127.0.0.1:7007> <token>
import { CatalogClient } from '@backstage/catalog-client';

const [base, token] = process.argv.slice(2);
const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` },
  fetchApi: { fetch: (url, init = {}) => fetch(url, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` } }) },
});

try {
  const all = await client.getEntities();
  const components = await client.getEntities({
    filter: { kind: 'Component' },
    fields: ['kind', 'metadata.name', 'spec.owner'],
    order: { field: 'metadata.name', order: 'asc' },
  });
  const page = await client.getEntities({ filter: { kind: 'Component' }, limit: 3, offset: 2, order: { field: 'metadata.name', order: 'asc' } });
  const one = await client.getEntityByRef('component:default/sample-app');
  const queried = await client.queryEntities({ filter: { kind: 'Component' }, limit: 2 });
  console.log(JSON.stringify({
    all: all.items.length,
    components: components.items.map((e) => e.metadata.name),
    fieldsOnly: Object.keys(components.items[0]).sort(),
    page: page.items.map((e) => e.metadata.name),
    one: one?.metadata?.name ?? null,
    queried: queried.items.length,
    total: queried.totalItems,
  }));
} catch (e) {
  console.error(String(e?.stack ?? e));
  process.exit(1);
}
