/**
 * bin/attune.js picks the code it runs: the TypeScript sources (through tsx) where src/ sits next
 * to bin/, as in a checkout; the compiled dist/ in an installed package (no src/) or with
 * ATTUNE_USE_DIST=1; a clear one-line error when the compiled CLI is missing. Checked on a copy of
 * the shim in a temp folder with stand-in main() modules that report which one ran.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const pkg = mkdtempSync(join(tmpdir(), 'attune-bin-'));
after(() => rmSync(pkg, { recursive: true, force: true }));

writeFileSync(join(pkg, 'package.json'), '{"type": "module"}\n');
mkdirSync(join(pkg, 'bin'));
copyFileSync(join(root, 'bin', 'attune.js'), join(pkg, 'bin', 'attune.js'));
// tsx for the sources, as a checkout's node_modules has it
symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');

function writeMain(kind: 'src' | 'dist', code: number): void {
  const file = kind === 'src' ? join(pkg, 'src', 'cli', 'main.ts') : join(pkg, 'dist', 'cli', 'main.js');
  mkdirSync(dirname(file), { recursive: true });
  const signature = kind === 'src' ? 'argv: string[]): Promise<number>' : 'argv)';
  writeFileSync(
    file,
    `export async function main(${signature} { console.log('${kind} ' + argv.join(' ')); return ${code}; }\n`,
  );
}

function attune(env: Record<string, string> = {}) {
  const clean = { ...process.env };
  delete clean.ATTUNE_USE_DIST;
  return spawnSync(process.execPath, [join(pkg, 'bin', 'attune.js'), 'a', 'b'], {
    encoding: 'utf8',
    env: { ...clean, ...env },
  });
}

describe('bin/attune.js', () => {
  it('runs dist/ in an installed package (no src/)', () => {
    writeMain('dist', 3);
    const r = attune();
    assert.equal(r.stdout, 'dist a b\n');
    assert.equal(r.status, 3);
  });

  it('runs the sources where src/ is next to bin/, and dist/ with ATTUNE_USE_DIST=1', () => {
    writeMain('src', 4);
    const fromSource = attune();
    assert.equal(fromSource.stdout, 'src a b\n', fromSource.stderr);
    assert.equal(fromSource.status, 4);
    const fromDist = attune({ ATTUNE_USE_DIST: '1' });
    assert.equal(fromDist.stdout, 'dist a b\n');
    assert.equal(fromDist.status, 3);
  });

  it('says how to build dist/ when it is missing', () => {
    rmSync(join(pkg, 'dist'), { recursive: true });
    const r = attune({ ATTUNE_USE_DIST: '1' });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /^attune: .*dist\/cli\/main\.js is missing: run `npm run build` \(or `npm ci`\) first\n$/,
    );
  });
});
