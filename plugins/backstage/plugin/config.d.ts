export interface Config {
  /** The idp-graph Backstage plugin. Where idp-graph is: `discovery.endpoints` (plugin `idp-graph`). */
  idpGraph?: {
    /**
     * Send operations as their persisted-operation hashes (default true): what an idp-graph
     * in trusted-documents mode (`persisted.mode: trusted` with this package's
     * `persisted-operations.json`) runs. An idp-graph without the manifest learns each
     * document once (APQ).
     * @visibility frontend
     */
    persistedOperations?: boolean;
  };
}
