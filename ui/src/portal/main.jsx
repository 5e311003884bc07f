/** @jsxImportSource preact */
// The service portal at /ui: a Backstage-style face of the graph, on its public GraphQL API
// only. Routes: /ui (catalog), /ui/entity/<kind>/<namespace>/<name> (entity page), /ui/create
// (a template's form, then its task).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { gql, onStatus, setToken, token } from './api.js';
import { Catalog } from './catalog.jsx';
import { Create } from './create.jsx';
import { ServicePage } from './service.jsx';
import { Link } from './widgets.jsx';
import './portal.css';

function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const f = () => setPath(location.pathname);
    addEventListener('popstate', f);
    return () => removeEventListener('popstate', f);
  }, []);
  return path;
}

function Who() {
  const [viewer, setViewer] = useState(null);
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(token());
  useEffect(() => {
    gql('{ viewer { subject roles } }').then((r) => setViewer(r.data.viewer)).catch(() => setViewer({ subject: null, roles: [] }));
  }, []);
  if (editing) {
    return (
      <form class="who" onSubmit={(e) => { e.preventDefault(); setToken(value); }}>
        <input aria-label="token" placeholder="Bearer token (idp-graph demo prints one per persona)" value={value} onInput={(e) => setValue(e.target.value)} />
        <button type="submit">Use</button>
        {token() && <button type="button" onClick={() => setToken('')}>Sign out</button>}
        <button type="button" onClick={() => setEditing(false)}>Cancel</button>
      </form>
    );
  }
  return (
    <span class="who" data-viewer={viewer?.subject ?? 'anonymous'}>
      {viewer ? (viewer.subject ?? 'anonymous (read-only)') : '…'}{' '}
      <button class="link" onClick={() => setEditing(true)}>{token() ? 'change token' : 'sign in with a token'}</button>
    </span>
  );
}

function Status() {
  const [s, setS] = useState('connecting');
  useEffect(() => onStatus(setS), []);
  return <span class={`status ${s}`} data-status={s}>{s}</span>;
}

function App() {
  const path = usePath();
  const m = /^\/ui\/entity\/([^/]+)\/([^/]+)\/([^/]+)\/?$/.exec(path);
  let page;
  if (m) page = <ServicePage entityRef={`${decodeURIComponent(m[1])}:${decodeURIComponent(m[2])}/${decodeURIComponent(m[3])}`} />;
  else if (path.startsWith('/ui/create')) page = <Create />;
  else page = <Catalog />;
  return (
    <>
      <nav class="top">
        <Link href="/ui" class="brand">idp-graph</Link>
        <Link href="/ui">Catalog</Link>
        <Link href="/ui/create">Create</Link>
        <a href="/">Playground</a>
        <span class="spacer" />
        <Status />
        <Who />
      </nav>
      {page}
    </>
  );
}

render(<App />, document.getElementById('app'));
