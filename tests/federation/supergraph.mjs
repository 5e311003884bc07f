// Composes idp-graph (in subgraph mode) with a second subgraph and serves the supergraph, the way
// a company with a federated graph would: the second subgraph is built with @apollo/subgraph and
// extends `Component` with review fields; composition is @apollo/composition's `composeServices`
// (what Rover runs); the supergraph runs on @apollo/gateway behind @apollo/server.
//
// usage: node supergraph.mjs <idp-graph base URL>
// Prints one JSON line {"gateway": url, "reviews": url, "hints": n} once everything listens, then
// serves until stdin closes. A composition failure prints {"errors": [...]} and exits 2.
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { composeServices } from '@apollo/composition';
import { ApolloGateway } from '@apollo/gateway';
import { parse } from 'graphql';

const idp = process.argv[2];
if (!idp) {
  console.error('usage: node supergraph.mjs <idp-graph base URL>');
  process.exit(64);
}

// 1. idp-graph's subgraph SDL, asked for as a gateway or Rover asks.
const res = await fetch(`${idp}/graphql`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ query: '{ _service { sdl } }' }),
});
const body = await res.json();
if (!body.data?._service?.sdl) {
  console.log(JSON.stringify({ errors: [`no _service.sdl: ${JSON.stringify(body)}`] }));
  process.exit(2);
}
const idpSdl = body.data._service.sdl;

// 2. A second subgraph: reviews of components, keyed by the catalog ref.
const reviewsTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

  type Component @key(fields: "ref") {
    ref: String!
    "Average review score, 0 when nobody reviewed it."
    reviewScore: Int!
    reviewers: [String!]!
  }

  type Query {
    topRated(first: Int = 2): [Component!]!
  }
`);
const reviews = {
  'component:default/sample-app': { score: 5, by: ['alice', 'carol'] },
  'component:default/my-app': { score: 4, by: ['carol'] },
};
const reviewsServer = new ApolloServer({
  schema: buildSubgraphSchema({
    typeDefs: reviewsTypeDefs,
    resolvers: {
      Query: {
        topRated: (_, { first }) => Object.keys(reviews).slice(0, first).map((ref) => ({ ref })),
      },
      Component: {
        __resolveReference: ({ ref }) => ({ ref }),
        reviewScore: ({ ref }) => reviews[ref]?.score ?? 0,
        reviewers: ({ ref }) => reviews[ref]?.by ?? [],
      },
    },
  }),
});
const { url: reviewsUrl } = await startStandaloneServer(reviewsServer, {
  listen: { port: 0, host: '127.0.0.1' },
});

// 3. Composition.
const composed = composeServices([
  { name: 'idp', typeDefs: parse(idpSdl), url: `${idp}/graphql` },
  { name: 'reviews', typeDefs: reviewsTypeDefs, url: reviewsUrl },
]);
if (composed.errors) {
  console.log(JSON.stringify({ errors: composed.errors.map((e) => e.message) }));
  process.exit(2);
}

// 4. The supergraph on a real gateway.
const gateway = new ApolloServer({
  gateway: new ApolloGateway({ supergraphSdl: composed.supergraphSdl }),
});
const { url } = await startStandaloneServer(gateway, { listen: { port: 0, host: '127.0.0.1' } });
console.log(JSON.stringify({ gateway: url, reviews: reviewsUrl, hints: composed.hints.length }));

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
