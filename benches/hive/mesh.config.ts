// GraphQL Mesh (v1 compose) over the demo world's simulated ArgoCD and Backstage, described by
// the OpenAPI subsets beside this file. The load harness (benches/load.rs) runs
// `mesh-compose` with ARGOCD_URL, BACKSTAGE_URL and UPSTREAM_TOKEN set to the simulations it
// started; the URLs are baked into the composed supergraph.
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

const headers = { Authorization: `Bearer ${process.env.UPSTREAM_TOKEN ?? ''}` };

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadOpenAPISubgraph('ArgoCD', {
        source: './argocd.openapi.json',
        endpoint: process.env.ARGOCD_URL!,
        operationHeaders: headers,
      }),
    },
    {
      sourceHandler: loadOpenAPISubgraph('Backstage', {
        source: './backstage.openapi.json',
        endpoint: process.env.BACKSTAGE_URL!,
        operationHeaders: headers,
      }),
    },
  ],
  // The one join a gateway can express here: a component's ArgoCD application, named by the
  // component's `argocd/app-name` annotation (Mesh spells the key argocd_app_name).
  additionalTypeDefs: /* GraphQL */ `
    extend type Entity {
      application: Application
        @resolveTo(
          sourceName: "ArgoCD"
          sourceTypeName: "Query"
          sourceFieldName: "application"
          requiredSelectionSet: "{ metadata { annotations { argocd_app_name } } }"
          sourceArgs: { name: "{root.metadata.annotations.argocd_app_name}" }
        )
    }
  `,
});
