#!/usr/bin/env node
// Builds the C++ addon in native/ with node-gyp during `npm ci` (the root package's own install
// script: npm 11 would not run a dependency's). A failed build never fails the install: Attune then
// runs on the js backend and says why (native/build-log.txt, `attune doctor`). Set
// ATTUNE_REQUIRE_NATIVE=1 to make a failed build an error.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const logPath = join(nativeDir, 'build-log.txt');
const verbose = process.argv.includes('--verbose');

function nodeGypCommand() {
  // npm sets npm_config_node_gyp to its bundled node-gyp; fall back to the one next to npm.
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, [fromNpm]];
  const npmDir = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  const bundled = join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return [process.execPath, [bundled]];
  return ['node-gyp', []];
}

if (process.env.ATTUNE_SKIP_NATIVE_BUILD === '1') {
  writeFileSync(logPath, 'skipped: ATTUNE_SKIP_NATIVE_BUILD=1\n');
  process.exit(0);
}
const [cmd, pre] = nodeGypCommand();
const started = Date.now();
console.error('attune: building the native CPU backend (node-gyp, C++17) ...');
const res = spawnSync(cmd, [...pre, 'rebuild', '--directory', nativeDir, '-j', 'max'], {
  cwd: nativeDir,
  encoding: 'utf8',
  env: process.env,
});
const output = `${res.stdout ?? ''}\n${res.stderr ?? ''}${res.error ? `\n${res.error.message}` : ''}`;
const ok = res.status === 0;
writeFileSync(logPath, `${ok ? 'ok' : `failed (exit ${res.status})`}\n${output}`);
if (verbose || !ok) process.stderr.write(ok ? output : output.slice(-4000));
if (ok) {
  console.error(`attune: native backend built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} else {
  console.error(
    `attune: native backend build FAILED; Attune will run on the slower js backend. Log: ${logPath}`,
  );
  if (process.env.ATTUNE_REQUIRE_NATIVE === '1') process.exit(1);
}
