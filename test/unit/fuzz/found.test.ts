/**
 * The crashes and silent misreads the fuzzers found, one deterministic case each (each failed
 * before its fix): every one now ends in a one-line AttuneError naming the file.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readJsonl } from '../../../src/data/jsonl.ts';
import { type AttuneError, ConfigError, DataError, FormatError } from '../../../src/errors.ts';
import { byteTokenizerFiles } from '../../../src/io/byte-tokenizer.ts';
import { briefJson, MAX_JSON_DEPTH, parseJson, readJson } from '../../../src/io/json.ts';
import { openSafetensors } from '../../../src/io/safetensors.ts';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { loadMergeConfig } from '../../../src/merge/config.ts';
import { loadModel } from '../../../src/models/load.ts';
import { applyLora, loadAdapter } from '../../../src/peft/index.ts';
import { loadTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { fuzzDir } from './harness.ts';

const { dir, remove } = fuzzDir();
after(remove);
const base = join(dir, 'base');
writeTinyModel(base, { hidden: 16, layers: 1 });

/** The one-line AttuneError `fn` throws, of class `type`, checked to mention every part. */
function typedError<T extends AttuneError>(
  fn: () => unknown,
  type: new (...args: never[]) => T,
  parts: string[],
): T {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof type, `expected a ${type.name}, got ${String(caught)}`);
  assert.ok(!caught.message.includes('\n'), caught.message);
  assert.ok(caught.message.length < 500, `message of ${caught.message.length} chars`);
  for (const part of parts) assert.ok(caught.message.includes(part), `'${caught.message}' lacks '${part}'`);
  return caught;
}

let modelCount = 0;
/** A copy of the tiny model with config.json edited by `edit`. */
function modelWith(edit: (config: Record<string, unknown>) => void): string {
  const folder = join(dir, `model-${modelCount++}`);
  cpSync(base, folder, { recursive: true });
  const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
  edit(config);
  writeFileSync(join(folder, 'config.json'), JSON.stringify(config));
  return folder;
}

