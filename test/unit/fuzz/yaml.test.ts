/**
 * Fuzzed YAML configs (`loadTrainConfig`, `loadMergeConfig`): values replaced by hostile scalars
 * (.nan, .inf, huge and negative numbers, wrong types, tags, unknown and recursive aliases, deep
 * flow nesting), duplicate keys, alias bombs, truncation, invalid UTF-8. Loading either works or
 * throws a one-line AttuneError naming the file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadMergeConfig } from '../../../src/merge/config.ts';
import { loadTrainConfig } from '../../../src/train/config.ts';
import { FuzzReport, fuzzDir, mutateBytes, Rng } from './harness.ts';

const { dir, remove } = fuzzDir();
after(remove);

const TRAIN_YAML = `model: ./model
data:
  train: ./train.jsonl
  max_length: 32
  on_bad_record: skip
method: lora
lora: { r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj] }
train: { steps: 2, batch_size: 2, lr: 1.0e-2, seed: 0 }
output_dir: ./run
`;

const MERGE_YAML = `merge_method: ties
base_model: ./base
models:
  - model: ./base
  - model: ./ft
    parameters: {weight: 1.0, density: 0.5}
  - model: ./base+./lora
    parameters: {weight: 0.7, density: [0.3, 0.7]}
parameters:
  normalize: true
  lambda: 1.0
dtype: bfloat16
`;

/** Scalars no config field wants. */
function hostileScalar(rng: Rng): string {
  const depth = 1000 + rng.int(20000);
  return rng.pick([
    '.nan',
    '.inf',
    '-.inf',
    '-1',
    '-1099511627776',
    '1e400',
    '9007199254740993',
    '0x7fffffffffffffff',
    '0.5',
    '~',
    "''",
    '[]',
    '{}',
    '!!binary AAAA',
    '!!js/function "x"',
    '!!timestamp 2001-12-14',
    '!!set {a, b}',
    '*nowhere',
    '&self [*self]',
    '"\\ud800"',
    '"\\0"',
    `${'['.repeat(depth)}${']'.repeat(depth)}`,
    `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`,
    'x'.repeat(5000),
    '|\n  multi\n  line',
  ]);
}

/** `yaml` with one mutation (`what` says which). */
function mutateYaml(yaml: string, rng: Rng): { bytes: Uint8Array; what: string } {
  const lines = yaml.trimEnd().split('\n');
  switch (rng.int(6)) {
    case 0:
    case 1: {
      // A value (after `key:`, or an item of a flow mapping / list) replaced.
      const candidates = [...yaml.matchAll(/(?<=: )[^\s{},[\]]+|(?<=\[)[^\],]+/g)];
      const m = rng.pick(candidates);
      const value = hostileScalar(rng);
      const text = yaml.slice(0, m.index) + value + yaml.slice(m.index! + m[0].length);
      return { bytes: Buffer.from(text), what: `${m[0]} := ${value.slice(0, 30)}` };
    }
    case 2: {
      const line = rng.pick(lines.filter((l) => /^\w/.test(l)));
      return { bytes: Buffer.from(`${yaml}${line}\n`), what: `duplicate ${line.slice(0, 20)}` };
    }
    case 3: {
      const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
      for (let k = 1; k < 9; k++) {
        const prev = String.fromCharCode(96 + k);
        const name = String.fromCharCode(97 + k);
        bomb.push(
          `${name}: &${name} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`,
        );
      }
      return { bytes: Buffer.from(`${yaml}${bomb.join('\n')}\n`), what: 'alias bomb' };
    }
    case 4: {
      const at = rng.int(lines.length);
      const indent = rng.pick(['\t', '   ', '', '- ', '? ', '%YAML 9.9\n', '---\n', '... \n']);
      lines[at] = indent + lines[at];
      return {
        bytes: Buffer.from(lines.join('\n')),
        what: `line ${at + 1} prefixed ${JSON.stringify(indent)}`,
      };
    }
    default:
      return mutateBytes(Buffer.from(yaml), rng);
  }
}

describe('fuzzed YAML configs', () => {
  for (const [name, yaml, load] of [
    ['train', TRAIN_YAML, loadTrainConfig],
    ['merge', MERGE_YAML, loadMergeConfig],
  ] as const) {
    it(`${name} config: 150 mutations, typed errors naming the file`, () => {
      const rng = new Rng(name === 'train' ? 41 : 42);
      const report = new FuzzReport();
      for (let i = 0; i < 150; i++) {
        const path = join(dir, `${name}-${i}.yaml`);
        const { bytes, what } = mutateYaml(yaml, rng);
        writeFileSync(path, bytes);
        report.run(`${name} case ${i} (${what})`, [path], () => load(path));
      }
      report.check(60);
    });
  }
});
