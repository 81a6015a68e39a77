// The demo is deterministic for a seed: metrics.json (and every prediction, loss value and adapter)
// is byte-identical across runs: two in the same process and one in a fresh process, all on the
// shipped small world base. A tiny fine-tuning recipe (through DemoOptions.recipe) keeps the three
// runs to seconds; `attune demo --quick` itself runs in .ci/run and its output is checked at the end.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type DemoRecipe, demoRecipe, runDemo } from '../../src/world/demo.ts';

/** Small enough for three runs in well under 30 s on 2 cores; big enough to exercise every stage. */
const TINY: DemoRecipe = {
  version: 2,
  finetune: { steps: 12, batchSize: 4, lr: 3e-3, r: 4, alpha: 8 },
  seeds: 2,
  evalPerSplit: 10,
};
const SEED = 3;

const root = mkdtempSync(join(tmpdir(), 'attune-demo-det-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Run the tiny demo in this process. */
function runHere(out: string): void {
  runDemo({ quick: true, out, seed: SEED, recipe: TINY });
}

/** Run the tiny demo in a fresh Node process (as a second `attune demo` would). */
function runInChild(out: string): void {
  const demo = fileURLToPath(new URL('../../src/world/demo.ts', import.meta.url));
  const script = `const { runDemo } = await import(${JSON.stringify(demo)});
runDemo({ quick: true, out: process.argv[1], seed: ${SEED}, recipe: ${JSON.stringify(TINY)} });`;
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, out], {
    encoding: 'utf8',
    env: process.env,
    timeout: 120_000,
  });
  assert.equal(res.error, undefined);
  assert.equal(res.status, 0, res.stderr);
}

/** Per-step loss, lr and grad norm of a run's metrics.jsonl (throughput fields vary run to run). */
function losses(runDir: string): string {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = JSON.parse(l) as { step: number; loss: number; lr: number; grad_norm: number };
      return JSON.stringify([m.step, m.loss, m.lr, m.grad_norm]);
    })
    .join('\n');
}

const FILES = [
  'metrics.json',
  'predictions-base.jsonl',
  'predictions-ce.jsonl',
  'predictions-ua-clm.jsonl',
  'finetune-ce/adapter/adapter_model.safetensors',
  'finetune-ua-clm/adapter/adapter_model.safetensors',
  'finetune-ce-seed4/adapter/adapter_model.safetensors',
  'world/pretrain.jsonl',
  'world/finetune.jsonl',
  'world/eval_mixed.jsonl',
  'world/eval_ood.jsonl',
];

describe('attune demo is deterministic for a seed', () => {
  const cold = { out: join(root, 'cold') };
  const warm = { out: join(root, 'warm') };
  const child = { out: join(root, 'child') };
  before(() => {
    runHere(cold.out);
    runHere(warm.out);
    runInChild(child.out);
  });

  for (const file of FILES) {
    it(`${file} is byte-identical across two runs in one process and one in a fresh process`, () => {
      const a = readFileSync(join(cold.out, file));
      assert.ok(a.length > 0, `${file} is empty`);
      assert.ok(readFileSync(join(warm.out, file)).equals(a), `${file}: the second run differs`);
      assert.ok(readFileSync(join(child.out, file)).equals(a), `${file}: the fresh-process run differs`);
    });
  }

  it('metrics.json has the seed, the recipe and finite metrics for every model', () => {
    const m = JSON.parse(readFileSync(join(cold.out, 'metrics.json'), 'utf8'));
    assert.equal(m.seed, SEED);
    assert.deepEqual(m.seeds, [SEED, SEED + 1]);
    assert.equal(m.over_seeds.ce.seeds, 2);
    assert.deepEqual(m.recipe, TINY);
    assert.deepEqual(m.eval_questions, { mixed: 30, ood: 10 });
    for (const name of ['base', 'ce', 'ua-clm']) {
      assert.ok(Number.isFinite(m[name].ece), `${name}.ece`);
      assert.ok(Number.isFinite(m[name].brier), `${name}.brier`);
      for (const v of Object.values(m[name].accuracy as Record<string, number | null>)) {
        assert.ok(v === null || (v >= 0 && v <= 1), `${name}.accuracy: ${v}`);
      }
    }
  });

  it('the fine-tuning losses are identical too, and the two seeds differ', () => {
    for (const run of ['finetune-ce', 'finetune-ua-clm', 'finetune-ua-clm-seed4']) {
      const a = losses(join(cold.out, run));
      assert.equal(losses(join(warm.out, run)), a, `${run}: second-run losses differ`);
      assert.equal(losses(join(child.out, run)), a, `${run}: fresh-process losses differ`);
    }
    assert.notEqual(losses(join(cold.out, 'finetune-ce')), losses(join(cold.out, 'finetune-ce-seed4')));
  });
});

// The real `attune demo --quick` runs in .ci/run, which points ATTUNE_DEMO_OUT at
// its output; report-browser.test.ts checks its report.html in Chromium.
describe('the output of `attune demo --quick` (ATTUNE_DEMO_OUT, set by .ci/run)', () => {
  const dir = process.env.ATTUNE_DEMO_OUT;
  it('has metrics.json with the quick recipe and metrics for base, ce and ua-clm', (t) => {
    if (!dir) {
      if (process.env.CI === 'true') assert.fail('ATTUNE_DEMO_OUT must point at the demo output under CI');
      t.skip('ATTUNE_DEMO_OUT is not set (.ci/run sets it after running the demo)');
      return;
    }
    for (const f of ['metrics.json', 'report.html', 'predictions-base.jsonl']) {
      assert.ok(existsSync(join(dir, f)), `${join(dir, f)} is missing`);
    }
    const m = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
    assert.equal(m.mode, 'quick');
    assert.deepEqual(m.recipe, JSON.parse(JSON.stringify(demoRecipe(true))));
    assert.ok(m.eval_questions.mixed > 0 && m.eval_questions.ood > 0);
    for (const name of ['base', 'ce', 'ua-clm']) {
      for (const split of ['known', 'taught', 'unknown', 'mixed']) {
        const v = m[name].accuracy[split];
        assert.ok(v >= 0 && v <= 1, `${name}.accuracy.${split} = ${v}`);
      }
      assert.ok(Number.isFinite(m[name].ece), `${name}.ece`);
    }
  });
});