describe('crashes found by fuzzing', () => {
  it('deep nesting: a FormatError with its position (was a stack overflow in error messages)', () => {
    const depth = 30000;
    const folder = modelWith(() => {});
    const text = readFileSync(join(folder, 'config.json'), 'utf8').replace(
      '"silu"',
      `${'['.repeat(depth)}${']'.repeat(depth)}`,
    );
    writeFileSync(join(folder, 'config.json'), text);
    typedError(() => loadModel(folder), FormatError, [
      join(folder, 'config.json'),
      `deeper than ${MAX_JSON_DEPTH} levels`,
    ]);
    assert.ok(Array.isArray(parseJson(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`, 'x')));
  });

  it('values in messages are cut (a 1 MB or deeply nested value made a 1 MB message)', () => {
    assert.equal(briefJson('x'.repeat(1000)).length, 83);
    assert.equal(briefJson(Number.NaN), 'NaN');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.equal(briefJson(circular), '{...}');
    const path = join(dir, 'huge-dtype.safetensors');
    const header = Buffer.from(
      JSON.stringify({ a: { dtype: 'x'.repeat(100000), shape: [1], data_offsets: [0, 4] } }),
    );
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(path, Buffer.concat([prefix, header, Buffer.alloc(4)]));
    typedError(() => openSafetensors(path), FormatError, [path, "tensor 'a'", 'unknown dtype']);
  });

  it('vocab_size 2^40: a ConfigError before allocating (was RangeError: Invalid typed array length)', () => {
    const folder = modelWith((c) => {
      c.vocab_size = 2 ** 40;
    });
    typedError(() => loadModel(folder), ConfigError, [
      join(folder, 'config.json'),
      'vocab_size is 1099511627776',
    ]);
  });

  it('num_hidden_layers 2^40: a ConfigError at once (was a hang building 2^40 layers)', () => {
    const folder = modelWith((c) => {
      c.num_hidden_layers = 2 ** 40;
    });
    const started = performance.now();
    typedError(() => loadModel(folder), ConfigError, [
      join(folder, 'config.json'),
      'num_hidden_layers is 1099511627776',
    ]);
    assert.ok(performance.now() - started < 2000);
  });

  it('eos_token_id -1 / 0.5: a ConfigError naming the field (was RangeError from addEosTokenIds)', () => {
    for (const eos of [-1, 0.5, [257, 1e308]]) {
      const folder = modelWith((c) => {
        c.eos_token_id = eos;
      });
      typedError(() => loadModel(folder), ConfigError, [join(folder, 'config.json'), "'eos_token_id'"]);
    }
  });

  it('rms_norm_eps <= 0, attention_dropout >= 1: errors name config.json (the layers reported them without a file)', () => {
    for (const [field, value] of [
      ['rms_norm_eps', -1],
      ['attention_dropout', 1e308],
      ['rope_theta', 0],
    ] as const) {
      const folder = modelWith((c) => {
        c[field] = value;
      });
      typedError(() => loadModel(folder), ConfigError, [join(folder, 'config.json'), `'${field}'`]);
    }
  });

  it('tokenizer.json added_tokens with a non-integer id: a FormatError at load (was a TypeError at decode)', () => {
    const { tokenizer, config } = byteTokenizerFiles();
    (tokenizer.added_tokens as Record<string, unknown>[])[0]!.id = 'xx';
    typedError(() => Tokenizer.fromObjects(tokenizer, config, dir), FormatError, [
      'tokenizer.json',
      'added_tokens[0]',
    ]);
    const broken = byteTokenizerFiles();
    (broken.tokenizer.model as Record<string, unknown>).vocab = { a: -3 };
    typedError(() => Tokenizer.fromObjects(broken.tokenizer, broken.config, dir), FormatError, [
      'model.vocab',
    ]);
  });

  it('YAML alias bombs and unknown aliases: ConfigErrors (were ReferenceErrors)', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let k = 1; k < 9; k++) {
      const p = String.fromCharCode(96 + k);
      const n = String.fromCharCode(97 + k);
      bomb.push(`${n}: &${n} [*${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}]`);
    }
    for (const [name, load] of [
      ['train', loadTrainConfig],
      ['merge', loadMergeConfig],
    ] as const) {
      const path = join(dir, `${name}-bomb.yaml`);
      writeFileSync(path, `${bomb.join('\n')}\n`);
      typedError(() => load(path), ConfigError, [path, 'invalid YAML']);
      writeFileSync(path, 'model: *nowhere\n');
      typedError(() => load(path), ConfigError, [path, 'invalid YAML']);
    }
  });

  it('a complex YAML key keeps the error on one line', () => {
    const path = join(dir, 'complex-key.yaml');
    writeFileSync(path, 'merge_method: linear\n? models:\n    - model: ./a\n');
    typedError(() => loadMergeConfig(path), ConfigError, [path, 'unknown key']);
  });

  it('invalid UTF-8: JSONL lines are bad records, JSON files FormatErrors (both were decoded to U+FFFD)', () => {
    const jsonl = join(dir, 'bad-utf8.jsonl');
    writeFileSync(
      jsonl,
      Buffer.concat([Buffer.from('{"text": "ok"}\n{"text": "a'), Buffer.from([0xff]), Buffer.from('b"}\n')]),
    );
    typedError(() => readJsonl(jsonl), DataError, [`${jsonl}:2: the line is not valid UTF-8`]);
    assert.deepEqual(
      readJsonl(jsonl, { onBadRecord: 'skip' }).skipped.map((s) => s.line),
      [2],
    );
    const json = join(dir, 'bad-utf8.json');
    writeFileSync(
      json,
      Buffer.concat([Buffer.from('{\n "a": "'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]),
    );
    typedError(() => readJson(json), FormatError, [json, 'not valid UTF-8 (at line 2, column 8)']);
  });

  it('adapter_config.json with r 2^63 or lora_alpha 1e999: errors name the file (r was a RangeError)', () => {
    const adapterDir = join(dir, 'adapter');
    applyLora(loadModel(base).model, { r: 2, loraAlpha: 4, targetModules: ['q_proj'] }).save(adapterDir);
    const configPath = join(adapterDir, 'adapter_config.json');
    const original = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, JSON.stringify({ ...JSON.parse(original), r: 2 ** 63 }));
    typedError(() => loadAdapter(loadModel(base).model, adapterDir), FormatError, [
      configPath,
      'cannot be applied',
    ]);
    writeFileSync(configPath, original.replace(/"lora_alpha": \d+/, '"lora_alpha": 1e999'));
    typedError(() => loadAdapter(loadModel(base).model, adapterDir), ConfigError, [configPath, 'loraAlpha']);
  });

  it('resuming from a corrupt checkpoint: a FormatError naming it (was a TypeError, or a multi-line message)', () => {
    const data = writeJsonl(join(dir, 'resume.jsonl'), FACTS);
    const outputDir = join(dir, 'run-resume');
    const config = tinyConfig(dir, {
      model: base,
      data: { train: data },
      train: { steps: 3, save_every: 1, batch_size: 2 },
      output_dir: outputDir,
    });
    assert.throws(() => train(config, { haltAfterStep: 1 }));
    const checkpoint = join(outputDir, 'checkpoints', 'step-1');
    const optimizerJson = join(checkpoint, 'optimizer.json');
    const state = JSON.parse(readFileSync(optimizerJson, 'utf8'));
    state.params[0].shape = {};
    writeFileSync(optimizerJson, JSON.stringify(state));
    typedError(() => train(config, { resume: true }), FormatError, [checkpoint, 'cannot resume from it']);
    writeFileSync(join(outputDir, 'checkpoints', 'latest'), 'step-1\nstep-2');
    typedError(() => train(config, { resume: true }), FormatError, ['points to "step-1\\nstep-2"']);
  });

  it('train refusing bad data creates no output_dir (it was created, empty, before validation)', () => {
    const data = writeJsonl(join(dir, 'bad.jsonl'), [...FACTS, { prompt: 'x', completion: 5 }]);
    const outputDir = join(dir, 'run-refused');
    typedError(
      () => train(tinyConfig(dir, { model: base, data: { train: data }, output_dir: outputDir })),
      DataError,
      [`${data}:5`],
    );
    assert.equal(existsSync(outputDir), false);
  });
});
