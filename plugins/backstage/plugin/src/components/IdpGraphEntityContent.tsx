import React from 'react';
import Grid from '@material-ui/core/Grid';
import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import Typography from '@material-ui/core/Typography';
import { InfoCard, Link, Progress } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import { idpGraphApiRef } from '../api/IdpGraphClient';
import { Application, KubernetesEvent, Repository } from '../api/types';
import { useIdpGraphEntity } from '../hooks/useIdpGraphEntity';
import { ConfirmAction } from './ConfirmAction';
import { refreshApp, restartDeployment, rollbackApp, syncApp } from './actions';
import {
  ApplicationsNotice,
  downUpstreams,
  RequestFailed,
  UnknownEntity,
  UpstreamNotices,
} from './Notices';
import { age, HealthBadge, SyncBadge, useNow } from './Status';

function ArgoCdCard({ app, onChanged }: { app: Application; onChanged(): void }) {
  const api = useApi(idpGraphApiRef);
  const now = useNow();
  const history = [...app.history].reverse();
  return (
    <InfoCard title={`ArgoCD: ${app.name}`} subheader={`${app.instance} / ${app.project}`}>
      <div data-card="argocd" data-app={app.name}>
        <SyncBadge status={app.sync.status} /> <HealthBadge status={app.health.status} />
        {app.health.message && (
          <Typography variant="body2">{app.health.message}</Typography>
        )}
        <div style={{ display: 'flex', gap: 8, margin: '8px 0' }}>
          {app.viewerCan.sync && (
            <ConfirmAction
              action="sync"
              target={app.name}
              label="Sync"
              question={`Sync ${app.name} to its target revision now?`}
              run={() => syncApp(api, app)}
              onDone={onChanged}
            />
          )}
          {app.viewerCan.refresh && (
            <ConfirmAction
              action="refresh"
              target={app.name}
              label="Refresh"
              question={`Ask ArgoCD to compare ${app.name} with git again now?`}
              run={() => refreshApp(api, app)}
              onDone={onChanged}
            />
          )}
        </div>
        <Typography variant="subtitle2">History</Typography>
        <Table size="small">
          <TableHead>
            <TableRow>
              <TableCell>Deployed</TableCell>
              <TableCell>Revision</TableCell>
              <TableCell>By</TableCell>
              <TableCell />
            </TableRow>
          </TableHead>
          <TableBody>
            {history.map((h, i) => (
              <TableRow key={h.historyId} data-history={h.historyId}>
                <TableCell>{age(h.deployedAt, now)}</TableCell>
                <TableCell>
                  {h.commit ? (
                    <Link to={h.commit.url}>
                      <code>{h.commit.shortSha}</code> {h.commit.title}
                    </Link>
                  ) : (
                    <code>{h.revision?.slice(0, 7)}</code>
                  )}
                </TableCell>
                <TableCell>{h.automated ? 'auto-sync' : h.initiatedBy ?? ''}</TableCell>
                <TableCell>
                  {i > 0 && app.viewerCan.rollback && !app.autoSync && (
                    <ConfirmAction
                      action="rollback"
                      target={`${app.name}#${h.historyId}`}
                      label="Roll back"
                      question={`Roll ${app.name} back to history entry ${h.historyId} (${h.commit?.shortSha ?? h.revision?.slice(0, 7)})?`}
                      run={() => rollbackApp(api, app, h.historyId)}
                      onDone={onChanged}
                    />
                  )}
                  {i > 0 && app.viewerCan.rollback && app.autoSync && (
                    <Typography variant="caption" color="textSecondary">
                      auto-sync on: ArgoCD refuses rollbacks
                    </Typography>
                  )}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </div>
    </InfoCard>
  );
}

const warnings = (events: KubernetesEvent[]) =>
  events.filter(e => e.type === 'Warning').slice(0, 5);

function KubernetesCard({ app, onChanged }: { app: Application; onChanged(): void }) {
  const api = useApi(idpGraphApiRef);
  const now = useNow();
  const { deployments, pods } = app.workloads;
  return (
    <InfoCard title={`Kubernetes: ${app.name}`}>
      <div data-card="kubernetes" data-app={app.name}>
        {deployments.map(d => (
          <div key={d.key} data-deployment={d.name}>
            <Typography variant="subtitle2">
              {d.cluster} / {d.namespace} / {d.name}
            </Typography>
            <Typography variant="body2" data-field="rollout">
              {d.rollout.updated}/{d.rollout.desired} updated, {d.rollout.ready} ready,{' '}
              {d.rollout.available} available — {d.rollout.message}
            </Typography>
            {d.viewerCan.restart && (
              <ConfirmAction
                action="restart"
                target={d.name}
                label="Restart"
                question={`Restart deployment ${d.namespace}/${d.name} (kubectl rollout restart)?`}
                run={() => restartDeployment(api, d)}
                onDone={onChanged}
              />
            )}
            {warnings(d.events).map((e, i) => (
              <Typography key={i} variant="caption" color="error" display="block" data-warning>
                {e.reason}: {e.message} ({age(e.lastSeen, now)})
              </Typography>
            ))}
          </div>
        ))}
        <Table size="small">
          <TableHead>
            <TableRow>
              <TableCell>Pod</TableCell>
              <TableCell>Ready</TableCell>
              <TableCell>Restarts</TableCell>
              <TableCell>Status</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {pods.map(p => {
              const waiting = p.containers.find(c => c.state === 'WAITING' && c.reason);
              return (
                <React.Fragment key={p.key}>
                  <TableRow data-pod={p.name}>
                    <TableCell>{p.name}</TableCell>
                    <TableCell>
                      {p.containers.filter(c => c.ready).length}/{p.containers.length}
                    </TableCell>
                    <TableCell>{p.restarts}</TableCell>
                    <TableCell>{waiting?.reason ?? p.phase}</TableCell>
                  </TableRow>
                  {warnings(p.events).map((e, i) => (
                    <TableRow key={`${p.key}-w${i}`} data-warning>
                      <TableCell colSpan={4}>
                        <Typography variant="caption" color="error">
                          {e.reason}: {e.message} ({age(e.lastSeen, now)})
                        </Typography>
                      </TableCell>
                    </TableRow>
                  ))}
                </React.Fragment>
              );
            })}
          </TableBody>
        </Table>
      </div>
    </InfoCard>
  );
}

function GitHubCard({ repo }: { repo: Repository }) {
  const now = useNow();
  return (
    <InfoCard title={`GitHub: ${repo.slug}`}>
      <div data-card="github">
        <Typography variant="subtitle2">Open pull requests</Typography>
        {repo.pullRequests.length === 0 && <Typography variant="body2">None</Typography>}
        {repo.pullRequests.map(pr => (
          <Typography key={pr.number} variant="body2" data-pr={pr.number}>
            <Link to={pr.url}>#{pr.number}</Link> {pr.title}
            {pr.draft ? ' (draft)' : ''} — {pr.authorLogin}
          </Typography>
        ))}
        <Typography variant="subtitle2" style={{ marginTop: 8 }}>
          Workflow runs
        </Typography>
        {repo.workflowRuns.map(r => (
          <Typography key={r.runId} variant="body2" data-run={r.runId}>
            <Link to={r.url}>{r.name ?? r.runId}</Link> {r.conclusion ?? r.status}
            {r.branch ? ` on ${r.branch}` : ''} · {age(r.createdAt, now)}
          </Typography>
        ))}
      </div>
    </InfoCard>
  );
}

export function IdpGraphContentBody({ entityRef }: { entityRef: string }) {
  const s = useIdpGraphEntity(entityRef);
  if (s.loading && !s.data) return <Progress />;
  if (s.error && !s.data) return <RequestFailed error={s.error} />;
  const entity = s.data?.entity;
  const apps = entity?.applications ?? [];
  return (
    <div data-idp-graph-content data-status={s.live}>
      <UpstreamNotices down={downUpstreams(s.data, s.errors)} />
      {/* A refetch that failed after the first answer: said, above the last known state. */}
      {s.error && <RequestFailed error={s.error} />}
      {!entity ? (
        <UnknownEntity entityRef={entityRef} />
      ) : (
        <Grid container spacing={2}>
          <Grid item xs={12}>
            <ApplicationsNotice
              named={entity.argocdAppNames ?? []}
              visible={apps.map(a => a.name)}
            />
          </Grid>
          {apps.map(app => (
            <React.Fragment key={app.key}>
              <Grid item xs={12} md={6}>
                <ArgoCdCard app={app} onChanged={s.refetch} />
              </Grid>
              <Grid item xs={12} md={6}>
                <KubernetesCard app={app} onChanged={s.refetch} />
              </Grid>
            </React.Fragment>
          ))}
          {entity.repository && (
            <Grid item xs={12}>
              <GitHubCard repo={entity.repository} />
            </Grid>
          )}
        </Grid>
      )}
    </div>
  );
}

/** The entity tab: history with roll back, workloads and pods with Warning events, GitHub. */
export function IdpGraphEntityContent() {
  const { entity } = useEntity();
  return <IdpGraphContentBody entityRef={stringifyEntityRef(entity)} />;
}
