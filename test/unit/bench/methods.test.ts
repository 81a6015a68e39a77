/** attune bench methods' bookkeeping: seeds, aggregation, reuse of finished runs, plug-in methods, headlines. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  aggregateRuns,
  defaultSpecs,
  headlines,
  lossChoice,
  type MethodRow,
  methodChoice,
  type RunResult,
  runMethodsBench,
  splitSpecs,
  spread,
} from '../../../src/bench/methods.ts';
import { renderMethodsReport } from '../../../src/bench/methods-report.ts';
import { getTuner, registerTuner } from '../../../src/peft/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { worldFinetuneFile } from '../../../src/world/demo.ts';
import { generateWorld, writeWorld } from '../../../src/world/index.ts';
import { tinyBenchOptions } from '../../helpers/tiny-bench.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';
import { normsTuner } from '../../plugins/norms-tuner.ts';

const root = tempDir('attune-bench-methods-');
after(() => rmSync(root, { recursive: true, force: true }));

function run(partial: Partial<RunResult>): RunResult {
  return {
    method: 'lora',
    loss: 'ce',
    seed: 0,
    taught_accuracy: 0.5,
    known_accuracy: 0.4,
    paraphrase_accuracy: null,
    ece: 0.1,
    brier: 0.2,
    scores: { mean_entropy: { wrong_auroc: 0.7, prr: 0.3, ood_auroc: 0.6 } },
    trainable_params: 10,
    adapter_bytes: 100,
    step_s: 0.1,
    peak_rss_mb: 50,
    ...partial,
  };
}

describe('bench methods: aggregation', () => {
  it('mean and sample std over seeds, nulls left out; retention = known after / before', () => {
    assert.deepEqual(spread([1, 2, 3]), { mean: 2, std: 1, n: 3 });
    assert.deepEqual(spread([null, 4]), { mean: 4, std: 0, n: 1 });
    assert.deepEqual(spread([null]), { mean: null, std: null, n: 0 });
    const row = aggregateRuns(
      [
        run({ seed: 0, known_accuracy: 0.2, taught_accuracy: 0.4 }),
        run({ seed: 1, known_accuracy: 0.4, taught_accuracy: 0.6 }),
      ],
      0.4,
      'mean_entropy',
    );
    assert.equal(row.seeds, 2);
    assert.ok(Math.abs(row.retention.mean! - 0.75) < 1e-12);
    assert.ok(Math.abs(row.taught_accuracy.std! - Math.sqrt(0.02)) < 1e-12);
    assert.equal(row.wrong_auroc.mean, 0.7);
    assert.equal(
      aggregateRuns([run({})], 0, 'mean_entropy').retention.mean,
      null,
      'a base that knows nothing: no retention',
    );
  });

  it('a headline reproduces only beyond one standard error, and accuracy within its tolerance', () => {
    const row = (loss: string, auroc: number[], acc: number[]): MethodRow =>
      aggregateRuns(
        auroc.map((a, i) =>
          run({
            loss,
            seed: i,
            taught_accuracy: acc[i]!,
            scores: { mean_entropy: { wrong_auroc: a, prr: 0, ood_auroc: a } },
          }),
        ),
        0.4,
        'mean_entropy',
      );
    const clear = headlines([
      row('ce', [0.6, 0.62, 0.61], [0.5, 0.5, 0.5]),
      row('ua-clm', [0.8, 0.79, 0.81], [0.48, 0.5, 0.49]),
    ]);
    assert.equal(clear.find((h) => h.metric === 'wrong_auroc')!.reproduced, true);
    assert.equal(clear.find((h) => h.metric === 'taught_accuracy')!.reproduced, true);
    const noisy = headlines([
      row('ce', [0.5, 0.9, 0.7], [0.5, 0.5, 0.5]),
      row('ua-clm', [0.6, 0.95, 0.6], [0.2, 0.3, 0.25]),
    ]);
    assert.equal(noisy.find((h) => h.metric === 'wrong_auroc')!.reproduced, false);
    assert.equal(noisy.find((h) => h.metric === 'taught_accuracy')!.reproduced, false);
    const single = headlines([row('ce', [0.6], [0.5]), row('ua-clm', [0.9], [0.5])]);
    assert.equal(single[0]!.difference! > 0.29, true);
    assert.equal(single[0]!.reproduced, null, 'one seed cannot tell an effect from noise');
  });

  it('by default every registered tuner with ce, plus the headline pair; a plug-in tuner shows up', () => {
    const specs = defaultSpecs();
    for (const m of ['full', 'lora', 'norms-only'])
      assert.ok(
        specs.some((s) => s.method === m && s.loss === 'ce'),
        m,
      );
    assert.ok(specs.some((s) => s.method === 'lora' && s.loss === 'ua-clm'));
    assert.deepEqual(defaultSpecs(['lora'], ['ce', 'ua-clm']), [
      { method: 'lora', loss: 'ce' },
      { method: 'lora', loss: 'ua-clm' },
    ]);
    assert.throws(() => defaultSpecs(['lroa']), /unknown fine-tuning method 'lroa'/);
    assert.deepEqual(splitSpecs('ce, ua-clm(lambda=0.3,probability=max)'), [
      'ce',
      'ua-clm(lambda=0.3,probability=max)',
    ]);
    assert.deepEqual(lossChoice('ua-clm(lambda=0.3,stop_gradient=true)'), {
      name: 'ua-clm',
      lambda: 0.3,
      probability: 'gold',
      stop_gradient: true,
      eps: 1e-6,
    });
    assert.throws(() => lossChoice('ua-clm(lamda=1)'), /unknown option 'lamda' \(did you mean 'lambda'\?\)/);
    assert.throws(
      () => defaultSpecs(['lora'], ['ua-clm(lambda)']),
      /'lambda' in 'ua-clm\(lambda\)' is not key=value/,
    );
  });
});

describe('bench methods: tuner-declared variants', () => {
  it('a variant a plug-in tuner declares is its own row, run with its option overrides', () => {
    registerTuner('norms-variants', {
      ...normsTuner,
      name: 'norms-variants',
      peftType: 'NORMS_VARIANTS',
      variants: { 'norms-layers-only': { include_final: false } },
    });
    const specs = defaultSpecs();
    const variant = specs.find((s) => s.method === 'norms-layers-only');
    assert.deepEqual(variant, {
      method: 'norms-layers-only',
      loss: 'ce',
      tuner: 'norms-variants',
      options: { include_final: false },
    });
    assert.ok(specs.some((s) => s.method === 'norms-variants' && s.loss === 'ce' && !s.options));
    for (const name of ['dora', 'pissa', 'olora'])
      assert.ok(
        specs.some((s) => s.method === name && s.tuner === 'lora'),
        name,
      );
    const config = validateTrainConfig(
      {
        model: 'm',
        data: { train: 't.jsonl' },
        method: methodChoice(variant!),
        train: { steps: 1 },
        output_dir: 'o',
      },
      'test',
    );
    assert.deepEqual(config.method, { name: 'norms-variants', include_final: false });
    assert.deepEqual(
      getTuner('norms-variants').fromOptions(config.method as Record<string, unknown>, { seed: 0 }),
      { includeFinal: false },
      'the override reaches the tuner',
    );
    assert.deepEqual(defaultSpecs(['norms-layers-only'], ['ua-clm']), [
      {
        method: 'norms-layers-only',
        loss: 'ua-clm',
        tuner: 'norms-variants',
        options: { include_final: false },
      },
    ]);
    assert.throws(() => defaultSpecs(['norms-layers-onyl']), /unknown fine-tuning method/);
  });
});

describe('bench methods: runs', () => {
  it('trains every (method, loss, seed) from one base, keeps each run and reuses it on a rerun', () => {
    const worldDir = join(root, 'world');
    writeWorld(
      generateWorld({ seed: 3, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
      worldDir,
    );
    const base = writeTinyModel(join(root, 'base'), { hidden: 16, layers: 1 });
    const options = {
      base,
      worldDir,
      trainFile: worldFinetuneFile(worldDir),
      out: join(root, 'out'),
      specs: [
        { method: 'lora', loss: 'ce' },
        { method: 'norms-only', loss: 'ce' },
      ],
      seeds: [0, 1],
      budget: {
        steps: 2,
        batchSize: 2,
        lr: 1e-2,
        fullLr: 1e-3,
        warmupSteps: 0,
        maxLength: 64,
        evalPerSplit: 2,
      },
      experiments: [] as string[],
    };
    const first = runMethodsBench(options);
    assert.deepEqual(
      first.results.map((r) => [r.method, r.loss, r.seeds]),
      [
        ['lora', 'ce', 2],
        ['norms-only', 'ce', 2],
        ['compeft(lora)', 'ce', 2],
      ],
    );
    const runs = readdirSync(join(root, 'out', 'runs'))
      .sort()
      .filter((r) => existsSync(join(root, 'out', 'runs', r, 'result.json')));
    assert.equal(runs.length, 6);
    assert.ok(
      runs.some((r) => r.startsWith('lora-ce-seed0-')) &&
        runs.some((r) => r.startsWith('norms-only-ce-seed1-')),
    );
    for (const r of runs) assert.ok(existsSync(join(root, 'out', 'runs', r, 'result.json')));
    assert.ok(first.results[0]!.trainable_params > 0);
    assert.equal(
      first.results[0]!.paraphrase_accuracy.n,
      2,
      'the taught facts asked in their paraphrased wording',
    );
    assert.notEqual(first.results[0]!.trainable_params, first.results[1]!.trainable_params);
    const notes: string[] = [];
    const again = runMethodsBench({ ...options, onNote: (n) => notes.push(n) });
    assert.equal(notes.filter((n) => n.startsWith('reusing')).length, 5, 'every finished run is reused');
    assert.ok(!notes.some((n) => n.startsWith('compeft seed')), 'the compressed adapters are reused');
    const compeft = first.results[2]!;
    assert.ok(compeft.adapter_bytes < first.results[0]!.adapter_bytes, 'the compressed adapter is smaller');
    assert.deepEqual(again.results, first.results);
    const html = renderMethodsReport(first);
    assert.equal(html.match(/class="point"/g)?.length, 3);
    assert.match(html, /<table id="headlines">/);
  });
});

describe('bench methods: experiments', () => {
  it('an experiment registered from outside src/ adds its rows, extra measurements and headlines', async () => {
    const { probeCalls } = await import('../../plugins/probe-experiment.ts');
    const worldDir = join(root, 'world-probe');
    writeWorld(
      generateWorld({ seed: 5, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
      worldDir,
    );
    const base = writeTinyModel(join(root, 'base-probe'), { hidden: 16, layers: 1 });
    const options = {
      base,
      worldDir,
      trainFile: worldFinetuneFile(worldDir),
      out: join(root, 'out-probe'),
      specs: [{ method: 'lora', loss: 'ce' }],
      seeds: [0, 1],
      budget: {
        steps: 2,
        batchSize: 2,
        lr: 1e-2,
        fullLr: 1e-3,
        warmupSteps: 0,
        maxLength: 64,
        evalPerSplit: 2,
      },
      experiments: ['probe'],
    };
    assert.throws(
      () => runMethodsBench({ ...options, out: join(root, 'out-none'), experiments: ['nope'] }),
      /unknown bench experiment 'nope'.*probe/,
    );
    assert.ok(!existsSync(join(root, 'out-none', 'runs')), 'an unknown experiment fails before any run');
    const result = runMethodsBench(options);
    assert.deepEqual(result.experiments, ['probe']);
    const row = result.results.find((r) => r.method === 'lora-r2')!;
    assert.equal(row.seeds, 2);
    assert.deepEqual(row.extra?.seed_value, { mean: 0.5, std: Math.SQRT1_2, n: 2 });
    const lora = result.results.find((r) => r.method === 'lora')!;
    assert.ok(row.trainable_params < lora.trainable_params, 'the override (r=2) reached the run');
    const h = result.headlines.find((x) => x.paper === 'A probe')!;
    assert.equal(h.difference, 0);
    assert.equal(h.reproduced, false);
    const notes: string[] = [];
    const again = runMethodsBench({ ...options, onNote: (n) => notes.push(n) });
    assert.deepEqual(again.results, result.results);
    assert.equal(probeCalls.train, 4, 'the experiment ran twice');
    assert.ok(
      notes.filter((n) => n.includes('experiments')).length >= 2,
      'its trained runs were reused, not retrained',
    );
  });
});

describe('bench methods: derived rows', () => {
  it('soups the full fine-tunes of the other seeds (one soup per left-out seed) and evaluates each', () => {
    const worldDir = join(root, 'world-soup');
    writeWorld(
      generateWorld({ seed: 4, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
      worldDir,
    );
    const base = writeTinyModel(join(root, 'base-soup'), { hidden: 16, layers: 1 });
    const notes: string[] = [];
    const result = runMethodsBench({
      base,
      worldDir,
      trainFile: worldFinetuneFile(worldDir),
      out: join(root, 'out-soup'),
      specs: [{ method: 'full', loss: 'ce' }],
      seeds: [0, 1, 2],
      budget: {
        steps: 2,
        batchSize: 2,
        lr: 1e-2,
        fullLr: 1e-3,
        warmupSteps: 0,
        maxLength: 64,
        evalPerSplit: 2,
      },
      onNote: (n) => notes.push(n),
      experiments: [],
    });
    assert.deepEqual(
      result.results.map((r) => [r.method, r.seeds]),
      [
        ['full', 3],
        ['soup(full)', 3],
      ],
    );
    const soups = readdirSync(join(root, 'out-soup', 'runs')).filter(
      (d) => d.startsWith('soup_full_-ce-') && !d.includes('seed'),
    );
    assert.equal(soups.length, 1);
    assert.deepEqual(readdirSync(join(root, 'out-soup', 'runs', soups[0]!)).sort(), [
      'soup-without-seed0',
      'soup-without-seed1',
      'soup-without-seed2',
    ]);
    const headline = result.headlines.find((h) => h.paper.startsWith('Model soups'));
    assert.ok(headline && headline.treatment.value.n === 3 && headline.difference !== null);
  });
});

describe('bench methods: ComPEFT row', () => {
  it("has the same adapter_bytes and the same compressed file whatever the --out path's length", () => {
    const worldDir = join(root, 'world-compeft');
    writeWorld(
      generateWorld({ seed: 6, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
      worldDir,
    );
    const base = writeTinyModel(join(root, 'base-compeft'), { hidden: 16, layers: 1 });
    const bench = (out: string) =>
      runMethodsBench(tinyBenchOptions(base, worldDir, root, out, { seeds: [0], experiments: [] }));
    const outs = ['c', join('a-much-longer-folder', 'of-the-compeft-bench-output')];
    const rows = outs.map((out) => bench(out).results.find((r) => r.method === 'compeft(lora)')!);
    assert.ok(rows[0]!.adapter_bytes > 0);
    assert.equal(rows[1]!.adapter_bytes, rows[0]!.adapter_bytes);
    const files = outs.map((out) => {
      const folder = readdirSync(join(root, out, 'runs')).find(
        (d) => d.startsWith('compeft_lora_-ce-') && !d.includes('seed'),
      )!;
      return readFileSync(join(root, out, 'runs', folder, 'compeft-seed0', 'compressed', 'compeft.bin'));
    });
    assert.equal(files[0]!.length, rows[0]!.adapter_bytes, "adapter_bytes is the compressed file's size");
    assert.ok(files[0]!.equals(files[1]!), 'the two compressed files are the same bytes');
  });
});

describe('bench methods: default specs and experiments', () => {
  it("an experiment's headline pairs are not added as method rows (first's lora + first needs its own cache)", () => {
    const specs = defaultSpecs();
    assert.ok(
      !specs.some((s) => s.loss.startsWith('first')),
      JSON.stringify(specs.map((s) => `${s.method}+${s.loss}`)),
    );
    assert.ok(
      specs.some((s) => s.method === 'lora' && s.loss === 'ua-clm'),
      'the method headlines still add their pairs',
    );
    for (const s of specs) lossChoice(s.loss);
  });
});
