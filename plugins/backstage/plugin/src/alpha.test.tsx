import React from 'react';
import { screen, waitFor } from '@testing-library/react';
import {
  createExtensionTester,
  renderInTestApp,
  TestApiProvider,
} from '@backstage/frontend-test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import {
  EntityCardBlueprint,
  EntityContentBlueprint,
} from '@backstage/plugin-catalog-react/alpha';
import idpGraphPlugin, { idpGraphEntityCard, idpGraphEntityContent } from './alpha';
import * as legacy from './index';
import {
  renderInTestApp as legacyRender,
  TestApiProvider as LegacyTestApiProvider,
} from '@backstage/test-utils';
import { idpGraphApiRef } from './api/IdpGraphClient';
import { entity, FakeIdpGraphApi } from './components/fixtures';

const api: typeof entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'API',
  metadata: { name: 'sample-api' },
  spec: {},
};

describe('the new frontend system (./alpha)', () => {
  it('is one plugin with an API, an entity card and an entity tab', () => {
    expect(idpGraphPlugin.pluginId).toBe('idp-graph');
  });

  it('shows the card on Components and the tab where an annotation joins the entity', () => {
    const card = createExtensionTester(idpGraphEntityCard);
    const cardFilter = card.get(EntityCardBlueprint.dataRefs.filterFunction)!;
    expect(cardFilter(entity)).toBe(true);
    expect(cardFilter(api)).toBe(false);
    const tab = createExtensionTester(idpGraphEntityContent);
    const tabFilter = tab.get(EntityContentBlueprint.dataRefs.filterFunction)!;
    expect(tabFilter(entity)).toBe(true);
    expect(tabFilter({ ...entity, metadata: { name: 'bare' } })).toBe(false);
  });

  it('renders the card extension in a test app of the new system', async () => {
    const fake = new FakeIdpGraphApi();
    const tester = createExtensionTester(idpGraphEntityCard);
    renderInTestApp(
      <TestApiProvider apis={[[idpGraphApiRef, fake]]}>
        <EntityProvider entity={entity}>{tester.reactElement()}</EntityProvider>
      </TestApiProvider>,
    );
    await waitFor(() =>
      expect(document.querySelector('[data-badge=sync]')).toHaveAttribute(
        'data-value',
        'SYNCED',
      ),
    );
    expect(screen.getByText('Deployment')).toBeInTheDocument();
  });
});

describe('the legacy frontend system', () => {
  it('exports the plugin and its extensions', () => {
    expect(legacy.idpGraphPlugin.getId()).toBe('idp-graph');
    expect(legacy.EntityIdpGraphCard).toBeDefined();
    expect(legacy.EntityIdpGraphContent).toBeDefined();
    expect(legacy.idpGraphPlugin.getApis()).toHaveLength(1);
  });
});

describe('the legacy card extension', () => {
  it('renders in a legacy test app', async () => {
    const fake = new FakeIdpGraphApi();
    await legacyRender(
      <LegacyTestApiProvider apis={[[idpGraphApiRef, fake]]}>
        <EntityProvider entity={entity}>
          <legacy.EntityIdpGraphCard />
        </EntityProvider>
      </LegacyTestApiProvider>,
    );
    await waitFor(() =>
      expect(document.querySelector('[data-badge=health]')).toHaveAttribute(
        'data-value',
        'HEALTHY',
      ),
    );
  });
});
