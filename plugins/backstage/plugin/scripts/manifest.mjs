// Writes persisted-operations.json (Apollo's `apollo-persisted-query-manifest` format, which
// idp-graph's `persisted.manifest` reads) from src/api/documents.ts.
//
//   node scripts/manifest.mjs          # write it
//   node scripts/manifest.mjs --check  # exit 1 when the committed file differs
//
// documents.ts is TypeScript, so this reads it as text: each `Name: /* GraphQL */ \`...\``
// entry, with `${APPLICATION_FIELDS}` (the one shared constant) substituted the way the
// template literal does at run time.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = readFileSync(join(root, 'src/api/documents.ts'), 'utf8');
const constants = {};
for (const m of source.matchAll(/const (\w+) = \/\* GraphQL \*\/ `([^`]*)`;/g)) constants[m[1]] = m[2];
const operations = [];
for (const m of source.matchAll(/^  (\w+): \/\* GraphQL \*\/ `([^`]*)`,$/gm)) {
  const body = m[2].replace(/\$\{(\w+)\}/g, (_, name) => {
    if (!(name in constants)) throw new Error(`documents.ts: unknown constant ${name}`);
    return constants[name];
  });
  const type = body.split(' ')[0];
  operations.push({
    id: createHash('sha256').update(body).digest('hex'),
    name: m[1],
    type,
    body,
  });
}
if (operations.length === 0) throw new Error('documents.ts: no operations found');
const manifest = `${JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations }, null, 2)}\n`;
const file = join(root, 'persisted-operations.json');
if (process.argv.includes('--check')) {
  let current = '';
  try { current = readFileSync(file, 'utf8'); } catch {}
  if (current !== manifest) {
    console.error('persisted-operations.json is out of date: run `npm run manifest` in plugins/backstage/plugin');
    process.exit(1);
  }
  console.log(`persisted-operations.json: ${operations.length} operations, up to date`);
} else {
  writeFileSync(file, manifest);
  console.log(`persisted-operations.json: ${operations.length} operations`);
}
