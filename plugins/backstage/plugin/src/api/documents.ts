/**
 * Every GraphQL operation the plugin sends, by operation name. `persisted-operations.json`
 * (the trusted-documents manifest this package ships) is generated from this file by
 * `npm run manifest`; a unit test fails when the two drift apart.
 *
 * Each document is self-contained (its fragments inlined), so its SHA-256 is the one the
 * server computes for the same text.
 */

const APPLICATION_FIELDS = /* GraphQL */ `
  key
  name
  namespace
  instance
  project
  autoSync
  sync {
    status
    revision
    commit { sha shortSha title url author { name login } }
  }
  health { status message }
  operationState { phase message startedAt finishedAt }
  lastSyncedAt
  freshness { source observedAt stale }
  viewerCan { sync rollback refresh restart }
  history {
    historyId
    revision
    deployedAt
    initiatedBy
    automated
    commit { shortSha title url author { name login } }
  }
  workloads {
    deployments {
      key
      cluster
      namespace
      name
      rollout { state desired updated ready available message }
      viewerCan { restart }
      events { type reason message count lastSeen }
    }
    pods {
      key
      cluster
      namespace
      name
      phase
      ready
      restarts
      containers { name ready restartCount state reason }
      events { type reason message count lastSeen }
    }
  }
`;

export const DOCUMENTS = {
  IdpGraphEntity: /* GraphQL */ `query IdpGraphEntity($ref: String!) {
  sources { name kind connected stale lastSyncAt lagSeconds }
  entity(ref: $ref) {
    ref
    ... on Component {
      argocdAppNames
      githubSlug
      applications {${APPLICATION_FIELDS}}
      repository {
        slug
        url
        freshness { source observedAt stale }
        pullRequests(first: 5) { number title url authorLogin draft updatedAt }
        workflowRuns(first: 5) { runId name status conclusion url branch createdAt }
      }
    }
  }
}`,
  IdpGraphSources: /* GraphQL */ `query IdpGraphSources {
  sources { name kind connected stale lastSyncAt lagSeconds }
}`,
  IdpGraphApplicationEvents: /* GraphQL */ `subscription IdpGraphApplicationEvents($names: [String!]!, $after: String) {
  applicationEvents(filter: { names: $names }, after: $after) {
    cursor
    type
    application {${APPLICATION_FIELDS}}
  }
}`,
  IdpGraphWorkloadEvents: /* GraphQL */ `subscription IdpGraphWorkloadEvents($entity: String!, $after: String) {
  workloadEvents(filter: { entity: $entity }, after: $after) {
    cursor
    type
    reason
    objectName
  }
}`,
  IdpGraphRolloutEvents: /* GraphQL */ `subscription IdpGraphRolloutEvents($entity: String!, $after: String) {
  rolloutEvents(filter: { entity: $entity }, after: $after) {
    cursor
    type
    name
  }
}`,
  IdpGraphSync: /* GraphQL */ `mutation IdpGraphSync($name: String!, $instance: String, $namespace: String) {
  syncApplication(input: { name: $name, instance: $instance, namespace: $namespace }) {
    auditId
    application { key operationState { phase } }
  }
}`,
  IdpGraphRefresh: /* GraphQL */ `mutation IdpGraphRefresh($name: String!, $instance: String, $namespace: String) {
  refreshApplication(input: { name: $name, instance: $instance, namespace: $namespace }) {
    auditId
    application { key }
  }
}`,
  IdpGraphRollback: /* GraphQL */ `mutation IdpGraphRollback($name: String!, $instance: String, $namespace: String, $id: Int!) {
  rollbackApplication(input: { name: $name, instance: $instance, namespace: $namespace, id: $id }) {
    auditId
    application { key operationState { phase } }
  }
}`,
  IdpGraphRestart: /* GraphQL */ `mutation IdpGraphRestart($cluster: String!, $namespace: String!, $name: String!) {
  restartDeployment(cluster: $cluster, namespace: $namespace, name: $name) {
    auditId
    restartedAt
  }
}`,
} as const;

/** The name of one of the plugin's operations. */
export type OperationName = keyof typeof DOCUMENTS;
