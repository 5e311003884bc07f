'use strict';
// A real Backstage backend for idp-graph's integration tests (tests/backstage_real.rs).
// Config: backstage.yaml beside this file; env PEER_PORT, PEER_TOKEN, PEER_CATALOG.
// PEER_PLUGINS=catalog (default), plus scaffolder and/or auth (the auth backend with the guest
// provider: signed ES256 user tokens from GET /api/auth/guest/refresh) and/or app (the app
// backend, serving a built Backstage frontend: the package `app`, which start.sh links to
// PEER_APP, with this backend's frontend config injected).
const { createBackend } = require('@backstage/backend-defaults');

const wanted = (process.env.PEER_PLUGINS || 'catalog').split(',').map((p) => p.trim());
const backend = createBackend();
backend.add(require('@backstage/plugin-catalog-backend'));
backend.add(require('@backstage/plugin-catalog-backend-module-scaffolder-entity-model'));
if (wanted.includes('scaffolder')) {
  backend.add(require('@backstage/plugin-scaffolder-backend'));
}
if (wanted.includes('auth')) {
  backend.add(require('@backstage/plugin-auth-backend'));
  backend.add(require('@backstage/plugin-auth-backend-module-guest-provider'));
}
if (wanted.includes('app')) {
  backend.add(require('@backstage/plugin-app-backend'));
}
backend.start().catch((err) => {
  console.error('peer backend failed to start', err);
  process.exit(1);
});
