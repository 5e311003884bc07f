// Bundles the playground (GraphiQL, React) and the portal (Preact) into `<outdir>`, with a gzip
// copy of each file and `manifest.json` (sizes). build.rs runs it and embeds the output; no
// file it writes is committed.
//
// usage: node build.mjs <outdir>
import * as esbuild from 'esbuild';
import { gzipSync, constants } from 'node:zlib';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2] ?? 'dist';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: { playground: 'src/playground.jsx', portal: 'src/portal/main.jsx' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: out,
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.woff2': 'dataurl', '.woff': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl', '.png': 'dataurl' },
  legalComments: 'none',
  logLevel: 'warning',
});

const manifest = {};
for (const name of readdirSync(out)) {
  const raw = readFileSync(join(out, name));
  const gz = gzipSync(raw, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(join(out, `${name}.gz`), gz);
  manifest[name] = { bytes: raw.length, gzip: gz.length };
}
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2));
console.log(JSON.stringify(manifest));
