import {
  createApiRef,
  DiscoveryApi,
  FetchApi,
  IdentityApi,
} from '@backstage/core-plugin-api';
import { Client, createClient } from 'graphql-ws';
import manifest from '../../persisted-operations.json';
import { DOCUMENTS, OperationName } from './documents';
import { GraphQLErrorLike, GraphQLResult, LiveEvent } from './types';

/** The plugin id idp-graph's URL is discovered under (`discovery.endpoints`). */
export const IDP_GRAPH_PLUGIN_ID = 'idp-graph';

/** What a live subscription tells its owner. */
export interface LiveHandlers {
  /** One event (the subscription's root field), never `RESYNC_REQUIRED`. */
  onEvent(event: LiveEvent): void;
  /** Events were lost (the server said `RESYNC_REQUIRED`): read the state again. */
  onResync(): void;
  /** The connection's state, for the "live" indicator. */
  onStatus?(status: LiveStatus): void;
}

export type LiveStatus = 'connecting' | 'live' | 'reconnecting';

/** The plugin's access to idp-graph. */
export interface IdpGraphApi {
  /** Runs one of the plugin's queries or mutations; errors on fields come back in `errors`. */
  request<T>(
    operation: OperationName,
    variables?: Record<string, unknown>,
  ): Promise<GraphQLResult<T>>;
  /**
   * Follows one of the plugin's subscriptions until the returned function is called:
   * reconnects (with a fresh token) and resumes from the last event's cursor.
   */
  live(
    operation: OperationName,
    variables: Record<string, unknown>,
    handlers: LiveHandlers,
  ): () => void;
}

export const idpGraphApiRef = createApiRef<IdpGraphApi>({
  id: 'plugin.idp-graph.client',
});

/** An HTTP answer that is not a GraphQL response. */
export class IdpGraphRequestError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'IdpGraphRequestError';
  }
}

const HASHES: Record<string, string> = Object.fromEntries(
  (manifest as { operations: { name: string; id: string }[] }).operations.map(
    o => [o.name, o.id],
  ),
);

const codes = (errors?: GraphQLErrorLike[]) =>
  (errors ?? []).map(e => e.extensions?.code);

export interface IdpGraphClientOptions {
  discoveryApi: DiscoveryApi;
  fetchApi: FetchApi;
  identityApi: IdentityApi;
  /** Send operations as persisted-operation hashes (default true). */
  persistedOperations?: boolean;
  /** For tests: the websocket implementation graphql-ws uses. */
  webSocketImpl?: unknown;
}

/**
 * Queries and mutations go over Backstage's `fetchApi`, so the signed-in user's Backstage
 * token is attached (to the URL `discovery.endpoints` gives for `idp-graph`) and idp-graph
 * answers with that user's visibility. Subscriptions go over graphql-transport-ws with the
 * token in `connection_init`, read afresh on every (re)connection.
 */
export class IdpGraphClient implements IdpGraphApi {
  private readonly discoveryApi: DiscoveryApi;
  private readonly fetchApi: FetchApi;
  private readonly identityApi: IdentityApi;
  private readonly persisted: boolean;
  private readonly webSocketImpl?: unknown;
  /** Operations the server did not know by hash (APQ): sent with their text from then on. */
  private readonly withText = new Set<OperationName>();
  private ws?: Promise<Client>;
  private readonly statusListeners = new Set<(s: LiveStatus) => void>();
  private connected = false;

  constructor(options: IdpGraphClientOptions) {
    this.discoveryApi = options.discoveryApi;
    this.fetchApi = options.fetchApi;
    this.identityApi = options.identityApi;
    this.persisted = options.persistedOperations ?? true;
    this.webSocketImpl = options.webSocketImpl;
  }

  private payload(operation: OperationName, variables: Record<string, unknown>) {
    const body: Record<string, unknown> = { operationName: operation, variables };
    if (this.persisted) {
      body.extensions = {
        persistedQuery: { version: 1, sha256Hash: HASHES[operation] },
      };
    }
    if (!this.persisted || this.withText.has(operation)) {
      body.query = DOCUMENTS[operation];
    }
    return body;
  }

