/** Options marked `.meta({ path: true })` resolve relative to the config file; other strings stay. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { z } from 'zod';
import { resolveOptionPaths } from '../../../src/config/index.ts';
import { loadTrainConfig } from '../../../src/train/index.ts';
import '../../../src/uq/index.ts';

const root = mkdtempSync(join(tmpdir(), 'attune-option-paths-'));
after(() => rmSync(root, { recursive: true, force: true }));

it('resolves marked strings, nested and behind nullable/default wrappers, and nothing else', () => {
  const schema = z.object({
    file: z.string().describe('a file').meta({ path: true }),
    maybe: z.string().nullable().default(null).meta({ path: true }),
    name: z.string(),
    nested: z
      .object({ data: z.string().nullable().default(null).meta({ path: true }), mode: z.string() })
      .nullable()
      .default(null),
  });
  const out = resolveOptionPaths(
    { file: 'a.jsonl', maybe: null, name: 'b.jsonl', nested: { data: 'c.jsonl', mode: 'd' } },
    schema,
    (p) => `/base/${p}`,
  );
  assert.deepEqual(out, {
    file: '/base/a.jsonl',
    maybe: null,
    name: 'b.jsonl',
    nested: { data: '/base/c.jsonl', mode: 'd' },
  });
});

it('a training config resolves method and loss path options relative to its own folder', () => {
  const yaml = join(root, 'sub', 'train.yaml');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(
    yaml,
    `model: model
data: { train: train.jsonl }
method: { name: lora, init_lora_weights: corda, corda_config: { data: calib.jsonl } }
loss: { name: first, cache: teacher.safetensors }
train: { steps: 1 }
output_dir: run
`,
  );
  const config = loadTrainConfig(yaml);
  const sub = join(root, 'sub');
  assert.equal((config.method.corda_config as { data: string }).data, join(sub, 'calib.jsonl'));
  assert.equal(config.loss.cache, join(sub, 'teacher.safetensors'));
  assert.equal(config.method.init_lora_weights, 'corda');
  writeFileSync(
    yaml,
    `model: model
data: { train: held.jsonl }
method: { name: uq_head, kind: deup, adapter: ../lora/adapter }
train: { steps: 1 }
output_dir: run
`,
  );
  assert.equal(loadTrainConfig(yaml).method.adapter, join(root, 'lora', 'adapter'));
});
