/** @jsxImportSource preact */
// A Backstage-style entity page: overview, ArgoCD, Kubernetes and GitHub cards, kept live by
// subscriptions (application and rollout events refetch the page's data), with the actions the
// server says the caller may take.
import { useEffect, useRef, useState } from 'preact/hooks';
import { gql, live } from './api.js';
import { ActionButton, Badge, Card, ErrorNote, Link, ago, entityPath } from './widgets.jsx';

const PAGE = `query ServicePage($ref: String!) {
  entity(ref: $ref) {
    ref kind name title description tags
    links { url title }
    owner { ref name }
    ... on Component {
      lifecycle type githubSlug
      system { ref name }
      applications {
        key name instance namespace project
        sync { status revision commit { shortSha title author { name login } url } }
        health { status message }
        operationState { phase message startedAt finishedAt }
        lastSyncedAt
        history { historyId revision deployedAt commit { shortSha title } }
        viewerCan { sync refresh rollback }
      }
      kubernetes {
        deployments {
          key cluster namespace name images
          rollout { state desired updated ready available message }
          viewerCan { restart }
          events { type reason message count lastSeen }
        }
        pods {
          key name phase ready restarts
          containers { name state reason restartCount }
          events { type reason message count lastSeen }
        }
      }
      repository {
        slug url defaultBranch
        pullRequests(first: 5) { number title authorLogin url draft }
        workflowRuns(first: 5) { runId name status conclusion branch url createdAt }
      }
    }
  }
}`;

const APP_EVENTS = `subscription AppLive($names: [String!], $after: String, $initial: Boolean!) {
  applicationEvents(filter: { names: $names }, after: $after, initial: $initial) { cursor type current { sync health operationPhase } }
}`;
const ROLLOUT_EVENTS = `subscription RolloutLive($entity: String, $after: String, $initial: Boolean!) {
  rolloutEvents(filter: { entity: $entity }, after: $after, initial: $initial) { cursor type }
}`;

const SYNC = `mutation($name: String!, $instance: String, $namespace: String) {
  syncApplication(input: { name: $name, instance: $instance, namespace: $namespace }) { auditId }
}`;
const REFRESH = `mutation($name: String!, $instance: String, $namespace: String) {
  refreshApplication(input: { name: $name, instance: $instance, namespace: $namespace }) { auditId }
}`;
const ROLLBACK = `mutation($name: String!, $instance: String, $namespace: String, $id: Int!) {
  rollbackApplication(input: { name: $name, instance: $instance, namespace: $namespace, id: $id }) { auditId }
}`;
const RESTART = `mutation($cluster: String!, $namespace: String!, $name: String!) {
  restartDeployment(cluster: $cluster, namespace: $namespace, name: $name) { restartedAt }
}`;

export function ServicePage({ entityRef }) {
  const [entity, setEntity] = useState(undefined);
  const [error, setError] = useState(null);
  const [partial, setPartial] = useState([]);
  const pending = useRef(null);

  const load = () =>
    gql(PAGE, { ref: entityRef })
      .then((r) => {
        setEntity(r.data.entity);
        setPartial(r.errors);
        setError(null);
      })
      .catch(setError);
  // Events arrive in bursts (a sync is several changes): one refetch per burst.
  const reload = () => {
    clearTimeout(pending.current);
    pending.current = setTimeout(load, 100);
  };

  useEffect(() => {
    setEntity(undefined);
    load();
  }, [entityRef]);

  const appNames = (entity?.applications ?? []).map((a) => a.name).join(',');
  useEffect(() => {
    if (!entity) return undefined;
    const stops = [live(ROLLOUT_EVENTS, { entity: entity.ref }, reload, reload)];
    if (appNames) stops.push(live(APP_EVENTS, { names: appNames.split(',') }, reload, reload));
    return () => stops.forEach((s) => s());
  }, [entity?.ref, appNames]);

  if (error) return <main><ErrorNote error={error} /></main>;
  if (entity === undefined) return <main><p class="muted">Loading…</p></main>;
  if (entity === null) return <main><p class="error">No entity {entityRef} (or you may not see it).</p></main>;

  return (
    <main class="service" data-entity={entity.ref}>
      <div class="title">
        <h1>{entity.title ?? entity.name}</h1>
        <span class="muted">{entity.kind}{entity.type ? ` · ${entity.type}` : ''}</span>
      </div>
      {partial.length > 0 && (
        <p class="warning" data-partial>
          Some data is unavailable: {partial.map((e) => `${e.path?.join('.') ?? ''} (${e.extensions?.code ?? 'error'})`).join(', ')}
        </p>
      )}
      <div class="grid">
        <Overview e={entity} />
        {entity.kind === 'Component' && <ArgoCard apps={entity.applications} reload={reload} />}
        {entity.kind === 'Component' && <KubernetesCard workloads={entity.kubernetes} reload={reload} />}
        {entity.kind === 'Component' && <GitHubCard repo={entity.repository} slug={entity.githubSlug} />}
      </div>
    </main>
  );
}

