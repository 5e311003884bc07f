import { IdpGraphApi } from '../api/IdpGraphClient';
import { Application, Deployment } from '../api/types';

const appVars = (a: Application) => ({
  name: a.name,
  instance: a.instance,
  namespace: a.namespace,
});

export const syncApp = (api: IdpGraphApi, a: Application) =>
  api.request('IdpGraphSync', appVars(a));
export const refreshApp = (api: IdpGraphApi, a: Application) =>
  api.request('IdpGraphRefresh', appVars(a));
export const rollbackApp = (api: IdpGraphApi, a: Application, id: number) =>
  api.request('IdpGraphRollback', { ...appVars(a), id });
export const restartDeployment = (api: IdpGraphApi, d: Deployment) =>
  api.request('IdpGraphRestart', {
    cluster: d.cluster,
    namespace: d.namespace ?? '',
    name: d.name,
  });
