/**
 * @jest-environment node
 */
import { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import manifest from '../../persisted-operations.json';
import { DOCUMENTS } from './documents';
import { IdpGraphClient } from './IdpGraphClient';
import { LiveEvent } from './types';

type Message = { type: string; id?: string; payload?: any };

/** A graphql-transport-ws server that records what clients send and lets the test answer. */
class Server {
  readonly wss: WebSocketServer;
  readonly inits: any[] = [];
  readonly subscribes: Message[] = [];
  sockets: WebSocket[] = [];
  private waiters: (() => void)[] = [];

  constructor() {
    this.wss = new WebSocketServer({ port: 0, handleProtocols: () => 'graphql-transport-ws' });
    this.wss.on('connection', socket => {
      this.sockets.push(socket);
      socket.on('message', raw => {
        const m = JSON.parse(String(raw)) as Message;
        if (m.type === 'connection_init') {
          this.inits.push(m.payload);
          socket.send(JSON.stringify({ type: 'connection_ack' }));
        } else if (m.type === 'subscribe') {
          this.subscribes.push(m);
        } else if (m.type === 'ping') {
          socket.send(JSON.stringify({ type: 'pong' }));
        }
        this.waiters.splice(0).forEach(w => w());
      });
    });
  }

  url() {
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  async until(check: () => boolean) {
    const deadline = Date.now() + 8_000;
    while (!check()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out: ${JSON.stringify({ inits: this.inits, subscribes: this.subscribes, sockets: this.sockets.length })}`);
      }
      await new Promise<void>(r => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  next(id: string, data: unknown) {
    const socket = this.sockets[this.sockets.length - 1];
    socket.send(JSON.stringify({ type: 'next', id, payload: { data } }));
  }

  close() {
    for (const s of this.wss.clients) s.terminate();
    return new Promise(r => this.wss.close(r));
  }
}

const hashOf = (name: string) =>
  manifest.operations.find(o => o.name === name)!.id;

describe('persisted-operations.json', () => {
  it('holds every document of documents.ts under its SHA-256', () => {
    const names = Object.keys(DOCUMENTS).sort();
    expect(manifest.operations.map(o => o.name).sort()).toEqual(names);
    for (const [name, body] of Object.entries(DOCUMENTS)) {
      const entry = manifest.operations.find(o => o.name === name)!;
      expect(entry.body).toBe(body);
      expect(entry.id).toBe(createHash('sha256').update(body).digest('hex'));
    }
  });
});

jest.setTimeout(20_000);

describe('IdpGraphClient', () => {
  let server: Server;
  beforeEach(() => {
    server = new Server();
  });
  afterEach(() => server.close());

  it('follows a subscription with the token in connection_init, read afresh on every reconnect, resuming after the last cursor', async () => {
    const tokens = ['token-one', 'token-two'];
    let asked = 0;
    const client = new IdpGraphClient({
      discoveryApi: { getBaseUrl: async () => server.url() },
      fetchApi: { fetch: jest.fn() },
      identityApi: {
        getCredentials: async () => ({ token: tokens[Math.min(asked++, 1)] }),
      } as any,
      webSocketImpl: WebSocket,
    });
    const events: LiveEvent[] = [];
    let resyncs = 0;
    const stop = client.live(
      'IdpGraphApplicationEvents',
      { names: ['sample-app'] },
      { onEvent: e => events.push(e), onResync: () => resyncs++ },
    );
    await server.until(() => server.subscribes.length === 1);
    expect(server.inits[0]).toEqual({ Authorization: 'Bearer token-one' });
    const first = server.subscribes[0];
    // graphql-ws's client needs the text; the hash goes beside it.
    expect(first.payload.query).toBe(DOCUMENTS.IdpGraphApplicationEvents);
    expect(first.payload.extensions.persistedQuery.sha256Hash).toBe(
      hashOf('IdpGraphApplicationEvents'),
    );
    expect(first.payload.variables).toEqual({ names: ['sample-app'] });

    server.next(first.id!, {
      applicationEvents: { cursor: 'cursor-1', type: 'MODIFIED', application: { name: 'x' } },
    });
    await server.until(() => events.length === 1);
    expect(events[0].cursor).toBe('cursor-1');

    // The connection drops: the client comes back with the current token, after cursor-1.
    server.sockets[0].terminate();
    await server.until(() => server.subscribes.length === 2);
    expect(server.inits[1]).toEqual({ Authorization: 'Bearer token-two' });
    const second = server.subscribes[1];
    expect(second.payload.variables).toEqual({ names: ['sample-app'], after: 'cursor-1' });

    // RESYNC_REQUIRED: the owner reads the state again.
    server.next(second.id!, {
      applicationEvents: { cursor: 'cursor-2', type: 'RESYNC_REQUIRED', application: null },
    });
    await server.until(() => resyncs === 1);
    expect(events).toHaveLength(1);
    stop();
  });

  it('asks discovery again after it failed, and subscribes once it answers', async () => {
    let asked = 0;
    const client = new IdpGraphClient({
      discoveryApi: {
        getBaseUrl: async () => {
          asked += 1;
          if (asked === 1) throw new Error('discovery is restarting');
          return server.url();
        },
      },
      fetchApi: { fetch: jest.fn() },
      identityApi: { getCredentials: async () => ({ token: 't' }) } as any,
      webSocketImpl: WebSocket,
    });
    const stop = client.live(
      'IdpGraphApplicationEvents',
      { names: ['sample-app'] },
      { onEvent: () => {}, onResync: () => {} },
    );
    await server.until(() => server.subscribes.length === 1);
    expect(asked).toBe(2);
    stop();
  });

  it('sends queries over fetchApi to the discovered URL as hashes, and the text only when asked (APQ)', async () => {
    const bodies: any[] = [];
    const answers = [
      { errors: [{ message: 'not found', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }] },
      { data: { sources: [] } },
    ];
    const fetch = jest.fn(async (_url: string, init: any) => {
      bodies.push(JSON.parse(init.body));
      return new Response(JSON.stringify(answers.shift()), {
        headers: { 'content-type': 'application/json' },
      });
    });
    const client = new IdpGraphClient({
      discoveryApi: { getBaseUrl: async id => `http://graph.example/${id}` },
      fetchApi: { fetch: fetch as any },
      identityApi: { getCredentials: async () => ({}) } as any,
    });
    const r = await client.request('IdpGraphSources');
    expect(r).toEqual({ data: { sources: [] } });
    expect(fetch.mock.calls[0][0]).toBe('http://graph.example/idp-graph/graphql');
    expect(bodies[0].query).toBeUndefined();
    expect(bodies[0].extensions.persistedQuery.sha256Hash).toBe(hashOf('IdpGraphSources'));
    expect(bodies[1].query).toBe(DOCUMENTS.IdpGraphSources);
  });
});
