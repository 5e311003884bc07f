import React from 'react';
import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { renderInTestApp, TestApiProvider } from '@backstage/test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { idpGraphApiRef } from '../api/IdpGraphClient';
import { IdpGraphEntityCard } from './IdpGraphEntityCard';
import { IdpGraphEntityContent } from './IdpGraphEntityContent';
import { application, entity, entityData, FakeIdpGraphApi } from './fixtures';

async function renderCard(api: FakeIdpGraphApi, element = <IdpGraphEntityCard />) {
  const r = await renderInTestApp(
    <TestApiProvider apis={[[idpGraphApiRef, api]]}>
      <EntityProvider entity={entity}>{element}</EntityProvider>
    </TestApiProvider>,
  );
  await screen.findByText('sample-app', { selector: 'b' });
  return r;
}

const badge = (container: HTMLElement, kind: string) =>
  container.querySelector(`[data-badge=${kind}]`)?.getAttribute('data-value');

describe('IdpGraphEntityCard', () => {
  it('shows sync, health, the commit behind the revision, rollout, pods, pull requests and the latest run', async () => {
    const api = new FakeIdpGraphApi();
    const { container } = await renderCard(api);
    expect(api.requests[0]).toEqual({
      operation: 'IdpGraphEntity',
      variables: { ref: 'component:default/sample-app' },
    });
    expect(badge(container, 'sync')).toBe('SYNCED');
    expect(badge(container, 'health')).toBe('HEALTHY');
    expect(screen.getByText('Synced')).toBeInTheDocument();
    expect(screen.getByText('Healthy')).toBeInTheDocument();
    const revision = container.querySelector('[data-field=revision]') as HTMLElement;
    expect(revision).toHaveTextContent(/^a1b2c3d Bump the greeting.* by dana$/);
    expect(within(revision).getByText('Bump the greeting')).toHaveAttribute(
      'data-field',
      'commit-title',
    );
    expect(revision.querySelector('[data-field=commit-author]')).toHaveTextContent('dana');
    expect(revision.querySelector('a')).toHaveAttribute(
      'href',
      'https://github.example/yourcompany/sample-app/commit/a1b2c3d4e5f6',
    );
    expect(container.querySelector('[data-field=rollout]')).toHaveTextContent(
      'Rollout sample-app: 2/2 updated, 2 ready',
    );
    expect(container.querySelector('[data-field=pods]')).toHaveTextContent(
      'Pods: 1/2 ready, 3 restarts; waiting: CrashLoopBackOff (sample-app-2)',
    );
    // (Backstage's Link adds ", Opens in a new window" for screen readers.)
    expect(container.querySelector('[data-field=pull-requests]')).toHaveTextContent(
      /^1 open pull request.* · #7.* Add a health endpoint$/,
    );
    expect(container.querySelector('[data-field=latest-run]')).toHaveTextContent(
      /^Latest run: CI.* success on main$/,
    );
  });

  it('updates live from the applicationEvents subscription, without asking again', async () => {
    const api = new FakeIdpGraphApi();
    const { container } = await renderCard(api);
    await waitFor(() =>
      expect(
        api.subscriptions.find(s => s.operation === 'IdpGraphApplicationEvents')?.variables,
      ).toEqual({ names: ['sample-app'] }),
    );
    const asked = api.requests.filter(r => r.operation === 'IdpGraphEntity').length;
    act(() =>
      api.emit('IdpGraphApplicationEvents', {
        application: application({
          sync: {
            status: 'OUT_OF_SYNC',
            revision: 'ffff',
            commit: {
              shortSha: 'fffffff',
              title: 'A newer commit',
              url: 'https://github.example/c/ffff',
              author: { name: 'Erin' },
            },
          },
          health: { status: 'DEGRADED' },
        }),
      }),
    );
    expect(badge(container, 'sync')).toBe('OUT_OF_SYNC');
    expect(badge(container, 'health')).toBe('DEGRADED');
    expect(container.querySelector('[data-field=commit-title]')).toHaveTextContent(
      'A newer commit',
    );
    expect(container.querySelector('[data-field=commit-author]')).toHaveTextContent('Erin');
    expect(api.requests.filter(r => r.operation === 'IdpGraphEntity').length).toBe(asked);
  });

  it('reads the entity again when the server says RESYNC_REQUIRED', async () => {
    const api = new FakeIdpGraphApi();
    const { container } = await renderCard(api);
    await waitFor(() => expect(api.subscriptions.length).toBeGreaterThan(0));
    api.entity = { data: entityData([application({ health: { status: 'MISSING' } })]) };
    const sub = api.subscriptions.find(s => s.operation === 'IdpGraphApplicationEvents')!;
    await act(async () => sub.handlers.onResync());
    await waitFor(() => expect(badge(container, 'health')).toBe('MISSING'));
  });

  it('names ArgoCD as unavailable and keeps the last known state, with its age', async () => {
    const api = new FakeIdpGraphApi();
    const data = entityData([
      application({
        freshness: {
          source: 'main',
          stale: true,
          observedAt: new Date(Date.now() - 42_000).toISOString(),
        },
      }),
    ]);
    data.sources = data.sources.map(s =>
      s.kind === 'ARGOCD' ? { ...s, connected: false, stale: true } : s,
    );
    api.entity = { data };
    const { container } = await renderCard(api);
    const notice = container.querySelector('[data-upstream-down]') as HTMLElement;
    expect(notice).toHaveAttribute('data-upstream-down', 'ArgoCD');
    expect(notice).toHaveTextContent(
      /ArgoCD \(main\) is unavailable: showing the last known state, observed 4\d s ago/,
    );
    expect(badge(container, 'sync')).toBe('SYNCED');
    expect(badge(container, 'health')).toBe('HEALTHY');
    expect(container.querySelector('[data-field=stale]')).toHaveTextContent(
      /last known, observed 4\d s ago/,
    );
  });

  it('names GitHub as unavailable when its fields errored', async () => {
    const api = new FakeIdpGraphApi();
    const data = entityData();
    data.entity!.repository = null;
    api.entity = {
      data,
      errors: [
        {
          message: 'GitHub is unavailable',
          path: ['entity', 'repository'],
          extensions: { code: 'UPSTREAM_UNAVAILABLE', source: 'github' },
        },
      ],
    };
    const { container } = await renderCard(api);
    expect(container.querySelector('[data-upstream-down]')).toHaveAttribute(
      'data-upstream-down',
      'GitHub',
    );
  });

  it('offers no action without viewerCan, and Sync behind a confirmation with it', async () => {
    const api = new FakeIdpGraphApi();
    const { container, unmount } = await renderCard(api);
    expect(container.querySelectorAll('[data-action]')).toHaveLength(0);
    expect(screen.queryByRole('button', { name: 'Sync' })).not.toBeInTheDocument();
    unmount();

    const allowed = new FakeIdpGraphApi();
    allowed.entity = {
      data: entityData([
        application({ viewerCan: { sync: true, refresh: false, rollback: false, restart: false } }),
      ]),
    };
    const second = await renderCard(allowed);
    const actions = [...second.container.querySelectorAll('[data-action]')].map(b =>
      b.getAttribute('data-action'),
    );
    expect(actions).toEqual(['sync']);
    fireEvent.click(screen.getByRole('button', { name: 'Sync' }));
    expect(allowed.requests.some(r => r.operation === 'IdpGraphSync')).toBe(false);
    fireEvent.click(await screen.findByRole('button', { name: 'Sync', hidden: false }).then(() =>
      document.querySelector('[data-confirm=ok]') as HTMLElement,
    ));
    await waitFor(() =>
      expect(allowed.requests.find(r => r.operation === 'IdpGraphSync')?.variables).toEqual({
        name: 'sample-app',
        instance: 'main',
        namespace: 'argocd',
      }),
    );
  });

  it('says when the entity has no application', async () => {
    const api = new FakeIdpGraphApi();
    const data = entityData([]);
    data.entity!.argocdAppNames = [];
    api.entity = { data };
    const { container } = await renderInTestApp(
      <TestApiProvider apis={[[idpGraphApiRef, api]]}>
        <EntityProvider entity={entity}>
          <IdpGraphEntityCard />
        </EntityProvider>
      </TestApiProvider>,
    );
    await waitFor(() =>
      expect(container.querySelector('[data-state=no-application]')).toBeInTheDocument(),
    );
  });

  it('does not call an application missing when the user may only not see it', async () => {
    const api = new FakeIdpGraphApi();
    const data = entityData([]);
    data.entity!.argocdAppNames = ['argocd'];
    api.entity = { data };
    const { container } = await renderInTestApp(
      <TestApiProvider apis={[[idpGraphApiRef, api]]}>
        <EntityProvider entity={entity}>
          <IdpGraphEntityCard />
        </EntityProvider>
      </TestApiProvider>,
    );
    const notice = await waitFor(() => {
      const n = container.querySelector('[data-state=hidden-applications]');
      expect(n).toBeInTheDocument();
      return n!;
    });
    expect(notice).toHaveTextContent('Named by this entity but not shown to you: argocd');
    expect(container.querySelector('[data-state=no-application]')).not.toBeInTheDocument();
  });
});

describe('IdpGraphEntityContent', () => {
  it('shows history, workloads with Warning events and GitHub; actions only where allowed', async () => {
    const api = new FakeIdpGraphApi();
    api.entity = {
      data: entityData([
        application({ viewerCan: { sync: false, refresh: true, rollback: true, restart: false } }),
      ]),
    };
    const { container } = await renderInTestApp(
      <TestApiProvider apis={[[idpGraphApiRef, api]]}>
        <EntityProvider entity={entity}>
          <IdpGraphEntityContent />
        </EntityProvider>
      </TestApiProvider>,
    );
    await waitFor(() =>
      expect(container.querySelectorAll('[data-history]')).toHaveLength(2),
    );
    expect(container.querySelectorAll('[data-pod]')).toHaveLength(2);
    expect(container.querySelector('[data-warning]')).toHaveTextContent(
      'BackOff: Back-off restarting',
    );
    expect(container.querySelector('[data-pr="7"]')).toBeInTheDocument();
    const actions = [...container.querySelectorAll('[data-action]')].map(b =>
      b.getAttribute('data-action'),
    );
    // Refresh, and Roll back on the older entry; no Sync, no Restart.
    expect(actions).toEqual(['refresh', 'rollback']);
  });
});
