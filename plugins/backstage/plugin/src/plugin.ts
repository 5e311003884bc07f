import {
  configApiRef,
  createApiFactory,
  createComponentExtension,
  createPlugin,
  createRoutableExtension,
  createRouteRef,
  discoveryApiRef,
  fetchApiRef,
  identityApiRef,
} from '@backstage/core-plugin-api';
import { IdpGraphClient, idpGraphApiRef } from './api/IdpGraphClient';

/** The legacy frontend system's route of the entity tab. */
export const rootRouteRef = createRouteRef({ id: 'idp-graph' });

/** The API factory both frontend systems install. */
export const idpGraphApiFactory = createApiFactory({
  api: idpGraphApiRef,
  deps: {
    discoveryApi: discoveryApiRef,
    fetchApi: fetchApiRef,
    identityApi: identityApiRef,
    configApi: configApiRef,
  },
  factory: ({ discoveryApi, fetchApi, identityApi, configApi }) =>
    new IdpGraphClient({
      discoveryApi,
      fetchApi,
      identityApi,
      persistedOperations:
        configApi.getOptionalBoolean('idpGraph.persistedOperations') ?? true,
    }),
});

/** The plugin for apps on the legacy frontend system (`App.tsx` with `EntityPage.tsx`). */
export const idpGraphPlugin = createPlugin({
  id: 'idp-graph',
  apis: [idpGraphApiFactory],
  routes: { root: rootRouteRef },
});

/** The overview card (legacy system): put it in the entity page's overview grid. */
export const EntityIdpGraphCard = idpGraphPlugin.provide(
  createComponentExtension({
    name: 'EntityIdpGraphCard',
    component: {
      lazy: () =>
        import('./components/IdpGraphEntityCard').then(m => m.IdpGraphEntityCard),
    },
  }),
);

/** The entity tab (legacy system): an `EntityLayout.Route`'s content. */
export const EntityIdpGraphContent = idpGraphPlugin.provide(
  createRoutableExtension({
    name: 'EntityIdpGraphContent',
    component: () =>
      import('./components/IdpGraphEntityContent').then(m => m.IdpGraphEntityContent),
    mountPoint: rootRouteRef,
  }),
);
