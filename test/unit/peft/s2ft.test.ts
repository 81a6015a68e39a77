import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel } from '../../../src/models/index.ts';
import {
  applyTuner,
  loadAdapter,
  type S2ftAdapter,
  SparseDeltaLinear,
  s2ftSelection,
} from '../../../src/peft/index.ts';
import { backward, crossEntropy, fromArray, reshape, scope } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-s2ft-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

// tinyLlama: 2 layers, hidden 32, 4 heads of dim 8, 2 KV heads, 48 FFN channels
const [D, HD, GROUP] = [32, 8, 2];

/** The CE loss of `ids` (with `grad`: after a backward pass into the parameters' gradients). */
function lossOf(model: ReturnType<typeof tinyLlama>, ids: number[]): (grad?: boolean) => number {
  return (grad = false) =>
    scope(() => {
      const x = fromArray(Int32Array.from(ids.slice(0, -1)), [1, ids.length - 1], { dtype: 'i32' });
      const labels = fromArray(Int32Array.from(ids.slice(1)), [ids.length - 1], { dtype: 'i32' });
      const loss = crossEntropy(model.logits(reshape(model.forwardHidden(x), [ids.length - 1, D])), labels);
      if (grad) backward(loss);
      return loss.item();
    });
}

/** Which (row, col) entries of each target S2FT should train, computed from the selection independently. */
function expectedEntries(sel: { heads: number[][]; channels: number[][] }): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  sel.heads.forEach((heads, layer) => {
    const o = new Set<string>();
    const v = new Set<string>();
    for (const h of heads)
      for (let i = 0; i < HD; i++)
        for (let r = 0; r < D; r++) {
          o.add(`${r},${h * HD + i}`); // o_proj [32, 32]: input columns of head h
          v.add(`${Math.floor(h / GROUP) * HD + i},${r}`); // v_proj [16, 32]: rows of h's KV head
        }
    if (heads.length > 0) {
      out.set(`model.layers.${layer}.self_attn.v_proj`, v);
      out.set(`model.layers.${layer}.self_attn.o_proj`, o);
    }
  });
  sel.channels.forEach((channels, layer) => {
    const up = new Set<string>();
    const down = new Set<string>();
    for (const c of channels)
      for (let r = 0; r < D; r++) {
        up.add(`${c},${r}`);
        down.add(`${r},${c}`);
      }
    if (channels.length > 0) {
      out.set(`model.layers.${layer}.mlp.up_proj`, up);
      out.set(`model.layers.${layer}.mlp.down_proj`, down);
    }
  });
  return out;
}

describe('s2ft tuner', () => {
  it('selects heads_ratio of all heads and channels_ratio of all channels across layers; trains their v/o and up/down slices', () => {
    const model = tinyLlama();
    const sel = s2ftSelection(model, 0.25, 0.1, 3);
    assert.equal(sel.heads.flat().length, 2); // round(0.25 * 8)
    assert.equal(sel.channels.flat().length, 10); // round(0.1 * 96)
    assert.deepEqual(
      sel,
      s2ftSelection(tinyLlama({ seed: 99 }), 0.25, 0.1, 3),
      'a pure function of the seed',
    );
    const adapter = applyTuner(model, 's2ft', {
      headsRatio: 0.25,
      channelsRatio: 0.1,
      seed: 3,
    }) as S2ftAdapter;
    assert.deepEqual(adapter.selection, sel);
    const expected = expectedEntries(sel);
    assert.deepEqual(adapter.sparseLayers.map(([n]) => n).sort(), [...expected.keys()].sort());
    for (const [n, l] of adapter.sparseLayers) {
      const cols = l.weight.shape[1]!;
      const got = new Set(Array.from(l.sft_delta.indices, (p) => `${Math.floor(p / cols)},${p % cols}`));
      assert.deepEqual(got, expected.get(n), n);
    }
  });

  it('gradient buffers: exactly the selected entries (no buffer for W or unselected slices); they match finite differences', () => {
    const model = tinyLlama({ dtype: 'f64' });
    const ids = tokens(7, 2);
    const adapter = applyTuner(model, 's2ft', {
      headsRatio: 0.25,
      channelsRatio: 0.1,
      seed: 3,
    }) as S2ftAdapter;
    const selected = [...expectedEntries(adapter.selection!).values()].reduce((s, e) => s + e.size, 0);
    // a non-zero delta so the check is not at the trivial point
    for (const [, l] of adapter.sparseLayers) l.sft_delta.values.fillWith((i) => 0.01 * Math.sin(i));
    model.train();
    const loss = lossOf(model, ids);
    loss(true);
    let gradEntries = 0;
    for (const [n, p] of model.namedParameters()) {
      if (p.grad) gradEntries += p.grad.size;
      if (!n.endsWith('.sft_delta.values')) assert.equal(p.grad, null, `${n} has no gradient buffer`);
    }
    assert.equal(gradEntries, selected);
    assert.equal(adapter.numEntries, selected);
    for (const [, l] of adapter.sparseLayers.slice(0, 3)) {
      const v = l.sft_delta.values;
      const g = Float64Array.from(v.grad!.data as Float64Array);
      const d = v.data as Float64Array;
      for (const i of [0, Math.floor(d.length / 2), d.length - 1]) {
        const keep = d[i]!;
        d[i] = keep + 1e-6;
        const up = loss();
        d[i] = keep - 1e-6;
        const down = loss();
        d[i] = keep;
        assert.ok(
          Math.abs((up - down) / 2e-6 - g[i]!) < 1e-6,
          `entry ${i}: fd ${(up - down) / 2e-6} vs ${g[i]}`,
        );
      }
    }
  });
});

