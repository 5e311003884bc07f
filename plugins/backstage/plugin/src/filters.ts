import { Entity } from '@backstage/catalog-model';

/** The annotations idp-graph joins an entity to ArgoCD, Kubernetes and GitHub by. */
export const IDP_GRAPH_ANNOTATIONS = [
  'argocd/app-name',
  'argocd/app-selector',
  'backstage.io/kubernetes-id',
  'backstage.io/kubernetes-label-selector',
  'github.com/project-slug',
];

/**
 * Whether idp-graph can know anything about this entity: a Component with at least one of
 * the annotations it joins by. The tab appears only then; for other entities there is
 * nothing to show, and saying so beats an empty tab.
 */
export function isIdpGraphAvailable(entity: Entity): boolean {
  const annotations = entity.metadata.annotations ?? {};
  return (
    entity.kind.toLowerCase() === 'component' &&
    IDP_GRAPH_ANNOTATIONS.some(a => Boolean(annotations[a]))
  );
}

/** The overview card shows on every Component: it says so when there is no application. */
export function isIdpGraphCardAvailable(entity: Entity): boolean {
  return entity.kind.toLowerCase() === 'component';
}
