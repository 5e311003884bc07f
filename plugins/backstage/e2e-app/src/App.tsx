/**
 * The smallest Backstage app the plugin's end-to-end test needs: the new frontend system,
 * the catalog, the idp-graph plugin and sign-in through the backend's guest provider.
 * Everything else (pages, nav, theme) is frontend-defaults'.
 */
import React from 'react';
import { createApp } from '@backstage/frontend-defaults';
import { createFrontendModule } from '@backstage/frontend-plugin-api';
import { SignInPageBlueprint } from '@backstage/plugin-app-react';
import { SignInPage } from '@backstage/core-components';
import catalogPlugin from '@backstage/plugin-catalog/alpha';
import idpGraphPlugin from '@idp-graph/backstage-plugin/alpha';

const signInPage = SignInPageBlueprint.make({
  params: {
    loader: async () => props => <SignInPage {...props} providers={['guest']} />,
  },
});

export default createApp({
  features: [
    catalogPlugin,
    idpGraphPlugin,
    createFrontendModule({ pluginId: 'app', extensions: [signInPage] }),
  ],
});
