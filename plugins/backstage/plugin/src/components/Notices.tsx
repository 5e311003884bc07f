import React from 'react';
import Typography from '@material-ui/core/Typography';
import { WarningPanel } from '@backstage/core-components';
import { EntityData, GraphQLErrorLike, SourceStatus } from '../api/types';
import { age, useNow } from './Status';

const KIND_TEXT: Record<SourceStatus['kind'], string> = {
  ARGOCD: 'ArgoCD',
  KUBERNETES: 'Kubernetes',
  GITHUB: 'GitHub',
  BACKSTAGE: 'The Backstage catalog',
};

export interface DownUpstream {
  name: string;
  kind: SourceStatus['kind'] | undefined;
  /** When what is shown was last observed. */
  since?: string | null;
}

const UNAVAILABLE = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT']);

/**
 * Upstreams that are down, from `sources` (not connected) and from field errors
 * (`extensions.source` of `UPSTREAM_UNAVAILABLE` / `UPSTREAM_TIMEOUT`).
 */
export function downUpstreams(
  data: EntityData | undefined,
  errors: GraphQLErrorLike[],
): DownUpstream[] {
  const sources = data?.sources ?? [];
  const byName = new Map(sources.map(s => [s.name, s]));
  const down = new Map<string, DownUpstream>();
  for (const s of sources) {
    if (!s.connected || s.stale) {
      down.set(s.name, { name: s.name, kind: s.kind, since: s.lastSyncAt });
    }
  }
  for (const e of errors) {
    const source = e.extensions?.source;
    if (source && UNAVAILABLE.has(e.extensions?.code ?? '') && !down.has(source)) {
      const s = byName.get(source);
      down.set(source, { name: source, kind: s?.kind, since: s?.lastSyncAt });
    }
  }
  // What the card shows from ArgoCD was observed when each application's freshness says.
  for (const app of data?.entity?.applications ?? []) {
    const d = down.get(app.freshness.source);
    if (d && app.freshness.observedAt) {
      if (!d.since || app.freshness.observedAt < d.since) d.since = app.freshness.observedAt;
    }
  }
  return [...down.values()];
}

export function UpstreamNotices({ down }: { down: DownUpstream[] }) {
  const now = useNow();
  if (down.length === 0) return null;
  return (
    <div data-state="upstream-down">
      {down.map(d => {
        const kind = d.kind ? KIND_TEXT[d.kind] : d.name;
        return (
          <Typography
            key={d.name}
            variant="body2"
            color="error"
            data-upstream-down={kind}
            gutterBottom
          >
            {kind} ({d.name}) is unavailable: showing the last known state, observed{' '}
            <span data-field="stale-age">{age(d.since, now)}</span>.
          </Typography>
        );
      })}
    </div>
  );
}

/** idp-graph itself could not be asked. */
export function RequestFailed({ error }: { error: Error }) {
  return (
    <div data-state="request-failed">
      <WarningPanel severity="error" title="idp-graph could not be reached">
        {error.message}
      </WarningPanel>
    </div>
  );
}

/** The entity is unknown to idp-graph, or hidden from this user: it cannot tell which. */
export function UnknownEntity({ entityRef }: { entityRef: string }) {
  return (
    <Typography variant="body2" data-state="unknown-entity">
      idp-graph shows you nothing for <code>{entityRef}</code>: it is not in idp-graph's
      catalog (yet), or your account may not see it.
    </Typography>
  );
}

/** Which applications the entity names but this user does not see, and why that may be. */
export function ApplicationsNotice({
  named,
  visible,
}: {
  named: string[];
  visible: string[];
}) {
  const hidden = named.filter(n => !visible.includes(n));
  if (named.length === 0 && visible.length === 0) {
    return (
      <Typography variant="body2" data-state="no-application">
        This entity has no ArgoCD application: it names none (annotation{' '}
        <code>argocd/app-name</code> or <code>argocd/app-selector</code>).
      </Typography>
    );
  }
  if (hidden.length === 0) return null;
  return (
    <Typography variant="body2" data-state="hidden-applications">
      {visible.length === 0 ? 'No application is visible to you. ' : ''}
      Named by this entity but not shown to you: {hidden.join(', ')}. They may exist
      outside what your account may see, or not exist at all; idp-graph does not say which.
    </Typography>
  );
}
