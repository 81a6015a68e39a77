#!/usr/bin/env node
// Runs every *.test.ts under the given folders with node:test (through tsx). Unit tests run once
// per available backend (ATTUNE_BACKEND=js, then native when the addon is built), so both are
// exercised; pass --backend=js|native to run one. Every unit pass also runs
// test/unit/backend/active-backend.test.ts (whatever --filter says), which fails when the backend
// that is active differs from the ATTUNE_BACKEND the pass asked for.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const dirs = args.filter((a) => !a.startsWith('--'));
const backendArg = args.find((a) => a.startsWith('--backend='))?.split('=')[1];
const filter = args.find((a) => a.startsWith('--filter='))?.split('=')[1];

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.ts') && (!filter || p.includes(filter))) out.push(p);
  }
  return out;
}

const files = dirs.flatMap((d) => collect(join(root, d), []));
const activeBackendTest = join(root, 'test', 'unit', 'backend', 'active-backend.test.ts');
if (files.length > 0 && dirs.some((d) => d.includes('unit')) && !files.includes(activeBackendTest)) {
  files.push(activeBackendTest);
}
if (files.length === 0) {
  console.error(`no test files under ${dirs.join(', ')}`);
  process.exit(1);
}
const nativeBuilt = existsSync(join(root, 'native', 'build', 'Release', 'attune_native.node'));
const isE2e = dirs.some((d) => d.includes('e2e'));
let backends;
if (backendArg) backends = [backendArg];
else if (isE2e) backends = [nativeBuilt || process.env.ATTUNE_REQUIRE_NATIVE === '1' ? 'native' : 'js'];
else backends = nativeBuilt || process.env.ATTUNE_REQUIRE_NATIVE === '1' ? ['js', 'native'] : ['js'];

let failed = false;
for (const backend of backends) {
  console.log(`\n# ${files.length} test files on the ${backend} backend`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ATTUNE_BACKEND: backend },
  });
  if (res.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
