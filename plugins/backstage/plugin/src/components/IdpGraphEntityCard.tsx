import React from 'react';
import Box from '@material-ui/core/Box';
import Divider from '@material-ui/core/Divider';
import Typography from '@material-ui/core/Typography';
import { InfoCard, Link, Progress } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import { idpGraphApiRef } from '../api/IdpGraphClient';
import { Application, Repository } from '../api/types';
import { useIdpGraphEntity } from '../hooks/useIdpGraphEntity';
import { ConfirmAction } from './ConfirmAction';
import { refreshApp, syncApp } from './actions';
import {
  ApplicationsNotice,
  downUpstreams,
  RequestFailed,
  UnknownEntity,
  UpstreamNotices,
} from './Notices';
import { age, HealthBadge, SyncBadge, useNow } from './Status';

function Revision({ app }: { app: Application }) {
  const c = app.sync.commit;
  if (!c) {
    return (
      <Typography variant="body2" data-field="revision">
        Revision {app.sync.revision?.slice(0, 7) ?? 'unknown'}
      </Typography>
    );
  }
  const author = c.author.login ?? c.author.name ?? 'unknown author';
  return (
    <Typography variant="body2" data-field="revision">
      <Link to={c.url} data-field="commit-link">
        <code>{c.shortSha}</code> <span data-field="commit-title">{c.title}</span>
      </Link>{' '}
      by <span data-field="commit-author">{author}</span>
    </Typography>
  );
}

function Workloads({ app }: { app: Application }) {
  const { deployments, pods } = app.workloads;
  if (deployments.length === 0 && pods.length === 0) {
    return (
      <Typography variant="body2" color="textSecondary" data-field="pods">
        No workloads seen in Kubernetes.
      </Typography>
    );
  }
  const ready = pods.filter(p => p.ready).length;
  const restarts = pods.reduce((n, p) => n + p.restarts, 0);
  const waiting = pods.flatMap(p =>
    p.containers
      .filter(c => c.state === 'WAITING' && c.reason)
      .map(c => `${c.reason} (${p.name})`),
  );
  return (
    <>
      {deployments.map(d => (
        <Typography
          key={d.key}
          variant="body2"
          data-field="rollout"
          data-deployment={d.name}
          data-rollout={d.rollout.state}
        >
          Rollout {d.name}: {d.rollout.updated}/{d.rollout.desired} updated,{' '}
          {d.rollout.ready} ready
          {d.rollout.state !== 'COMPLETE' ? ` (${d.rollout.state.toLowerCase()})` : ''}
        </Typography>
      ))}
      <Typography variant="body2" data-field="pods">
        Pods: {ready}/{pods.length} ready, {restarts} restart{restarts === 1 ? '' : 's'}
        {waiting.length > 0 && (
          <span data-field="waiting">; waiting: {waiting.join(', ')}</span>
        )}
      </Typography>
    </>
  );
}

function ApplicationSummary({
  app,
  onChanged,
}: {
  app: Application;
  onChanged(): void;
}) {
  const api = useApi(idpGraphApiRef);
  const now = useNow();
  const op = app.operationState;
  return (
    <Box data-app={app.name} data-app-key={app.key} mb={2}>
      <Box display="flex" alignItems="center" flexWrap="wrap" style={{ gap: 12 }}>
        <Typography variant="subtitle1">
          <b>{app.name}</b>
        </Typography>
        <Typography variant="caption" color="textSecondary">
          ArgoCD {app.instance} / {app.project}
        </Typography>
        <SyncBadge status={app.sync.status} />
        <HealthBadge status={app.health.status} />
      </Box>
      <Revision app={app} />
      <Typography variant="body2" color="textSecondary" data-field="last-sync">
        {app.lastSyncedAt ? `Last synced ${age(app.lastSyncedAt, now)}` : 'Never synced'}
        {op && (
          <span data-field="operation" data-phase={op.phase}>
            {' '}
            · last operation {op.phase.toLowerCase()}
          </span>
        )}
        {app.freshness.stale && (
          <span data-field="stale">
            {' '}
            · last known, observed {age(app.freshness.observedAt, now)}
          </span>
        )}
      </Typography>
      <Workloads app={app} />
      <Box mt={1} display="flex" style={{ gap: 8 }} data-actions={app.name}>
        {app.viewerCan.sync && (
          <ConfirmAction
            action="sync"
            target={app.name}
            label="Sync"
            question={`Sync ${app.name} (ArgoCD ${app.instance}) to its target revision now?`}
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
      </Box>
    </Box>
  );
}

function RepositorySummary({ repo }: { repo: Repository }) {
  const run = repo.workflowRuns[0];
  return (
    <Box data-repository={repo.slug}>
      <Typography variant="body2" data-field="pull-requests">
        <Link to={`${repo.url}/pulls`}>
          {repo.pullRequests.length} open pull request
          {repo.pullRequests.length === 1 ? '' : 's'}
        </Link>
        {repo.pullRequests.slice(0, 3).map(pr => (
          <span key={pr.number} data-pr={pr.number}>
            {' '}
            · <Link to={pr.url}>#{pr.number}</Link> {pr.title}
          </span>
        ))}
      </Typography>
      <Typography variant="body2" data-field="latest-run">
        {run ? (
          <>
            Latest run:{' '}
            <Link to={run.url}>{run.name ?? `run ${run.runId}`}</Link>{' '}
            {run.conclusion ?? run.status ?? ''}
            {run.branch ? ` on ${run.branch}` : ''}
          </>
        ) : (
          'No workflow runs'
        )}
      </Typography>
    </Box>
  );
}

/** What the card shows, given the state (exported for the unit tests). */
export function IdpGraphCardBody({ entityRef }: { entityRef: string }) {
  const s = useIdpGraphEntity(entityRef);
  if (s.loading && !s.data) return <Progress />;
  if (s.error && !s.data) return <RequestFailed error={s.error} />;
  const entity = s.data?.entity;
  const down = downUpstreams(s.data, s.errors);
  const apps = entity?.applications ?? [];
  return (
    <div data-idp-graph-card data-status={s.live}>
      <UpstreamNotices down={down} />
      {s.error && <RequestFailed error={s.error} />}
      {!entity ? (
        <UnknownEntity entityRef={entityRef} />
      ) : (
        <>
          <ApplicationsNotice
            named={entity.argocdAppNames ?? []}
            visible={apps.map(a => a.name)}
          />
          {apps.map(app => (
            <ApplicationSummary key={app.key} app={app} onChanged={s.refetch} />
          ))}
          {entity.repository && (
            <>
              <Divider style={{ margin: '8px 0' }} />
              <RepositorySummary repo={entity.repository} />
            </>
          )}
        </>
      )}
      <Typography variant="caption" color="textSecondary" data-field="live">
        {s.live === 'live' ? '● live' : s.live === 'connecting' ? 'connecting…' : 'reconnecting…'}
      </Typography>
    </div>
  );
}

/** The overview card: each ArgoCD application of the entity, live. */
export function IdpGraphEntityCard() {
  const { entity } = useEntity();
  return (
    <InfoCard title="Deployment" subheader="ArgoCD, Kubernetes and GitHub via idp-graph">
      <IdpGraphCardBody entityRef={stringifyEntityRef(entity)} />
    </InfoCard>
  );
}