  async request<T>(
    operation: OperationName,
    variables: Record<string, unknown> = {},
  ): Promise<GraphQLResult<T>> {
    const base = await this.discoveryApi.getBaseUrl(IDP_GRAPH_PLUGIN_ID);
    const post = async () => {
      const response = await this.fetchApi.fetch(`${base}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify(this.payload(operation, variables)),
      });
      const type = response.headers.get('content-type') ?? '';
      if (!type.includes('json')) {
        throw new IdpGraphRequestError(
          `idp-graph answered ${response.status} ${response.statusText}`,
          response.status,
        );
      }
      return (await response.json()) as GraphQLResult<T>;
    };
    let result = await post();
    if (
      this.persisted &&
      !this.withText.has(operation) &&
      codes(result.errors).includes('PERSISTED_QUERY_NOT_FOUND')
    ) {
      // The server keeps no manifest and has not seen this hash: register it (APQ).
      this.withText.add(operation);
      result = await post();
    }
    return result;
  }

  private async client(): Promise<Client> {
    if (!this.ws) {
      this.ws = (async () => {
        const base = await this.discoveryApi.getBaseUrl(IDP_GRAPH_PLUGIN_ID);
        const url = `${base.replace(/^http/, 'ws')}/graphql/ws`;
        return createClient({
          url,
          lazy: true,
          // Reconnection is ours (below): each subscription resumes from its own cursor.
          retryAttempts: 0,
          keepAlive: 20_000,
          webSocketImpl: this.webSocketImpl,
          connectionParams: async () => {
            // Read on every connection: a reconnect after the token rotated sends the new one.
            const { token } = await this.identityApi.getCredentials();
            return token ? { Authorization: `Bearer ${token}` } : {};
          },
          on: {
            connected: () => this.setConnected(true),
            closed: () => this.setConnected(false),
          },
        });
      })();
      // A failed discovery is not kept: the next subscription (or retry) asks again.
      this.ws.catch(() => {
        this.ws = undefined;
      });
    }
    return this.ws;
  }

  private setConnected(connected: boolean) {
    this.connected = connected;
    for (const l of this.statusListeners) l(connected ? 'live' : 'reconnecting');
  }

  live(
    operation: OperationName,
    variables: Record<string, unknown>,
    handlers: LiveHandlers,
  ): () => void {
    let stopped = false;
    let cursor: string | undefined;
    let attempt = 0;
    let dispose: (() => void) | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = (s: LiveStatus) => handlers.onStatus?.(s);
    this.statusListeners.add(status);

    const again = (delayMs: number) => {
      if (stopped) return;
      status('reconnecting');
      timer = setTimeout(start, delayMs);
    };
    const backoff = () => Math.min(10_000, 500 * 2 ** attempt++);

    const start = async () => {
      if (stopped) return;
      let client: Client;
      try {
        client = await this.client();
      } catch {
        // Discovery failed (the backend restarting, say): try again, as after a drop.
        again(backoff());
        return;
      }
      if (stopped) return;
      // graphql-ws's client refuses a subscribe message without a `query` string, so the
      // text always goes along (beside the hash): a trusted-documents server still checks it
      // against its manifest. Once per subscription, not per event.
      const payload = {
        ...this.payload(operation, { ...variables, ...(cursor ? { after: cursor } : {}) }),
        query: DOCUMENTS[operation],
      };
      let settled = false;
      dispose = client.subscribe<Record<string, LiveEvent>>(
        payload as unknown as Parameters<Client['subscribe']>[0],
        {
          next: result => {
            if (this.connected) status('live');
            const errs = result.errors as GraphQLErrorLike[] | undefined;
            const event = result.data ? Object.values(result.data)[0] : undefined;
            if (!event) {
              if (codes(errs).includes('RESYNC_REQUIRED')) handlers.onResync();
              return;
            }
            attempt = 0;
            if (event.cursor) cursor = event.cursor;
            if (event.type === 'RESYNC_REQUIRED') handlers.onResync();
            else handlers.onEvent(event);
          },
          error: err => {
            if (settled || stopped) return;
            settled = true;
            const errs = Array.isArray(err) ? (err as GraphQLErrorLike[]) : undefined;
            const c = codes(errs);
            if (c.includes('RESYNC_REQUIRED')) {
              // Fell behind a shared execution: read the state again, resume from the cursor.
              handlers.onResync();
              again(0);
            } else {
              // A closed socket (server restart, network, expired token) or a refusal.
              again(backoff());
            }
          },
          complete: () => {
            if (settled || stopped) return;
            settled = true;
            again(backoff());
          },
        },
      );
      if (this.connected) status('live');
      else status('connecting');
    };
    start();
    return () => {
      stopped = true;
      this.statusListeners.delete(status);
      if (timer) clearTimeout(timer);
      dispose?.();
    };
  }
}
