/**
 * The backend a test pass runs on is the one it asked for: scripts/run-tests.mjs sets
 * ATTUNE_BACKEND per unit pass, and an explicit ATTUNE_BACKEND wins over ATTUNE_REQUIRE_NATIVE
 * (which then only requires that the addon loads).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../../../src/backend/index.ts';
import { loadNative } from '../../../src/backend/native/load.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** backendInfo() of a fresh process with these environment variables. */
function infoIn(env: Record<string, string>): { status: number | null; out: string } {
  const script =
    "import { backendInfo } from './src/backend/index.ts'; try { console.log(JSON.stringify(backendInfo())); } catch (e) { console.log(JSON.stringify({ error: e.message })); }";
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ATTUNE_BACKEND: '', ATTUNE_REQUIRE_NATIVE: '', ...env },
  });
  return { status: res.status, out: res.stdout.trim().split('\n').pop() ?? '' };
}

describe('active backend', () => {
  it('is the one ATTUNE_BACKEND names (the default when unset)', () => {
    const want = process.env.ATTUNE_BACKEND || (loadNative().kernels ? 'native' : 'js');
    assert.equal(backendInfo().active, want, `backendInfo(): ${JSON.stringify(backendInfo())}`);
  });

  it('the addon loads whenever ATTUNE_REQUIRE_NATIVE=1, even on the js pass', () => {
    if (process.env.ATTUNE_REQUIRE_NATIVE !== '1') return;
    assert.equal(backendInfo().nativeLoaded, true, backendInfo().reason);
  });

  it('ATTUNE_BACKEND=js wins over ATTUNE_REQUIRE_NATIVE=1, which still checks the addon loads', () => {
    const { out } = infoIn({ ATTUNE_BACKEND: 'js', ATTUNE_REQUIRE_NATIVE: '1' });
    const got = JSON.parse(out);
    if (loadNative().kernels) {
      assert.equal(got.active, 'js', out);
      assert.equal(got.nativeLoaded, true, out);
    } else {
      assert.match(got.error, /ATTUNE_REQUIRE_NATIVE=1.*did not load/, out);
    }
  });

  it('rejects an unknown ATTUNE_BACKEND', () => {
    const { out } = infoIn({ ATTUNE_BACKEND: 'cuda' });
    assert.match(JSON.parse(out).error, /ATTUNE_BACKEND must be 'js' or 'native', found 'cuda'/);
  });
});
