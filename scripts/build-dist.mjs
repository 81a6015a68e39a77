#!/usr/bin/env node
// Compiles src/ to dist/ with tsconfig.build.json: ESM JavaScript, whose relative `.ts` imports
// tsc rewrites to `.js`, and .d.ts files (they keep the `.ts` specifiers, which TypeScript resolves
// to the .d.ts next to them). The `prepare` script: `npm ci` in a checkout and `npm pack` build it.
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
// `npm ci` / `npm install` in a checkout go on when the build cannot run or fails: its CLI runs
// src/ (bin/attune.js), so neither a type error nor `--omit=dev` may block the install;
// `npm pack` and `npm run build` fail.
const installing = ['ci', 'install'].includes(process.env.npm_command ?? '');

function stop(message) {
  console.error(`build-dist: ${message}`);
  if (installing) console.error('build-dist: the install goes on; `npm run build` retries the build');
  process.exit(installing ? 0 : 1);
}

let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  stop('TypeScript (a devDependency) is not installed: run `npm ci` first');
}
if (!existsSync(join(root, 'src', 'index.ts')))
  stop(`${join(root, 'src')} is missing: dist/ is built from a checkout`);

const started = Date.now();
rmSync(staging, { recursive: true, force: true });
const res = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', staging], {
  cwd: root,
  stdio: 'inherit',
});
if (res.status !== 0) {
  rmSync(staging, { recursive: true, force: true });
  stop(`tsc failed (exit ${res.status ?? res.signal}); dist/ left as it was`);
}
rmSync(dist, { recursive: true, force: true });
renameSync(staging, dist);
console.error(`attune: compiled src/ to dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
