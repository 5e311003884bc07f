/** Shapes of what the plugin's documents (documents.ts) select: only what they ask for. */

export type SyncStatus = 'SYNCED' | 'OUT_OF_SYNC' | 'UNKNOWN';
export type HealthStatus =
  | 'HEALTHY'
  | 'PROGRESSING'
  | 'DEGRADED'
  | 'SUSPENDED'
  | 'MISSING'
  | 'UNKNOWN';

export interface GraphQLErrorLike {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; source?: string; [key: string]: unknown };
}

/** A GraphQL response: data may be partial, beside errors on the fields that failed. */
export interface GraphQLResult<T> {
  data?: T | null;
  errors?: GraphQLErrorLike[];
}

export interface Freshness {
  source: string;
  observedAt?: string | null;
  stale: boolean;
}

export interface Commit {
  sha?: string;
  shortSha: string;
  title: string;
  url: string;
  author: { name?: string | null; login?: string | null };
}

export interface ViewerCan {
  sync: boolean;
  rollback: boolean;
  refresh: boolean;
  restart: boolean;
}

export interface KubernetesEvent {
  type?: string | null;
  reason?: string | null;
  message?: string | null;
  count?: number | null;
  lastSeen?: string | null;
}

export interface Deployment {
  key: string;
  cluster: string;
  namespace?: string | null;
  name: string;
  rollout: {
    state: 'COMPLETE' | 'PROGRESSING' | 'STALLED';
    desired: number;
    updated: number;
    ready: number;
    available: number;
    message: string;
  };
  viewerCan: { restart: boolean };
  events: KubernetesEvent[];
}

export interface Pod {
  key: string;
  cluster: string;
  namespace?: string | null;
  name: string;
  phase: string;
  ready: boolean;
  restarts: number;
  containers: {
    name: string;
    ready: boolean;
    restartCount: number;
    state: string;
    reason?: string | null;
  }[];
  events: KubernetesEvent[];
}

export interface HistoryEntry {
  historyId: number;
  revision?: string | null;
  deployedAt?: string | null;
  initiatedBy?: string | null;
  automated: boolean;
  commit?: Commit | null;
}

export interface Application {
  key: string;
  name: string;
  namespace: string;
  instance: string;
  project: string;
  autoSync: boolean;
  sync: { status: SyncStatus; revision?: string | null; commit?: Commit | null };
  health: { status: HealthStatus; message?: string | null };
  operationState?: {
    phase: string;
    message?: string | null;
    startedAt?: string | null;
    finishedAt?: string | null;
  } | null;
  lastSyncedAt?: string | null;
  freshness: Freshness;
  viewerCan: ViewerCan;
  history: HistoryEntry[];
  workloads: { deployments: Deployment[]; pods: Pod[] };
}

export interface SourceStatus {
  name: string;
  kind: 'BACKSTAGE' | 'ARGOCD' | 'KUBERNETES' | 'GITHUB';
  connected: boolean;
  stale: boolean;
  lastSyncAt?: string | null;
  lagSeconds?: number | null;
}

export interface PullRequest {
  number: number;
  title: string;
  url: string;
  authorLogin?: string | null;
  draft: boolean;
  updatedAt?: string | null;
}

export interface WorkflowRun {
  runId: number;
  name?: string | null;
  status?: string | null;
  conclusion?: string | null;
  url: string;
  branch?: string | null;
  createdAt?: string | null;
}

export interface Repository {
  slug: string;
  url: string;
  freshness: Freshness;
  pullRequests: PullRequest[];
  workflowRuns: WorkflowRun[];
}

export interface EntityData {
  sources: SourceStatus[];
  entity: {
    ref: string;
    argocdAppNames?: string[];
    githubSlug?: string | null;
    applications?: Application[];
    repository?: Repository | null;
  } | null;
}

/** The root field of a subscription event: every one has a cursor and a type. */
export interface LiveEvent {
  cursor: string;
  type: string;
  [field: string]: unknown;
}