describe('s2ft training', () => {
  const cfg = (dir: string) =>
    validateTrainConfig(
      {
        model: join(root, 'model'),
        data: { train: join(root, 'train.jsonl'), max_length: 32 },
        method: { name: 's2ft', heads_ratio: 0.25, channels_ratio: 0.1 },
        train: { steps: 6, batch_size: 2, lr: 2e-2, seed: 4, save_every: 2 },
        output_dir: join(root, dir),
      },
      'test config',
    );

  it('only the selected slices change; the adapter reloads (S2FT) and merges densely', () => {
    const result = train(cfg('run'));
    const adapter = result.adapter as S2ftAdapter;
    const base = loadModel(join(root, 'model')).model;
    const baseParams = new Map(base.namedParameters());
    for (const [n, p] of result.model.namedParameters()) {
      if (n.endsWith('.sft_delta.values')) continue;
      assert.ok(
        Buffer.from((p.data as Float32Array).buffer).equals(
          Buffer.from((baseParams.get(n)!.data as Float32Array).buffer),
        ),
        `${n} bit-identical`,
      );
    }
    const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'S2FT');
    assert.deepEqual(json.selected_heads, adapter.selection!.heads);
    const ids = [256, ...Buffer.from('Bo lives in Lima.')];
    const trained = logitsOf(result.model, ids);
    assert.ok(maxAbsDiff(trained, logitsOf(base, ids)) > 1e-4);
    const merged = loadAdapter(base, result.adapterDir).mergeAndUnload() as typeof base;
    assert.ok(merged.namedModules().every(([, m]) => !(m instanceof SparseDeltaLinear)));
    assert.ok(maxAbsDiff(logitsOf(merged, ids), trained) < 1e-4);
    // the merged weights differ from the base only inside the selected slices
    const expected = expectedEntries(adapter.selection!);
    for (const [n, p] of merged.namedParameters()) {
      const w = p.data as Float32Array;
      const b = baseParams.get(n)!.data as Float32Array;
      const module = n.replace(/\.weight$/, '');
      const cols = p.shape[1] ?? 1;
      for (let i = 0; i < w.length; i++)
        if (w[i] !== b[i])
          assert.ok(
            expected.get(module)?.has(`${Math.floor(i / cols)},${i % cols}`),
            `${n}[${i}] outside the slices`,
          );
    }
  });

  it('resume mid-run equals the uninterrupted run', () => {
    const full = train(cfg('full'));
    const killed = cfg('killed');
    assert.throws(() => train(killed, { haltAfterStep: 3 }), TrainingHalted);
    const resumed = train(killed, { resume: true });
    for (const [n, t] of full.adapter.state())
      assert.deepEqual(resumed.adapter.state().get(n)!.data, t.data, n);
  });
});
