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
import { backendInfo, chooseBackend, jsKernels } from '../../../src/backend/index.ts';
import { KERNEL_NAMES, signatureOf } from '../../../src/backend/manifest.ts';
import { loadNative, manifestMismatch, type NativeLoadResult } from '../../../src/backend/native/load.ts';
import { ConfigError } from '../../../src/errors.ts';

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

  describe('chooseBackend', () => {
    // An addon built from an older manifest: it lacks rope and exports a kernel the manifest lacks.
    const stale: Record<string, unknown> = { init() {}, threads: () => 4, cpuInfo() {}, oldKernel() {} };
    for (const name of KERNEL_NAMES) if (name !== 'rope') stale[name] = () => {};
    stale.kernelSignatures = () => Object.fromEntries(KERNEL_NAMES.map((n) => [n, signatureOf(n)]));
    const mismatch = manifestMismatch(stale);
    const failing = (): NativeLoadResult => ({
      kernels: null,
      error: `addon: ${mismatch}`,
      path: 'addon',
      cpu: null,
    });
    const fakeNative = { ...jsKernels, name: 'native' as const, threads: () => 4 };
    const loading = (): NativeLoadResult => ({ kernels: fakeNative, error: '', path: 'addon', cpu: null });

    it('names the missing and the extra kernel of a stale addon', () => {
      assert.match(mismatch, /lacks kernel\(s\) rope /);
      assert.match(mismatch, /exports kernel\(s\) oldKernel that/);
    });

    it('falls back to js with a one-line note naming the kernel, unless native is required', () => {
      const choice = chooseBackend({}, failing);
      assert.equal(choice.info.active, 'js');
      assert.equal(choice.kernels, jsKernels);
      assert.ok(choice.note && !choice.note.includes('\n'), choice.note);
      assert.match(choice.note!, /lacks kernel\(s\) rope .*using the slower js backend$/);
    });

    it('is an error naming the kernel under ATTUNE_REQUIRE_NATIVE=1, whichever backend is selected', () => {
      for (const backend of [undefined, 'js', 'native']) {
        assert.throws(
          () => chooseBackend({ ATTUNE_BACKEND: backend, ATTUNE_REQUIRE_NATIVE: '1' }, failing),
          (err: Error) =>
            err instanceof ConfigError && /ATTUNE_REQUIRE_NATIVE=1.*lacks kernel\(s\) rope/.test(err.message),
        );
      }
      assert.throws(() => chooseBackend({ ATTUNE_BACKEND: 'native' }, failing), /ATTUNE_BACKEND=native/);
    });

    it('ATTUNE_BACKEND=js runs js and loads the addon only when it is required', () => {
      let loads = 0;
      const counting = () => {
        loads++;
        return loading();
      };
      assert.equal(chooseBackend({ ATTUNE_BACKEND: 'js' }, counting).info.nativeLoaded, false);
      assert.equal(loads, 0);
      const required = chooseBackend({ ATTUNE_BACKEND: 'js', ATTUNE_REQUIRE_NATIVE: '1' }, counting);
      assert.deepEqual([required.info.active, required.info.nativeLoaded, loads], ['js', true, 1]);
      assert.equal(required.kernels, jsKernels);
    });

    it('uses a loaded addon by default and under ATTUNE_BACKEND=native', () => {
      for (const env of [{}, { ATTUNE_BACKEND: 'native' }, { ATTUNE_REQUIRE_NATIVE: '1' }]) {
        const choice = chooseBackend(env, loading);
        assert.equal(choice.kernels, fakeNative);
        assert.deepEqual([choice.info.active, choice.info.threads, choice.note], ['native', 4, undefined]);
      }
    });
  });
});
