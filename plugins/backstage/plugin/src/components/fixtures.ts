import { Entity } from '@backstage/catalog-model';
import {
  IdpGraphApi,
  LiveHandlers,
} from '../api/IdpGraphClient';
import { OperationName } from '../api/documents';
import { Application, EntityData, GraphQLResult } from '../api/types';

export const entity: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: {
    name: 'sample-app',
    namespace: 'default',
    annotations: { 'argocd/app-name': 'sample-app' },
  },
  spec: { type: 'service', owner: 'app-team', lifecycle: 'production' },
};

export function application(overrides: Partial<Application> = {}): Application {
  return {
    key: 'main/argocd/sample-app',
    name: 'sample-app',
    namespace: 'argocd',
    instance: 'main',
    project: 'applications',
    autoSync: false,
    sync: {
      status: 'SYNCED',
      revision: 'a1b2c3d4e5f6',
      commit: {
        shortSha: 'a1b2c3d',
        title: 'Bump the greeting',
        url: 'https://github.example/yourcompany/sample-app/commit/a1b2c3d4e5f6',
        author: { name: 'Dana Dev', login: 'dana' },
      },
    },
    health: { status: 'HEALTHY', message: null },
    operationState: { phase: 'SUCCEEDED' },
    lastSyncedAt: new Date(Date.now() - 60_000).toISOString(),
    freshness: { source: 'main', observedAt: new Date().toISOString(), stale: false },
    viewerCan: { sync: false, rollback: false, refresh: false, restart: false },
    history: [
      { historyId: 1, revision: 'f00', automated: false, deployedAt: null, commit: null },
      {
        historyId: 2,
        revision: 'a1b2c3d4e5f6',
        automated: false,
        deployedAt: null,
        commit: null,
      },
    ],
    workloads: {
      deployments: [
        {
          key: 'demo/Deployment/sample-app/sample-app',
          cluster: 'demo',
          namespace: 'sample-app',
          name: 'sample-app',
          rollout: {
            state: 'COMPLETE',
            desired: 2,
            updated: 2,
            ready: 2,
            available: 2,
            message: 'successfully rolled out',
          },
          viewerCan: { restart: false },
          events: [],
        },
      ],
      pods: [
        {
          key: 'demo/Pod/sample-app/sample-app-1',
          cluster: 'demo',
          namespace: 'sample-app',
          name: 'sample-app-1',
          phase: 'Running',
          ready: true,
          restarts: 0,
          containers: [
            { name: 'app', ready: true, restartCount: 0, state: 'RUNNING' },
          ],
          events: [],
        },
        {
          key: 'demo/Pod/sample-app/sample-app-2',
          cluster: 'demo',
          namespace: 'sample-app',
          name: 'sample-app-2',
          phase: 'Running',
          ready: false,
          restarts: 3,
          containers: [
            {
              name: 'app',
              ready: false,
              restartCount: 3,
              state: 'WAITING',
              reason: 'CrashLoopBackOff',
            },
          ],
          events: [
            { type: 'Warning', reason: 'BackOff', message: 'Back-off restarting', count: 3 },
          ],
        },
      ],
    },
    ...overrides,
  };
}

export function entityData(apps: Application[] = [application()]): EntityData {
  return {
    sources: [
      { name: 'backstage', kind: 'BACKSTAGE', connected: true, stale: false },
      { name: 'main', kind: 'ARGOCD', connected: true, stale: false },
      { name: 'demo', kind: 'KUBERNETES', connected: true, stale: false },
      { name: 'github', kind: 'GITHUB', connected: true, stale: false },
    ],
    entity: {
      ref: 'component:default/sample-app',
      argocdAppNames: ['sample-app'],
      githubSlug: 'yourcompany/sample-app',
      applications: apps,
      repository: {
        slug: 'yourcompany/sample-app',
        url: 'https://github.example/yourcompany/sample-app',
        freshness: { source: 'github', stale: false },
        pullRequests: [
          {
            number: 7,
            title: 'Add a health endpoint',
            url: 'https://github.example/yourcompany/sample-app/pull/7',
            draft: false,
          },
        ],
        workflowRuns: [
          {
            runId: 99,
            name: 'CI',
            status: 'completed',
            conclusion: 'success',
            url: 'https://github.example/yourcompany/sample-app/actions/runs/99',
            branch: 'main',
          },
        ],
      },
    },
  };
}

/** An IdpGraphApi whose answers the test sets and whose subscriptions it drives. */
export class FakeIdpGraphApi implements IdpGraphApi {
  entity: GraphQLResult<EntityData> = { data: entityData() };
  requests: { operation: OperationName; variables?: Record<string, unknown> }[] = [];
  subscriptions: {
    operation: OperationName;
    variables: Record<string, unknown>;
    handlers: LiveHandlers;
    open: boolean;
  }[] = [];

  async request<T>(operation: OperationName, variables?: Record<string, unknown>) {
    this.requests.push({ operation, variables });
    if (operation === 'IdpGraphEntity') return this.entity as GraphQLResult<T>;
    if (operation === 'IdpGraphSources') {
      return { data: { sources: this.entity.data?.sources } } as GraphQLResult<T>;
    }
    return { data: {} } as GraphQLResult<T>;
  }

  live(
    operation: OperationName,
    variables: Record<string, unknown>,
    handlers: LiveHandlers,
  ) {
    const sub = { operation, variables, handlers, open: true };
    this.subscriptions.push(sub);
    handlers.onStatus?.('live');
    return () => {
      sub.open = false;
    };
  }

  /** Delivers an event to every open subscription of `operation`. */
  emit(operation: OperationName, event: Record<string, unknown>) {
    const open = this.subscriptions.filter(s => s.open && s.operation === operation);
    if (open.length === 0) throw new Error(`no open ${operation} subscription`);
    for (const s of open) {
      s.handlers.onEvent({ cursor: `c${Math.random()}`, type: 'MODIFIED', ...event });
    }
  }
}
