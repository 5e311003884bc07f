// Hive Gateway with its in-memory response cache: one cache for every caller, entries kept
// for CACHE_TTL_MS (default a minute) — stale for up to that long, unlike idp-graph's.
import { defineConfig } from '@graphql-hive/gateway';

export const gatewayConfig = defineConfig({
  responseCaching: {
    session: () => null,
    ttl: Number(process.env.CACHE_TTL_MS ?? 60_000),
  },
});
