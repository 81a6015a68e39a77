/**
 * The kernel manifest against its consumers: the js backend implements exactly its kernels, the
 * generated native/src/manifest.gen.h is current, and the load-time check names a missing, extra
 * or stale kernel of the addon.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { jsKernels } from '../../../src/backend/js/index.ts';
import {
  ADDON_EXTRAS,
  type ArgSpec,
  KERNEL_NAMES,
  KERNELS,
  signatureOf,
} from '../../../src/backend/manifest.ts';
import { loadNative, manifestMismatch } from '../../../src/backend/native/load.ts';
import { nativeManifestHeader } from '../../../src/backend/native/manifest-header.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A stand-in addon exporting every manifest kernel with the manifest's signatures. */
function fakeAddon(): Record<string, unknown> {
  const addon: Record<string, unknown> = {};
  for (const name of KERNEL_NAMES) addon[name] = () => {};
  for (const name of ADDON_EXTRAS) addon[name] = () => {};
  addon.kernelSignatures = () => Object.fromEntries(KERNEL_NAMES.map((n) => [n, signatureOf(n)]));
  return addon;
}

describe('kernel manifest', () => {
  it('the js backend implements exactly the manifest kernels', () => {
    const js = Object.keys(jsKernels).filter((k) => k !== 'name' && k !== 'threads');
    assert.deepEqual(js.sort(), [...KERNEL_NAMES].sort());
  });

  it('native/src/manifest.gen.h is generated from the current manifest', () => {
    const onDisk = readFileSync(join(root, 'native', 'src', 'manifest.gen.h'), 'utf8');
    assert.ok(
      onDisk === nativeManifestHeader(),
      'native/src/manifest.gen.h is stale: run `node --import tsx scripts/gen-native-manifest.ts` and rebuild the addon',
    );
  });

  it('describes argument sizes only with names of count arguments of the same kernel', () => {
    for (const name of KERNEL_NAMES) {
      const args: readonly ArgSpec[] = KERNELS[name].args;
      const counts = new Set(args.filter((a) => a.kind === 'count').map((a) => a.name));
      for (const a of args) {
        if (a.len === undefined) continue;
        for (const term of a.len.split('*')) {
          assert.ok(
            /^\d+$/.test(term) || counts.has(term),
            `${name}.${a.name}: len '${a.len}' names '${term}'`,
          );
        }
      }
    }
  });

  it('signatures spell kinds, enum names, optional arguments, sizes and roles', () => {
    assert.equal(
      signatureOf('rmsNorm'),
      'float x[rows*cols], float? weight[cols], float out[rows*cols] out, float rstd[rows] out, count rows, count cols, number eps',
    );
    assert.match(signatureOf('binary'), /^choice\(add\|sub\|mul\|div\|max\|min\|eq\|gt\) op, /);
    assert.match(signatureOf('sumSquares'), / -> number$/);
  });

  it('accepts an addon that matches, and names a missing, an extra or a stale kernel', () => {
    assert.equal(manifestMismatch(fakeAddon()), '');

    const missing = fakeAddon();
    delete missing.rope;
    assert.match(manifestMismatch(missing), /lacks kernel\(s\) rope of src\/backend\/manifest\.ts/);

    const extra = { ...fakeAddon(), fancyNewKernel: () => {} };
    assert.match(
      manifestMismatch(extra),
      /exports kernel\(s\) fancyNewKernel that src\/backend\/manifest\.ts lacks/,
    );

    const stale = fakeAddon();
    stale.kernelSignatures = () => ({
      ...Object.fromEntries(KERNEL_NAMES.map((n) => [n, signatureOf(n)])),
      swiglu: 'float gate, count n',
    });
    assert.match(manifestMismatch(stale), /other signatures of swiglu \(swiglu: addon 'float gate, count n'/);
  });

  it('the built addon, when present, matches the manifest', () => {
    const native = loadNative();
    if (!native.kernels) {
      // A mismatch would be the reason it did not load: that must not be it.
      assert.doesNotMatch(native.error, /manifest/, native.error);
      return;
    }
    assert.equal(native.error, '');
  });
});
