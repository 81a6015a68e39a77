import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { captureIO } from '../../../src/cli/io.ts';
import { main } from '../../../src/cli/main.ts';
import { ModelSource, parseModelReference } from '../../../src/merge/reference.ts';
import { cleanup, loraAdapter, tempDir, tinyModel, writeYaml } from './helpers.ts';

after(cleanup);

describe('merge model references', () => {
  it('an adapter folder given as a model says to write it base+adapter', async () => {
    const dir = tempDir();
    tinyModel(join(dir, 'base'));
    loraAdapter(join(dir, 'base'), join(dir, 'lora'), 1);
    assert.throws(
      () => ModelSource.open(parseModelReference('lora', dir)),
      /model 'lora' is a PEFT adapter, not a model; write an adapter as base\+adapter in the YAML \(model: path\/to\/base\+lora\)/,
    );
    const yaml = writeYaml(
      join(dir, 'merge.yaml'),
      'merge_method: linear\nmodels:\n  - model: base\n    parameters: {weight: 0.5}\n  - model: lora\n    parameters: {weight: 0.5}\n',
    );
    const { io, stderr } = captureIO();
    assert.equal(await main(['merge', yaml, '--out', join(dir, 'out')], io), 1);
    assert.match(stderr(), /^error: .*lora: model 'lora' is a PEFT adapter.*base\+adapter/);
    assert.doesNotMatch(stderr(), /config\.json: file not found/);
    assert.equal(existsSync(join(dir, 'out')), false);
    // written as base+adapter, the same adapter merges
    const fixed = writeYaml(
      join(dir, 'fixed.yaml'),
      'merge_method: linear\nmodels:\n  - model: base\n    parameters: {weight: 0.5}\n  - model: base+lora\n    parameters: {weight: 0.5}\n',
    );
    const ok = captureIO();
    assert.equal(await main(['merge', fixed, '--out', join(dir, 'out')], ok.io), 0, ok.stderr());
  });
});
