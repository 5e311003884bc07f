import { useCallback, useEffect, useRef, useState } from 'react';
import { useApi } from '@backstage/core-plugin-api';
import { idpGraphApiRef, LiveStatus } from '../api/IdpGraphClient';
import {
  Application,
  EntityData,
  GraphQLErrorLike,
  SourceStatus,
} from '../api/types';

/** How often upstream health (`sources`) is asked again: it has no subscription. */
export const SOURCES_POLL_MS = 5_000;

export interface IdpGraphEntityState {
  loading: boolean;
  /** The last answer (kept while a refetch runs or fails). */
  data?: EntityData;
  /** Errors on fields of the last answer (an upstream down, a refusal). */
  errors: GraphQLErrorLike[];
  /** The request itself failed (idp-graph unreachable, 401...). */
  error?: Error;
  live: LiveStatus;
  /** Reads everything again (after an action, or on demand). */
  refetch(): void;
}

/** Merges an application from an event into the answer, by key. */
function mergeApplication(data: EntityData, app: Application): EntityData {
  const apps = data.entity?.applications;
  if (!data.entity || !apps) return data;
  const i = apps.findIndex(a => a.key === app.key);
  if (i < 0) return data;
  const next = apps.slice();
  next[i] = app;
  return { ...data, entity: { ...data.entity, applications: next } };
}

const sourcesKey = (s?: SourceStatus[]) =>
  (s ?? []).map(x => `${x.name}:${x.connected}:${x.stale}`).join(',');

/**
 * Everything the card and the tab show about one entity, kept live: application changes
 * arrive by subscription and are merged in place; workload and rollout events, and a
 * `RESYNC_REQUIRED`, read the entity again.
 */
export function useIdpGraphEntity(entityRef: string): IdpGraphEntityState {
  const api = useApi(idpGraphApiRef);
  const [state, setState] = useState<{
    loading: boolean;
    data?: EntityData;
    errors: GraphQLErrorLike[];
    error?: Error;
  }>({ loading: true, errors: [] });
  const [live, setLive] = useState<LiveStatus>('connecting');
  const generation = useRef(0);
  const mounted = useRef(true);

  const fetchNow = useCallback(async () => {
    const mine = ++generation.current;
    try {
      const result = await api.request<EntityData>('IdpGraphEntity', {
        ref: entityRef,
      });
      if (!mounted.current || mine !== generation.current) return;
      setState(prev => ({
        loading: false,
        data: result.data ?? prev.data,
        errors: result.errors ?? [],
      }));
    } catch (e) {
      if (!mounted.current || mine !== generation.current) return;
      setState(prev => ({ ...prev, loading: false, error: e as Error }));
    }
  }, [api, entityRef]);

  useEffect(() => {
    mounted.current = true;
    fetchNow();
    return () => {
      mounted.current = false;
    };
  }, [fetchNow]);

  // Debounced refetch for events that say "something changed" without the new state.
  const pending = useRef<ReturnType<typeof setTimeout>>();
  const refetchSoon = useCallback(() => {
    if (pending.current) clearTimeout(pending.current);
    pending.current = setTimeout(fetchNow, 250);
  }, [fetchNow]);
  useEffect(() => () => clearTimeout(pending.current), []);

  const appNames = (state.data?.entity?.applications ?? [])
    .map(a => a.name)
    .sort()
    .join(',');
  const hasEntity = Boolean(state.data?.entity);

  useEffect(() => {
    if (!appNames) return undefined;
    return api.live(
      'IdpGraphApplicationEvents',
      { names: appNames.split(',') },
      {
        onEvent: event => {
          const app = event.application as Application | undefined;
          if (!app) return;
          setState(prev =>
            prev.data ? { ...prev, data: mergeApplication(prev.data, app) } : prev,
          );
        },
        onResync: fetchNow,
        onStatus: setLive,
      },
    );
  }, [api, appNames, fetchNow]);

  useEffect(() => {
    if (!hasEntity) return undefined;
    const handlers = { onEvent: refetchSoon, onResync: fetchNow };
    const stopWorkloads = api.live(
      'IdpGraphWorkloadEvents',
      { entity: entityRef },
      appNames ? handlers : { ...handlers, onStatus: setLive },
    );
    const stopRollouts = api.live(
      'IdpGraphRolloutEvents',
      { entity: entityRef },
      handlers,
    );
    return () => {
      stopWorkloads();
      stopRollouts();
    };
  }, [api, entityRef, hasEntity, appNames, refetchSoon, fetchNow]);

  // Upstream health has no events: ask `sources` now and then, and read the entity again
  // when an upstream went down or came back (its values turn stale / fresh).
  const lastSources = useRef('');
  lastSources.current = sourcesKey(state.data?.sources);
  useEffect(() => {
    const timer = setInterval(async () => {
      try {
        const r = await api.request<Pick<EntityData, 'sources'>>('IdpGraphSources');
        const now = sourcesKey(r.data?.sources);
        if (r.data?.sources && now !== lastSources.current) fetchNow();
      } catch {
        // The next tick tries again; the last answer stays on screen.
      }
    }, SOURCES_POLL_MS);
    return () => clearInterval(timer);
  }, [api, fetchNow]);

  return { ...state, live, refetch: fetchNow };
}
