import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel } from '../../../../src/models/index.ts';
import { applyLora } from '../../../../src/peft/index.ts';
import {
  answerLogits,
  modelIdentity,
  referenceContinuation,
  TemperatureCalibrator,
  temperatureNll,
} from '../../../../src/uq/index.ts';
import { tempDir, writeJsonl, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { randomizeLora } from '../../peft/helpers.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-calibrate-');
after(() => rmSync(root, { recursive: true, force: true }));
const model = writeTinyModel(join(root, 'model'));
const records = [
  { prompt: 'ab', answer: 'zz' },
  { prompt: 'cd', answer: 'yy' },
  { prompt: 'ef', answer: 'x' },
];
const data = writeJsonl(join(root, 'qa.jsonl'), records);

describe('attune calibrate fit', () => {
  it('fits a temperature on a tiny model: the NLL minimum of the reference tokens, with fitted_on', async () => {
    const out = join(root, 'temp.json');
    const r = await attune([
      'calibrate',
      'fit',
      '--model',
      model,
      '--data',
      data,
      '--method',
      'temperature',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const file = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(file.type, 'temperature');
    const T = file.params.temperature as number;
    const identity = modelIdentity(model);
    assert.deepEqual(file.fitted_on.model, identity);
    assert.equal(file.fitted_on.adapter, null);
    assert.equal(file.fitted_on.score, 'confidence');
    assert.equal(file.fitted_on.n, 3);
    assert.equal(file.fitted_on.tokens, 8); // " zz", " yy", " x": a space and the answer bytes (3 + 3 + 2)
    assert.equal(r.json!.out, out);
    // independently: the fitted T is where the reference tokens' NLL is smallest
    const { model: m, tokenizer } = loadModel(model);
    const rows: number[] = [];
    const labels: number[] = [];
    for (const record of records) {
      const answerIds = tokenizer!.encode(referenceContinuation(record), { addSpecialTokens: false });
      const logits = answerLogits(m, tokenizer!.encode(record.prompt), answerIds);
      rows.push(...logits.data);
      labels.push(...answerIds);
    }
    const nll = (t: number) => temperatureNll({ data: rows, vocabSize: 259 }, labels, t);
    for (const other of [1, T * 1.05, T / 1.05].filter((t) => t <= 100))
      assert.ok(
        nll(T) <= nll(other) + 1e-9,
        `NLL at T=${T} (${nll(T)}) above NLL at ${other} (${nll(other)})`,
      );
    // never over an existing file without --overwrite
    const again = await attune([
      'calibrate',
      'fit',
      '--model',
      model,
      '--data',
      data,
      '--method',
      'temperature',
      '--out',
      out,
    ]);
    assert.equal(again.status, 1);
    assert.equal(again.stderr, `error: ${out} already exists (pass --overwrite to replace it)\n`);
  });

  it('applies a temperature file in eval and generate --json, calibrated on top and raw under uncalibrated', async () => {
    // T = 1 changes nothing: the calibrated confidence equals the raw one
    const one = join(root, 'one.json');
    const fitted = JSON.parse(readFileSync(join(root, 'temp.json'), 'utf8'));
    writeFileSync(
      one,
      JSON.stringify({ ...new TemperatureCalibrator(1).toJSON(), fitted_on: fitted.fitted_on }),
    );
    const dir = join(root, 'eval-one');
    const r = await attune([
      'eval',
      '--model',
      model,
      '--data',
      data,
      '--max-new-tokens',
      '3',
      '--calibrator',
      one,
      '--out',
      dir,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const lines = readFileSync(join(dir, 'predictions.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (const line of lines)
      assert.ok(Math.abs(line.confidence - line.uncalibrated.confidence) < 1e-5, JSON.stringify(line));
    const summary = r.json! as { confidence: { ece: number }; uncalibrated: { confidence: { ece: number } } };
    assert.ok(Math.abs(summary.confidence.ece - summary.uncalibrated.confidence.ece) < 1e-5);
    assert.match(r.stdout, /^confidence \(calibrated\): ECE/m);
    assert.match(r.stdout, /^uncalibrated: ECE/m);
    // T = 4 flattens every distribution: a lower confidence, the raw one kept
    const four = join(root, 'four.json');
    writeFileSync(
      four,
      JSON.stringify({ ...new TemperatureCalibrator(4).toJSON(), fitted_on: fitted.fitted_on }),
    );
    const g1 = await attune([
      'generate',
      '--model',
      model,
      '--prompt',
      'ab',
      '--max-new-tokens',
      '3',
      '--calibrator',
      one,
      '--json',
    ]);
    const g4 = await attune([
      'generate',
      '--model',
      model,
      '--prompt',
      'ab',
      '--max-new-tokens',
      '3',
      '--calibrator',
      four,
      '--json',
    ]);
    const plain = await attune([
      'generate',
      '--model',
      model,
      '--prompt',
      'ab',
      '--max-new-tokens',
      '3',
      '--json',
    ]);
    assert.equal(g4.status, 0, g4.stderr);
    const raw = plain.json!.confidence as number;
    assert.equal(plain.json!.uncalibrated, undefined);
    assert.ok(Math.abs((g1.json!.confidence as number) - raw) < 1e-5);
    assert.deepEqual(g4.json!.uncalibrated, { confidence: raw });
    assert.ok((g4.json!.confidence as number) < raw);
    assert.equal(lines[0].uncalibrated.confidence, raw); // eval and generate agree on the raw confidence of "ab"
  });

  it('refuses a calibrator fitted on another model', async () => {
    const other = writeTinyModel(join(root, 'other'), { seed: 2 });
    const r = await attune([
      'eval',
      '--model',
      other,
      '--data',
      data,
      '--calibrator',
      join(root, 'temp.json'),
    ]);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^error: .*temp.json: this calibrator was fitted on the model at .*model \(weights fingerprint [0-9a-f]{12}\), not on .*other/,
    );
    const g = await attune([
      'generate',
      '--model',
      other,
      '--prompt',
      'a',
      '--calibrator',
      join(root, 'temp.json'),
      '--json',
    ]);
    assert.equal(g.status, 1);
  });

  it('records the adapter and refuses the calibrator without it or with another one', async () => {
    const adapterDir = (name: string, seed: number) => {
      const { model: m } = loadModel(model);
      const adapter = applyLora(m, { r: 2, loraAlpha: 4 });
      randomizeLora(m, seed);
      const dir = join(root, name);
      adapter.save(dir, { baseModelNameOrPath: model });
      return dir;
    };
    const a = adapterDir('adapter-a', 1);
    const b = adapterDir('adapter-b', 2);
    const out = join(root, 'with-adapter.json');
    const fit = await attune([
      'calibrate',
      'fit',
      '--model',
      model,
      '--adapter',
      a,
      '--data',
      data,
      '--method',
      'isotonic',
      '--max-new-tokens',
      '2',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(fit.status, 0, fit.stderr);
    assert.equal((fit.json!.fitted_on as { adapter: { path: string } }).adapter.path, a);
    const base = [
      'eval',
      '--model',
      model,
      '--data',
      data,
      '--max-new-tokens',
      '2',
      '--calibrator',
      out,
      '--out',
      join(root, 'adapter-eval'),
      '--overwrite',
    ];
    const ok = await attune([...base, '--adapter', a]);
    assert.equal(ok.status, 0, ok.stderr);
    const none = await attune(base);
    assert.equal(none.status, 1);
    assert.match(
      none.stderr,
      /was fitted with the adapter .*adapter-a \(sha256 [0-9a-f]{12}\); pass --adapter with it/,
    );
    const other = await attune([...base, '--adapter', b]);
    assert.equal(other.status, 1);
    assert.match(other.stderr, /not with .*adapter-b/);
  });

  it('fits Platt on a model score, and isotonic from a predictions file for uq metrics --calibrator', async () => {
    const out = join(root, 'platt-msp.json');
    const r = await attune([
      'calibrate',
      'fit',
      '--model',
      model,
      '--data',
      data,
      '--method',
      'platt',
      '--score',
      'msp',
      '--max-new-tokens',
      '3',
      '--out',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const file = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(file.fitted_on.score, 'msp');
    assert.equal(file.fitted_on.n, 3);
    assert.equal(file.fitted_on.tokens, undefined);
    // a predictions file with both classes
    const preds = writeJsonl(join(root, 'preds.jsonl'), [
      { ok: true, p: 0.9 },
      { ok: true, p: 0.8 },
      { ok: false, p: 0.7 },
      { ok: true, p: 0.6 },
      { ok: false, p: 0.2 },
    ]);
    const iso = join(root, 'iso.json');
    const fit = await attune([
      'calibrate',
      'fit',
      '--input',
      preds,
      '--label',
      'ok',
      '--confidence',
      'p',
      '--method',
      'isotonic',
      '--out',
      iso,
      '--json',
    ]);
    assert.equal(fit.status, 0, fit.stderr);
    // PAV: 0.2 -> 0; {0.6, 0.7} pooled -> 1/2; {0.8, 0.9} -> 1
    assert.deepEqual(fit.json!.params, {
      x: [0.2, 0.6, 0.7, 0.8, 0.9],
      y: [0, 0.5, 0.5, 1, 1],
      increasing: true,
    });
    const fittedOn = fit.json!.fitted_on as Record<string, unknown>;
    assert.equal(fittedOn.model, null);
    assert.deepEqual(fittedOn.data, {
      path: preds,
      sha256: (await import('../../../../src/uq/index.ts')).fileSha256(preds),
    });
    const m = await attune([
      'uq',
      'metrics',
      '--input',
      preds,
      '--label',
      'ok',
      '--confidence',
      'p',
      '--calibrator',
      iso,
      '--json',
    ]);
    assert.equal(m.status, 0, m.stderr);
    const plain = await attune([
      'uq',
      'metrics',
      '--input',
      preds,
      '--label',
      'ok',
      '--confidence',
      'p',
      '--json',
    ]);
    // calibrated Brier by hand: (0.5-0)^2 + (0.5-1)^2 = 0.5 over 5 = 0.1
    assert.ok(Math.abs((m.json!.brier as number) - 0.1) < 1e-12);
    const un = m.json!.uncalibrated as Record<string, unknown>;
    assert.equal(un.brier, plain.json!.brier);
    assert.equal(un.ece, plain.json!.ece);
    // another score field is refused; so is temperature, and temperature from a predictions file
    const wrong = await attune([
      'uq',
      'metrics',
      '--input',
      preds,
      '--label',
      'ok',
      '--uncertainty',
      'p',
      '--calibrator',
      out,
    ]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /this calibrator maps the score "msp", not "p"/);
    const temp = await attune([
      'uq',
      'metrics',
      '--input',
      preds,
      '--label',
      'ok',
      '--confidence',
      'p',
      '--calibrator',
      join(root, 'temp.json'),
    ]);
    assert.equal(temp.status, 2);
    assert.match(temp.stderr, /rescales token logits; a predictions file has none/);
    const noLogits = await attune([
      'calibrate',
      'fit',
      '--input',
      preds,
      '--label',
      'ok',
      '--confidence',
      'p',
      '--method',
      'temperature',
      '--out',
      join(root, 'x.json'),
    ]);
    assert.equal(noLogits.status, 2);
    assert.match(
      noLogits.stderr,
      /temperature rescales token logits, which a predictions file does not have/,
    );
    const both = await attune([
      'calibrate',
      'fit',
      '--model',
      model,
      '--input',
      preds,
      '--method',
      'platt',
      '--out',
      join(root, 'x.json'),
    ]);
    assert.equal(both.status, 2);
  });
});

describe('attune calibrate conformal and eval --abstain', () => {
  const table = writeJsonl(join(root, 'cal.jsonl'), [
    { c: 0.9, ok: true },
    { c: 0.9, ok: false },
    { c: 0.8, ok: true },
    { c: 0.7, ok: true },
    { c: 0.7, ok: true },
    { c: 0.6, ok: false },
    { c: 0.5, ok: true },
    { c: 0.4, ok: false },
    { c: 0.3, ok: false },
  ]);

  it('prints and saves the threshold, risk and coverage', async () => {
    const out = join(root, 'thr.json');
    const r = await attune([
      'calibrate',
      'conformal',
      '--input',
      table,
      '--label',
      'ok',
      '--confidence',
      'c',
      '--alpha',
      '0.25',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json!.threshold, 0.7);
    assert.deepEqual(r.json!.calibration, {
      n: 9,
      answered: 5,
      coverage: 5 / 9,
      risk: 1 / 9,
      selective_risk: 0.2,
    });
    assert.match(r.stdout, /^threshold 0.7 \(marginal, alpha 0.25\): answers 5 of 9 \(coverage 55.6%\)/m);
    const saved = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(saved.threshold, 0.7);
    assert.equal(saved.confidence, 'c');
    const none = await attune([
      'calibrate',
      'conformal',
      '--input',
      table,
      '--label',
      'ok',
      '--confidence',
      'c',
      '--alpha',
      '0.1',
      '--guarantee',
      'selective',
      '--json',
    ]);
    assert.equal(none.json!.threshold, null);
    assert.match(none.stdout, /^abstain on everything: no threshold bounds the error among answered/m);
    const bad = await attune([
      'calibrate',
      'conformal',
      '--input',
      table,
      '--label',
      'ok',
      '--confidence',
      'c',
      '--alpha',
      '1',
    ]);
    assert.equal(bad.status, 2);
  });

  it('eval --abstain reports the realised risk and coverage of a saved threshold', async () => {
    const dir = join(root, 'abstain');
    // threshold 0: answer everything; every answer of the random model is wrong
    const thr = join(root, 'thr0.json');
    writeFileSync(
      thr,
      JSON.stringify({
        type: 'abstention_threshold',
        version: 1,
        threshold: 0,
        confidence: 'confidence',
        guarantee: 'marginal',
        alpha: 0.1,
        delta: null,
        bound: null,
        calibration: {},
        note: null,
      }),
    );
    const r = await attune([
      'eval',
      '--model',
      model,
      '--data',
      data,
      '--max-new-tokens',
      '2',
      '--abstain',
      thr,
      '--out',
      dir,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.json!.abstention, {
      threshold: 0,
      guarantee: 'marginal',
      alpha: 0.1,
      delta: null,
      n: 3,
      answered: 3,
      coverage: 1,
      risk: 1,
      selective_risk: 1,
    });
    const onField = await attune([
      'eval',
      '--model',
      model,
      '--data',
      data,
      '--abstain',
      join(root, 'thr.json'),
      '--out',
      dir,
      '--overwrite',
    ]);
    assert.equal(onField.status, 2);
    assert.match(
      onField.stderr,
      /is a threshold on the field "c"; eval applies thresholds on its confidence/,
    );
  });
});
