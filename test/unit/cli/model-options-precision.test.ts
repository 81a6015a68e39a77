/** --precision for inference: loadModelFromFlags stores bf16 matrices and sets bf16 compute. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inferenceDtype, loadModelFromFlags } from '../../../src/cli/model-options.ts';
import { LlamaAttention } from '../../../src/models/index.ts';
import { Linear } from '../../../src/nn/index.ts';
import { fromArray, noGrad } from '../../../src/tensor/index.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-precision-flag-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('--precision for inference', () => {
  it('bf16-mixed implies bf16 storage whatever --dtype says; f32 keeps --dtype', () => {
    assert.equal(inferenceDtype('f32', 'bf16-mixed'), 'bf16');
    assert.equal(inferenceDtype('bf16', 'f32'), 'bf16');
    assert.equal(inferenceDtype('f32', 'f32'), 'f32');
    assert.equal(inferenceDtype('f32'), 'f32');
  });

  it('bf16-mixed loads bf16 matrices, bf16 GEMMs, and logits close to f32', () => {
    const dir = writeTinyModel(join(root, 'm'), { hidden: 16, layers: 2 });
    const f32 = loadModelFromFlags({ model: dir, dtype: 'f32', precision: 'f32' }).model;
    const mixed = loadModelFromFlags({ model: dir, dtype: 'f32', precision: 'bf16-mixed' }).model;
    const linears = [...mixed.modules()].filter((m): m is Linear => m instanceof Linear);
    assert.ok(linears.length > 0);
    for (const l of linears) {
      assert.equal(l.computePrecision, 'bf16');
      assert.equal(l.weight.dtype, 'bf16');
    }
    for (const l of [...f32.modules()].filter((m): m is Linear => m instanceof Linear))
      assert.equal(l.computePrecision, 'f32');
    // the attention products follow the layers' precision
    const attn = (m: typeof f32) =>
      [...m.modules()].filter((x): x is LlamaAttention => x instanceof LlamaAttention);
    assert.equal(attn(mixed).length, 2);
    for (const a of attn(mixed)) assert.equal(a.computePrecision, 'bf16');
    for (const a of attn(f32)) assert.equal(a.computePrecision, 'f32');
    noGrad(() => {
      const ids = fromArray([1, 4, 7, 2], [1, 4], { dtype: 'i32' });
      const a = f32.logits(f32.forwardHidden(ids, {})).floatData();
      const b = mixed.logits(mixed.forwardHidden(ids, {})).floatData();
      let maxDiff = 0;
      let maxRef = 0;
      let differs = false;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
        maxRef = Math.max(maxRef, Math.abs(a[i]!));
        if (a[i] !== b[i]) differs = true;
      }
      assert.ok(differs, 'bf16-mixed gave the f32 logits exactly: was it applied?');
      // bf16 keeps 8 bits of mantissa: a few percent of the largest logit at most
      assert.ok(maxDiff <= 0.05 * maxRef, `max |diff| ${maxDiff} vs max |logit| ${maxRef}`);
    });
  });
});