function Overview({ e }) {
  return (
    <Card title="Overview" id="overview">
      <dl>
        {e.description && (<><dt>Description</dt><dd>{e.description}</dd></>)}
        <dt>Owner</dt>
        <dd data-field="owner">{e.owner ? <Link href={entityPath(e.owner.ref)}>{e.owner.name}</Link> : '—'}</dd>
        {e.system && (<><dt>System</dt><dd data-field="system"><Link href={entityPath(e.system.ref)}>{e.system.name}</Link></dd></>)}
        {e.lifecycle && (<><dt>Lifecycle</dt><dd>{e.lifecycle}</dd></>)}
        {e.githubSlug && (
          <><dt>Repository</dt><dd data-field="repository"><a href={e.repository?.url ?? `https://github.com/${e.githubSlug}`} rel="noreferrer">{e.githubSlug}</a></dd></>
        )}
        {e.tags?.length > 0 && (<><dt>Tags</dt><dd>{e.tags.join(', ')}</dd></>)}
      </dl>
      {e.links?.length > 0 && (
        <ul class="links">
          {e.links.map((l) => <li><a href={l.url} rel="noreferrer">{l.title ?? l.url}</a></li>)}
        </ul>
      )}
    </Card>
  );
}

function appVars(a) {
  return { name: a.name, instance: a.instance, namespace: a.namespace };
}

