/** `attune bench train --target-modules`: the method adapts the named matrices, and says so in its row. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runTrainBench, TRAIN_PRESETS } from '../../../src/bench/train.ts';
import { parseTargetModules } from '../../../src/cli/commands/bench-train.ts';
import { ConfigError, UsageError } from '../../../src/errors.ts';
import { SparseFtAdapter } from '../../../src/peft/index.ts';

const small = { preset: 'tiny', batch: 1, seq: 8, steps: 1, layers: 1 } as const;

it('bench train --target-modules all-linear gives LoRA r 8 on every linear of a layer', async () => {
  const byDefault = (await runTrainBench({ ...small, method: 'lora' })).results[0]!;
  const allLinear = (await runTrainBench({ ...small, method: 'lora', targetModules: 'all-linear' }))
    .results[0]!;
  const { hiddenSize: h, intermediateSize: f, numHeads, numKvHeads } = TRAIN_PRESETS.tiny;
  const kv = (h / numHeads) * numKvHeads;
  const r = 8;
  // LoRA r on [out, in] has r (in + out) parameters
  const lora = (inF: number, outF: number) => r * (inF + outF);
  assert.equal(byDefault.target_modules, 'default');
  assert.equal(byDefault.trainable_params, lora(h, h) + lora(h, kv)); // q_proj, v_proj
  assert.equal(allLinear.target_modules, 'all-linear');
  assert.equal(
    allLinear.trainable_params,
    lora(h, h) * 2 + lora(h, kv) * 2 + lora(h, f) * 2 + lora(f, h), // q o, k v, gate up, down
  );
});

it('bench train --target-modules with names restricts sparse_ft to those matrices', async () => {
  const row = (await runTrainBench({ ...small, method: 'sparse_ft', targetModules: ['q_proj'] })).results[0]!;
  assert.equal(row.target_modules, 'q_proj');
  // density 0.01 of the model's parameters, all of it in the one q_proj (64 x 64 = 4096 entries)
  assert.ok(Number(row.trainable_params) > 0 && Number(row.trainable_params) <= 64 * 64);
});

it('bench train --target-modules is refused for a method without target_modules, naming it', async () => {
  await assert.rejects(
    runTrainBench({ ...small, method: 'full', targetModules: 'all-linear' }),
    (e: unknown) => e instanceof ConfigError && /method 'full' has no target_modules option/.test(e.message),
  );
});

it('--target-modules parses comma-separated names and all-linear, and refuses empty names', () => {
  assert.equal(parseTargetModules(undefined), null);
  assert.equal(parseTargetModules('all-linear'), 'all-linear');
  assert.deepEqual(parseTargetModules('q_proj, v_proj'), ['q_proj', 'v_proj']);
  assert.throws(() => parseTargetModules('q_proj,,v_proj'), UsageError);
});

it('bench train --run-step calls the method hooks as at that step, in the trainer order; 0 calls none', async (t) => {
  const calls: string[] = [];
  const proto = SparseFtAdapter.prototype;
  for (const hook of ['beginStep', 'afterBackward', 'afterStep'] as const) {
    const original = proto[hook];
    t.mock.method(proto, hook, function (this: SparseFtAdapter, ...args: unknown[]) {
      calls.push(`${hook}(${args[0]}/${args[1]})`);
      return (original as (...a: unknown[]) => void).apply(this, args);
    });
  }
  await runTrainBench({ ...small, method: 'sparse_ft' });
  assert.deepEqual(calls, []);
  const row = (await runTrainBench({ ...small, method: 'sparse_ft', runStep: 1, runSteps: 40 })).results[0]!;
  assert.equal(row.run_step, '1/40');
  // the warm-up is step 1, the timed step step 2; each beginStep -> afterBackward -> afterStep
  const at = (s: number) => [`beginStep(${s}/40)`, `afterBackward(${s}/40)`, `afterStep(${s}/40)`];
  assert.deepEqual(calls, [...at(1), ...at(2)]);
  // the warm-up and the timed steps must fit in the run
  await assert.rejects(runTrainBench({ ...small, runStep: 4, runSteps: 4 }), ConfigError);
});
