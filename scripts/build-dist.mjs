#!/usr/bin/env node
// Compiles src/ to dist/ (ESM JavaScript + .d.ts, relative `.ts` imports rewritten to `.js`) with
// tsconfig.build.json: the `prepare` script, so `npm ci` in a checkout and `npm pack` both build it.
// The build goes to a temporary folder that replaces dist/ only when tsc succeeded, so a failed
// build never leaves a half-written dist/ (nor stale files of deleted sources); tsc's errors fail
// `npm pack` and `npm run build`, not `npm ci`.
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const staging = join(root, 'dist.tmp');

let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  console.error('build-dist: TypeScript (a devDependency) is not installed: run `npm ci` first');
  process.exit(1);
}
if (!existsSync(join(root, 'src', 'index.ts'))) {
  console.error(`build-dist: ${join(root, 'src')} is missing: dist/ is built from a checkout`);
  process.exit(1);
}

const started = Date.now();
rmSync(staging, { recursive: true, force: true });
const res = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', staging], {
  cwd: root,
  stdio: 'inherit',
});
if (res.status !== 0) {
  rmSync(staging, { recursive: true, force: true });
  console.error(`build-dist: tsc failed (exit ${res.status ?? res.signal}); dist/ left as it was`);
  // `npm ci` / `npm install` in a checkout go on: its CLI runs src/ (bin/attune.js), so a type
  // error there must not block the install; `npm pack` and `npm run build` fail.
  const installing = ['ci', 'install'].includes(process.env.npm_command ?? '');
  if (installing) console.error('build-dist: the install goes on; `npm run build` retries the build');
  process.exit(installing ? 0 : 1);
}
rmSync(dist, { recursive: true, force: true });
renameSync(staging, dist);
console.error(`attune: compiled src/ to dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
