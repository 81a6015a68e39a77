// The model-running commands (inspect, generate, score, eval) through bin/attune.js against the real
// TinyStories-656K checkpoint, checked against the golden fixture (ids from the Rust tokenizers
// library, log-probs / entropies / greedy ids from a float64 reference forward).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { testModelDir } from '../helpers/models-env.ts';

const bin = fileURLToPath(new URL('../../bin/attune.js', import.meta.url));
const model = testModelDir('tinystories-656k');
const elsewhere = mkdtempSync(join(tmpdir(), 'attune-cli-models-'));
after(() => rmSync(elsewhere, { recursive: true, force: true }));

interface Fixture {
  scoring: { text: string; ids: number[]; logprobs: number[]; entropies: number[] }[];
  greedy: { prompt: string; prompt_ids: number[]; generated_ids: number[] };
}

function attune(args: string[]) {
  const res = spawnSync(process.execPath, [bin, ...args], {
    cwd: elsewhere,
    encoding: 'utf8',
    env: { ...process.env, ATTUNE_DEBUG: '' },
    timeout: 120_000,
  });
  assert.equal(res.error, undefined);
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** The JSON object a --json run ends stdout with. */
function jsonOf(run: { status: number | null; stdout: string; stderr: string }): Record<string, unknown> {
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trimEnd().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

/** Total element count of every tensor in a safetensors file, read from its header. */
function safetensorsParameterCount(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const len = Number(lenBuf.readBigUInt64LE(0));
    const header = Buffer.alloc(len);
    readSync(fd, header, 0, len, 8);
    const entries = JSON.parse(header.toString('utf8')) as Record<string, { shape?: number[] }>;
    let n = 0;
    for (const [name, info] of Object.entries(entries)) {
      if (name === '__metadata__') continue;
      n += info.shape!.reduce((p, d) => p * d, 1);
    }
    return n;
  } finally {
    closeSync(fd);
  }
}

/** Ids up to and including the first EOS (generation stops there). */
function untilEos(ids: readonly number[], eos: number): number[] {
  const at = ids.indexOf(eos);
  return at < 0 ? [...ids] : ids.slice(0, at + 1);
}

function assertOneErrorLine(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /^error: [^\n]*\n$/, `expected one 'error:' line, got ${JSON.stringify(stderr)}`);
  assert.match(stderr, pattern);
}

