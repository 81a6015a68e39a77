import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadTrainConfig } from '../../../src/train/config.ts';
import { tempDir } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-config-');
after(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, 'cfg'));
/** The README's quick-start config, read from the README itself so the two cannot drift apart. */
const README = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');
const QUICKSTART = /## Quick start[\s\S]*?```yaml\n([\s\S]*?)```/.exec(README)![1]!;

function write(name: string, text: string): string {
  const p = join(root, 'cfg', name);
  writeFileSync(p, text);
  return p;
}

describe('training config', () => {
  it("accepts the README's quick start exactly, filling defaults and resolving paths against the file", () => {
    const c = loadTrainConfig(write('q.yaml', QUICKSTART));
    assert.equal(c.model, join(root, 'cfg', 'path/to/model-dir'));
    assert.equal(c.data.train, join(root, 'cfg', 'path/to/train.jsonl'));
    assert.equal(c.output_dir, join(root, 'cfg', 'runs/quickstart'));
    assert.equal(c.method.lora_alpha, 16);
    assert.deepEqual(c.method.target_modules, ['q_proj', 'v_proj']);
    assert.equal(c.train.grad_accum, 1);
    assert.deepEqual(c.loss, { name: 'ce' });
  });
  it('applies --set overrides parsed as YAML', () => {
    const c = loadTrainConfig(write('q2.yaml', QUICKSTART), [
      'train.lr=2e-4',
      'method.target_modules=[q_proj,k_proj]',
      'loss={name: ua-clm, lambda: 0.5}',
    ]);
    assert.equal(c.train.lr, 2e-4);
    assert.deepEqual(c.method.target_modules, ['q_proj', 'k_proj']);
    assert.deepEqual(c.loss, {
      name: 'ua-clm',
      lambda: 0.5,
      probability: 'gold',
      stop_gradient: false,
      eps: 1e-6,
    });
  });
  it('names an unknown key and suggests the closest valid one', () => {
    assert.throws(
      () => loadTrainConfig(write('bad1.yaml', QUICKSTART.replace('batch_size', 'batchsize'))),
      /unknown key 'train\.batchsize' \(did you mean 'train\.batch_size'\?\)/,
    );
    assert.throws(
      () => loadTrainConfig(write('bad1b.yaml', QUICKSTART), ['trian.lr=1']),
      /unknown key 'trian' \(did you mean 'train'\?\)/,
    );
  });
  it('names missing and mistyped fields with the file', () => {
    assert.throws(
      () => loadTrainConfig(write('bad2.yaml', QUICKSTART.replace('output_dir: runs/quickstart\n', ''))),
      /bad2\.yaml: missing required field 'output_dir'/,
    );
    assert.throws(
      () => loadTrainConfig(write('bad3.yaml', QUICKSTART.replace('steps: 20', 'steps: -1'))),
      /field 'train\.steps'/,
    );
  });
  it('reports invalid YAML with its line', () => {
    assert.throws(
      () => loadTrainConfig(write('bad4.yaml', 'model: x\ndata: [unclosed\n')),
      /bad4\.yaml:\d+: invalid YAML/,
    );
  });
  it('reports a missing file', () => {
    assert.throws(
      () => loadTrainConfig(join(root, 'nope.yaml')),
      /nope\.yaml: cannot read the config \(ENOENT\)/,
    );
  });
});
