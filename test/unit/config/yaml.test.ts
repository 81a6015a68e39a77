import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { applyOverrides, readYamlMapping, validateWith } from '../../../src/config/yaml.ts';

const root = mkdtempSync(join(tmpdir(), 'attune-yaml-'));
after(() => rmSync(root, { recursive: true, force: true }));

const schema = z
  .object({
    name: z.string(),
    train: z.object({ steps: z.number().int().positive(), lr: z.number().positive().default(1e-3) }).strict(),
  })
  .strict();

function file(name: string, text: string): string {
  const p = join(root, name);
  writeFileSync(p, text);
  return p;
}

describe('YAML config toolkit', () => {
  it('reports every problem of a file in one error, each with its line', () => {
    const path = file('bad.yaml', 'name: x\ntrain:\n  steps: -3\n  lr: fast\n  batchsize: 4\n');
    const source = readYamlMapping(path);
    assert.throws(
      () => validateWith(schema, source.raw, path, source),
      (e: Error) => {
        const parts = e.message.split('; ');
        assert.equal(parts.length, 3, e.message);
        assert.match(parts[0]!, /bad\.yaml:3: field 'train\.steps'/);
        assert.match(parts[1]!, /bad\.yaml:4: field 'train\.lr'/);
        assert.match(parts[2]!, /bad\.yaml:5: unknown key 'train\.batchsize' \(valid: steps, lr\)/);
        return true;
      },
    );
  });

  it('suggests the closest key and names missing fields', () => {
    const path = file('typo.yaml', 'nmae: x\ntrain: {steps: 1}\n');
    const source = readYamlMapping(path);
    assert.throws(
      () => validateWith(schema, source.raw, path, source),
      (e: Error) =>
        /typo\.yaml:1: unknown key 'nmae' \(did you mean 'name'\?\)/.test(e.message) &&
        /typo\.yaml: missing required field 'name'/.test(e.message),
    );
  });

  it('applies --set overrides as YAML values; a name becomes {name} when an option is set', () => {
    const raw: Record<string, unknown> = { method: 'lora', train: { steps: 1 } };
    applyOverrides(raw, ['train.lr=2e-4', 'method.r=4', 'tags=[a, b]']);
    assert.deepEqual(raw, {
      method: { name: 'lora', r: 4 },
      train: { steps: 1, lr: 2e-4 },
      tags: ['a', 'b'],
    });
    assert.throws(() => applyOverrides(raw, ['novalue']), /expected key=value/);
    assert.throws(() => applyOverrides(raw, ['__proto__.x=1']), /not a dotted field path/);
  });

  it('refuses duplicate keys, non-mappings and unreadable files with the file name', () => {
    assert.throws(() => readYamlMapping(file('dup.yaml', 'a: 1\na: 2\n')), /dup\.yaml:\d+: invalid YAML/);
    assert.throws(
      () => readYamlMapping(file('list.yaml', '- a\n- b\n')),
      /list\.yaml: the config must be a YAML mapping/,
    );
    assert.throws(
      () => readYamlMapping(join(root, 'none.yaml')),
      /none\.yaml: cannot read the config \(ENOENT\)/,
    );
  });
});
