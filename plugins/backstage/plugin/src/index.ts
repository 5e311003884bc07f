/**
 * idp-graph for Backstage: ArgoCD, Kubernetes and GitHub state of catalog entities, live,
 * with the signed-in user's visibility. The new frontend system's plugin is `./alpha`.
 *
 * @packageDocumentation
 */
export {
  idpGraphPlugin,
  idpGraphApiFactory,
  EntityIdpGraphCard,
  EntityIdpGraphContent,
  rootRouteRef,
} from './plugin';
export {
  idpGraphApiRef,
  IdpGraphClient,
  IdpGraphRequestError,
  IDP_GRAPH_PLUGIN_ID,
} from './api/IdpGraphClient';
export type {
  IdpGraphApi,
  IdpGraphClientOptions,
  LiveHandlers,
  LiveStatus,
} from './api/IdpGraphClient';
export { DOCUMENTS } from './api/documents';
export type { OperationName } from './api/documents';
export * from './api/types';
export {
  isIdpGraphAvailable,
  isIdpGraphCardAvailable,
  IDP_GRAPH_ANNOTATIONS,
} from './filters';
