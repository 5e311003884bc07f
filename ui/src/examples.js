// The operations the playground opens in tabs: the README's tour of the graph.
export const EXAMPLES = [
  {
    query: `# A service page in one request: catalog, ArgoCD, Kubernetes and GitHub.
# To act as someone, put {"Authorization": "Bearer <token>"} in the Headers tab below
# (\`idp-graph demo\` prints a token per persona); without one you are anonymous.
query ServicePage {
  entity(ref: "component:default/sample-app") {
    ref
    ... on Component {
      lifecycle
      owner { ref }
      applications {
        name
        sync { status revision commit { shortSha title author { name } } }
        health { status }
        history { historyId revision deployedAt }
      }
      kubernetes {
        deployments { name rollout { state ready desired } }
        pods { name phase restarts }
      }
      repository {
        pullRequests(first: 3) { number title }
        workflowRuns(first: 3) { name conclusion }
      }
    }
  }
}
`,
  },
  {
    query: `# Everything out of sync or unhealthy, across ArgoCD instances.
query Attention {
  platform { applications sync { status count } health { status count } }
  outOfSync: applications(filter: { syncStatus: OUT_OF_SYNC }) { nodes { key health { status } } }
  degraded: applications(filter: { healthStatus: DEGRADED }) { nodes { key sync { status } } }
}
`,
  },
  {
    query: `# Live: every sync, health and operation change (run it, then sync an app).
subscription Live($after: String) {
  applicationEvents(initial: true, after: $after) {
    cursor
    type
    application { name }
    previous { sync health operationPhase }
    current { sync health operationPhase }
  }
}
`,
  },
  {
    query: `# Search across the catalog, ArgoCD, Kubernetes and GitHub.
query Search {
  search(text: "sample", first: 10) {
    totalCount
    edges { node { kind rank name entity { ref } application { key } repositorySlug } }
  }
}
`,
  },
  {
    query: `# Act (needs a token whose groups own the app, e.g. alice or carol in the demo).
mutation Sync {
  syncApplication(input: { name: "sample-app" }) {
    auditId
    application { operationState { phase } }
  }
}
`,
  },
  {
    query: `# Who the server thinks you are (set Authorization in the Headers tab).
query Me {
  viewer { subject groups roles admin }
}
`,
  },
];