describe('attune model commands on TinyStories-656K', { skip: model.skip }, () => {
  const dir = model.dir!;
  const fixturePath = model.dir ? join(dirname(dirname(dir)), 'fixtures', 'tinystories-656k.json') : '';
  const fixture = model.dir ? (JSON.parse(readFileSync(fixturePath, 'utf8')) as Fixture) : null;
  const prompt = 'One day, a girl named Sue found a shiny stone.';

  it('the fixture is where the models README says', () => {
    assert.ok(existsSync(fixturePath), fixturePath);
    assert.equal(fixture!.greedy.prompt, prompt);
  });

  it('inspect --json describes the checkpoint', () => {
    const r = jsonOf(attune(['inspect', dir, '--json']));
    const expected = safetensorsParameterCount(join(dir, 'model.safetensors'));
    // hidden 128, 2 layers, FFN 384, 4 of 8 heads for K/V, vocab 2048, one (tied) embedding matrix
    const byConfig = 2048 * 128 + 2 * (2 * 128 * 128 + 2 * 128 * 64 + 3 * 128 * 384 + 2 * 128) + 128;
    assert.equal(expected, byConfig);
    assert.equal(r.architecture, 'LlamaForCausalLM');
    assert.equal(r.model_type, 'llama');
    assert.equal(r.parameters, expected);
    assert.deepEqual(r.dtypes, { F32: expected });
    assert.equal(r.layers, 2);
    assert.equal(r.hidden_size, 128);
    assert.equal(r.heads, 8);
    assert.equal(r.kv_heads, 4);
    assert.equal(r.vocab_size, 2048);
    assert.equal(r.tied_embeddings, true);
    const tok = r.tokenizer as Record<string, unknown>;
    assert.equal(tok.present, true);
    assert.equal(tok.vocab_size, 2048);
    assert.equal(tok.bos, '<|start_story|>');
    assert.deepEqual(tok.eos, ['<|end_story|>']);
    assert.equal(tok.chat_template, false);
  });

  it('generate --temperature 0 reproduces the reference greedy ids up to EOS', () => {
    const r = jsonOf(
      attune([
        'generate',
        '--model',
        dir,
        '--prompt',
        prompt,
        '--max-new-tokens',
        '20',
        '--temperature',
        '0',
        '--json',
      ]),
    );
    const expected = untilEos(fixture!.greedy.generated_ids, 2);
    assert.ok(expected.length < 20, 'the reference reaches EOS within 20 tokens');
    assert.deepEqual(r.prompt_ids, fixture!.greedy.prompt_ids);
    assert.deepEqual(r.generated_ids, expected);
    assert.equal(r.stop_reason, 'eos');
    assert.equal(typeof r.text, 'string');
  });

  it('generate with a sampling seed is reproducible, and another seed differs', () => {
    const sample = (seed: string) =>
      attune([
        'generate',
        '--model',
        dir,
        '--prompt',
        prompt,
        '--max-new-tokens',
        '20',
        '--temperature',
        '0.8',
        '--seed',
        seed,
        '--json',
      ]);
    const a = sample('3');
    const b = sample('3');
    const c = sample('4');
    assert.equal(a.status, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    const ja = jsonOf(a);
    const jc = jsonOf(c);
    assert.deepEqual(ja.prompt_ids, fixture!.greedy.prompt_ids);
    assert.ok((ja.generated_ids as number[]).length >= 1);
    // 20 tokens sampled at T=0.8: two seeds agreeing on all of them is very unlikely
    assert.notDeepEqual(ja.generated_ids, jc.generated_ids);
  });

  it('score --text matches the reference ids, log-probs and entropies', () => {
    const ref = fixture!.scoring[0]!;
    assert.equal(ref.text, 'Tom had a red ball.');
    const r = jsonOf(attune(['score', '--model', dir, '--text', ref.text, '--json']));
    assert.deepEqual(r.ids, ref.ids);
    const tokens = r.tokens as {
      id: number;
      token: string | null;
      logprob: number | null;
      entropy: number | null;
    }[];
    assert.deepEqual(
      tokens.map((t) => t.id),
      ref.ids,
    );
    assert.equal(tokens[0]!.logprob, null);
    assert.equal(tokens[0]!.token, '<|start_story|>');
    for (let i = 1; i < tokens.length; i++) {
      const t = tokens[i]!;
      assert.ok(
        Math.abs(t.logprob! - ref.logprobs[i - 1]!) <= 1e-4,
        `logprob[${i}] ${t.logprob} vs ${ref.logprobs[i - 1]}`,
      );
      assert.ok(
        Math.abs(t.entropy! - ref.entropies[i - 1]!) <= 1e-4,
        `entropy[${i}] ${t.entropy} vs ${ref.entropies[i - 1]}`,
      );
    }
    const sum = ref.logprobs.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs((r.sum_logprob as number) - sum) <= 1e-3, `sum_logprob ${r.sum_logprob} vs ${sum}`);
    assert.ok(Math.abs((r.mean_logprob as number) - sum / ref.logprobs.length) <= 1e-4);
    assert.ok(Math.abs((r.max_entropy as number) - Math.max(...ref.entropies)) <= 1e-4);
  });

  it('score --ids scores the given ids as they are', () => {
    const ref = fixture!.scoring[0]!;
    const r = jsonOf(attune(['score', '--model', dir, '--ids', '1,80,388', '--json']));
    assert.deepEqual(r.ids, [1, 80, 388]);
    const tokens = r.tokens as { id: number; logprob: number | null; entropy: number | null }[];
    assert.deepEqual(
      tokens.map((t) => t.id),
      [1, 80, 388],
    );
    assert.equal(tokens[0]!.logprob, null);
    // the same prefix as the scored text: the same first two predictions
    assert.ok(Math.abs(tokens[1]!.logprob! - ref.logprobs[0]!) <= 1e-4);
    assert.ok(Math.abs(tokens[2]!.logprob! - ref.logprobs[1]!) <= 1e-4);
    assert.ok(Math.abs(tokens[2]!.entropy! - ref.entropies[1]!) <= 1e-4);
  });

  it('generate without --prompt or --chat is a usage error, exit 2', () => {
    const run = attune(['generate', '--model', dir]);
    assert.equal(run.status, 2);
    assert.equal(run.stdout, '');
    assertOneErrorLine(run.stderr, /--prompt or --chat/);
  });

  it('an unknown flag is a usage error, exit 2', () => {
    const run = attune(['generate', '--model', dir, '--prompt', 'x', '--bogus']);
    assert.equal(run.status, 2);
    assert.equal(run.stdout, '');
    assertOneErrorLine(run.stderr, /unknown option '--bogus' for 'attune generate'/);
  });

  it('a missing model directory is one error line naming the file, exit 1', () => {
    for (const command of [
      ['generate', '--prompt', 'x'],
      ['score', '--ids', '1,2'],
    ]) {
      const run = attune([...command, '--model', '/nonexistent']);
      assert.equal(run.status, 1, run.stderr);
      assert.equal(run.stdout, '');
      assertOneErrorLine(run.stderr, /\/nonexistent\/config\.json/);
    }
  });

  it('eval grades answers and reports uncertainty metrics', () => {
    const work = mkdtempSync(join(elsewhere, 'eval-'));
    const data = join(work, 'qa.jsonl');
    const records = [
      { prompt: 'Once upon a time, there was a little', answer: 'girl' },
      { prompt: 'Tom had a red', answer: 'ball' },
      { prompt: 'The cat sat on the', answer: 'mat' },
    ];
    writeFileSync(data, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const r = jsonOf(attune(['eval', '--model', dir, '--data', data, '--max-new-tokens', '5', '--json']));
    assert.equal(r.n, 3);
    assert.equal(typeof r.accuracy, 'number');
    assert.ok((r.accuracy as number) >= 0 && (r.accuracy as number) <= 1);
    const msp = (r.scores as Record<string, { auroc: number | null }>).msp;
    assert.ok(msp, 'scores.msp');
    if (msp.auroc === null) {
      // all answers right or all wrong: AUROC is undefined, and a note says why
      const notes = r.notes as Record<string, string>;
      assert.equal(typeof notes['msp.auroc'], 'string');
    } else {
      assert.ok(msp.auroc >= 0 && msp.auroc <= 1);
    }
    const confidence = r.confidence as { ece: number };
    assert.equal(typeof confidence.ece, 'number');
    assert.ok(confidence.ece >= 0 && confidence.ece <= 1);
    const predictionsPath = join(work, 'predictions.jsonl');
    assert.equal(r.predictions, predictionsPath);
    const lines = readFileSync(predictionsPath, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 3);
    lines.forEach((line, i) => {
      const p = JSON.parse(line) as Record<string, unknown>;
      for (const key of ['prompt', 'reference', 'answer', 'correct', 'confidence', 'msp']) {
        assert.ok(key in p, `predictions line ${i + 1} has ${key}`);
      }
      assert.equal(p.prompt, records[i]!.prompt);
      assert.equal(p.reference, records[i]!.answer);
      assert.equal(typeof p.answer, 'string');
      assert.equal(typeof p.correct, 'boolean');
      assert.ok((p.confidence as number) > 0 && (p.confidence as number) <= 1);
      assert.equal(typeof p.msp, 'number');
    });
  });
});
