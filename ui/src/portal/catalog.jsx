/** @jsxImportSource preact */
// The catalog table: entities with owner, system, lifecycle and their applications' live sync
// and health; filters by kind, owner and text (kept in the URL's query string).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { gql, live } from './api.js';
import { Badge, ErrorNote, Link, entityPath } from './widgets.jsx';

const CATALOG = `query Catalog {
  entities(first: 1000) {
    nodes {
      ref kind name title description
      owner { ref name }
      ... on Component { lifecycle type system { ref name } applications { key name sync { status } health { status } } }
      ... on API { lifecycle system { ref name } }
      ... on Resource { system { ref name } }
      ... on System { domain { ref name } }
    }
  }
}`;

const EVENTS = `subscription CatalogLive($after: String, $initial: Boolean!) {
  applicationEvents(after: $after, initial: $initial) {
    cursor type
    application { key }
    current { sync health }
  }
}`;

function params() {
  const p = new URLSearchParams(location.search);
  return { kind: p.get('kind') ?? 'Component', owner: p.get('owner') ?? '', text: p.get('q') ?? '' };
}

export function Catalog() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [filter, setFilter] = useState(params);
  // Live statuses by application key, newer than the last fetch.
  const [statuses, setStatuses] = useState({});

  const load = () =>
    gql(CATALOG)
      .then((r) => {
        setData(r.data.entities.nodes);
        setStatuses({});
      })
      .catch(setError);
  useEffect(() => {
    load();
    return live(
      EVENTS,
      {},
      (e) => {
        if (e.application && e.current) {
          setStatuses((s) => ({ ...s, [e.application.key]: e.current }));
        }
      },
      load,
    );
  }, []);

  useEffect(() => {
    const p = new URLSearchParams();
    if (filter.kind) p.set('kind', filter.kind);
    if (filter.owner) p.set('owner', filter.owner);
    if (filter.text) p.set('q', filter.text);
    history.replaceState(null, '', `/ui${p.size ? `?${p}` : ''}`);
  }, [filter]);

  const kinds = useMemo(() => [...new Set((data ?? []).map((e) => e.kind))].sort(), [data]);
  const owners = useMemo(
    () => [...new Set((data ?? []).map((e) => e.owner?.name).filter(Boolean))].sort(),
    [data],
  );
  const rows = useMemo(() => {
    const text = filter.text.toLowerCase();
    return (data ?? []).filter(
      (e) =>
        (!filter.kind || e.kind === filter.kind) &&
        (!filter.owner || e.owner?.name === filter.owner) &&
        (!text ||
          [e.name, e.title, e.description].some((v) => v?.toLowerCase().includes(text))),
    );
  }, [data, filter]);

  return (
    <main class="catalog">
      <div class="toolbar">
        <h1>Catalog</h1>
        <select aria-label="kind" value={filter.kind} onChange={(e) => setFilter({ ...filter, kind: e.target.value })}>
          <option value="">all kinds</option>
          {kinds.map((k) => <option value={k}>{k}</option>)}
        </select>
        <select aria-label="owner" value={filter.owner} onChange={(e) => setFilter({ ...filter, owner: e.target.value })}>
          <option value="">all owners</option>
          {owners.map((o) => <option value={o}>{o}</option>)}
        </select>
        <input
          type="search"
          aria-label="filter"
          placeholder="Filter by name or description"
          value={filter.text}
          onInput={(e) => setFilter({ ...filter, text: e.target.value })}
        />
        <Link href="/ui/create" class="button primary">Create…</Link>
      </div>
      <ErrorNote error={error} />
      {!data && !error && <p class="muted">Loading…</p>}
      {data && (
        <table data-table="catalog">
          <thead>
            <tr><th>Name</th><th>Kind</th><th>Owner</th><th>System</th><th>Lifecycle</th><th>Deployments</th></tr>
          </thead>
          <tbody>
            {rows.map((e) => (
              <tr data-ref={e.ref} key={e.ref}>
                <td>
                  <Link href={entityPath(e.ref)}>{e.title ?? e.name}</Link>
                  {e.description && <div class="muted small">{e.description}</div>}
                </td>
                <td>{e.kind}{e.type ? ` · ${e.type}` : ''}</td>
                <td>{e.owner ? <Link href={entityPath(e.owner.ref)}>{e.owner.name}</Link> : ''}</td>
                <td>{(e.system ?? e.domain) ? <Link href={entityPath((e.system ?? e.domain).ref)}>{(e.system ?? e.domain).name}</Link> : ''}</td>
                <td>{e.lifecycle ?? ''}</td>
                <td>
                  {(e.applications ?? []).map((a) => {
                    const s = statuses[a.key];
                    return (
                      <div class="app" data-app={a.name}>
                        <span class="muted small">{a.name}</span>{' '}
                        <Badge label="sync" value={s?.sync ?? a.sync.status} />{' '}
                        <Badge label="health" value={s?.health ?? a.health.status} />
                      </div>
                    );
                  })}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data && <p class="muted small">{rows.length} of {data.length}</p>}
    </main>
  );
}