function ArgoCard({ apps, reload }) {
  return (
    <Card title="ArgoCD" id="argocd">
      {apps.length === 0 && <p class="muted">No ArgoCD application (annotate the component with argocd/app-name).</p>}
      {apps.map((a) => (
        <div class="app-block" data-app={a.name}>
          <div class="row">
            <strong>{a.name}</strong>
            <Badge label="sync" value={a.sync.status} />
            <Badge label="health" value={a.health.status} />
            {a.operationState && <Badge label="operation" value={a.operationState.phase} />}
          </div>
          <div class="muted small">
            {a.project} · {a.instance}/{a.namespace}
            {a.lastSyncedAt ? ` · synced ${ago(a.lastSyncedAt)}` : ''}
          </div>
          {a.health.message && <p class="small">{a.health.message}</p>}
          {a.sync.revision && (
            <p class="revision" data-field="revision">
              <code>{a.sync.commit?.shortSha ?? a.sync.revision.slice(0, 7)}</code>{' '}
              {a.sync.commit && (<>
                <a href={a.sync.commit.url} rel="noreferrer">{a.sync.commit.title}</a>
                <span class="muted"> — {a.sync.commit.author.name ?? a.sync.commit.author.login}</span>
              </>)}
            </p>
          )}
          {a.operationState?.message && <p class="small muted" data-field="operation-message">{a.operationState.message}</p>}
          <div class="buttons">
            {a.viewerCan.sync && (
              <ActionButton name="sync" label="Sync" confirm={`Sync ${a.name} to its target revision?`}
                run={() => gql(SYNC, appVars(a)).then((r) => { reload(); return `sync started (audit #${r.data.syncApplication.auditId})`; })} />
            )}
            {a.viewerCan.refresh && (
              <ActionButton name="refresh" label="Refresh" confirm={`Refresh ${a.name} from git?`}
                run={() => gql(REFRESH, appVars(a)).then(() => { reload(); return 'refreshed'; })} />
            )}
          </div>
          <table class="history">
            <thead><tr><th>#</th><th>Revision</th><th>Deployed</th><th></th></tr></thead>
            <tbody>
              {[...a.history].reverse().map((h, i) => (
                <tr data-history={h.historyId}>
                  <td>{h.historyId}</td>
                  <td><code>{h.commit?.shortSha ?? h.revision?.slice(0, 7)}</code> {h.commit?.title ?? ''}</td>
                  <td>{ago(h.deployedAt)}</td>
                  <td>
                    {i > 0 && a.viewerCan.rollback && (
                      <ActionButton name={`rollback-${h.historyId}`} label="Roll back" confirm={`Roll ${a.name} back to #${h.historyId} (${h.revision?.slice(0, 7)})?`}
                        run={() => gql(ROLLBACK, { ...appVars(a), id: h.historyId }).then(() => { reload(); return 'rolling back'; })} />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
    </Card>
  );
}

function KubernetesCard({ workloads, reload }) {
  const warnings = [...workloads.deployments, ...workloads.pods]
    .flatMap((o) => o.events.filter((e) => e.type === 'Warning').map((e) => ({ ...e, object: o.name })))
    .sort((a, b) => (b.lastSeen ?? '').localeCompare(a.lastSeen ?? ''))
    .slice(0, 8);
  return (
    <Card title="Kubernetes" id="kubernetes">
      {workloads.deployments.length === 0 && <p class="muted">No workloads found for this component.</p>}
      {workloads.deployments.map((d) => {
        const pct = d.rollout.desired ? Math.round((100 * d.rollout.available) / d.rollout.desired) : 100;
        return (
          <div class="deployment" data-deployment={d.name}>
            <div class="row">
              <strong>{d.name}</strong>
              <span class="muted small">{d.cluster}/{d.namespace}</span>
              <Badge label="rollout" value={d.rollout.state} />
              {d.viewerCan.restart && (
                <ActionButton name={`restart-${d.name}`} label="Restart" confirm={`Restart the pods of ${d.name} (kubectl rollout restart)?`}
                  run={() => gql(RESTART, { cluster: d.cluster, namespace: d.namespace, name: d.name }).then(() => { reload(); return 'restarting'; })} />
              )}
            </div>
            <div class="progress" title={d.rollout.message}>
              <div style={{ width: `${pct}%` }} />
            </div>
            <div class="muted small" data-field="rollout">
              {d.rollout.updated}/{d.rollout.desired} updated · {d.rollout.ready} ready · {d.rollout.available} available
            </div>
          </div>
        );
      })}
      {workloads.pods.length > 0 && (
        <table class="pods">
          <thead><tr><th>Pod</th><th>Phase</th><th>Restarts</th><th>Waiting</th></tr></thead>
          <tbody>
            {workloads.pods.map((p) => (
              <tr data-pod={p.name}>
                <td>{p.name}</td>
                <td><Badge value={p.phase} /></td>
                <td>{p.restarts}</td>
                <td>{p.containers.filter((c) => c.reason).map((c) => `${c.name}: ${c.reason}`).join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {warnings.length > 0 && (
        <div class="events">
          <h3>Recent warnings</h3>
          <ul>
            {warnings.map((e) => (
              <li data-warning>
                <strong>{e.reason}</strong> {e.object}: {e.message} <span class="muted">×{e.count ?? 1} {ago(e.lastSeen)}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </Card>
  );
}

function GitHubCard({ repo, slug }) {
  return (
    <Card title="GitHub" id="github">
      {!slug && <p class="muted">No repository (annotate the component with github.com/project-slug).</p>}
      {slug && !repo && <p class="muted">{slug} is not available right now.</p>}
      {repo && (
        <>
          <p><a href={repo.url} rel="noreferrer">{repo.slug}</a> <span class="muted">({repo.defaultBranch})</span></p>
          <h3>Open pull requests</h3>
          {repo.pullRequests.length === 0 && <p class="muted">None.</p>}
          <ul class="prs">
            {repo.pullRequests.map((p) => (
              <li data-pr={p.number}>
                <a href={p.url} rel="noreferrer">#{p.number} {p.title}</a>
                {p.draft && <span class="badge neutral">draft</span>}
                <span class="muted small"> by {p.authorLogin}</span>
              </li>
            ))}
          </ul>
          <h3>Latest workflow runs</h3>
          <ul class="runs">
            {repo.workflowRuns.map((r) => (
              <li data-run={r.runId}>
                <Badge value={r.conclusion ?? r.status} /> <a href={r.url} rel="noreferrer">{r.name ?? 'run'}</a>
                <span class="muted small"> {r.branch} · {ago(r.createdAt)}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </Card>
  );
}
