import React from 'react';
import { ApiBlueprint, createFrontendPlugin } from '@backstage/frontend-plugin-api';
import {
  EntityCardBlueprint,
  EntityContentBlueprint,
} from '@backstage/plugin-catalog-react/alpha';
import { idpGraphApiFactory } from './plugin';
import { isIdpGraphAvailable, isIdpGraphCardAvailable } from './filters';

/** `api:idp-graph`: the client, over the app's discovery, fetch and identity APIs (the same
 * factory the legacy plugin installs). */
export const idpGraphApi = ApiBlueprint.make({
  params: defineParams => defineParams(idpGraphApiFactory),
});

/** `entity-card:idp-graph/deployment`: the overview card of every Component. */
export const idpGraphEntityCard = EntityCardBlueprint.make({
  name: 'deployment',
  params: {
    filter: isIdpGraphCardAvailable,
    loader: () =>
      import('./components/IdpGraphEntityCard').then(m => <m.IdpGraphEntityCard />),
  },
});

/** `entity-content:idp-graph/deployment`: the tab, where idp-graph can know the entity. */
export const idpGraphEntityContent = EntityContentBlueprint.make({
  name: 'deployment',
  params: {
    path: '/idp-graph',
    title: 'Deployment',
    filter: isIdpGraphAvailable,
    loader: () =>
      import('./components/IdpGraphEntityContent').then(m => (
        <m.IdpGraphEntityContent />
      )),
  },
});

/** The plugin for apps on the new frontend system: `features: [idpGraphPlugin]`. */
export default createFrontendPlugin({
  pluginId: 'idp-graph',
  extensions: [idpGraphApi, idpGraphEntityCard, idpGraphEntityContent],
});
