import assert from 'node:assert/strict';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanup, loraAdapter, nothingIn, runCli, tempDir, tinyModel, tunedVariant } from './helpers.ts';

after(cleanup);

describe('attune compress / decompress / port', () => {
  const root = tempDir();
  const base = tinyModel(join(root, 'base'));
  const adapter = loraAdapter(base, join(root, 'adapter'), 3);

  it('compress --adapter prints the measured ratio and error; --json is the last line', async () => {
    const out = join(root, 'c');
    const r = await runCli(['compress', '--adapter', adapter, '--out', out, '--density', '0.3', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ratio/);
    assert.equal(r.json.kind, 'lora-adapter');
    assert.equal(r.json.bytes_written, statSync(join(out, 'compeft.bin')).size);
    assert.equal(r.json.ratio, r.json.bytes_in / r.json.bytes_written);
    const again = await runCli(['compress', '--adapter', adapter, '--out', out]);
    assert.equal(again.status, 2, 'an existing --out needs --overwrite');
    const d = await runCli(['decompress', '--compressed', out, '--out', join(root, 'restored'), '--json']);
    assert.equal(d.status, 0, d.stderr);
    assert.equal(d.json.kind, 'lora-adapter');
    assert.ok(existsSync(join(root, 'restored', 'adapter_config.json')));
  });

  it('bad input fails with one error line and writes nothing', async () => {
    const r = await runCli(['compress', '--adapter', adapter, '--out', join(root, 'x'), '--density', '1.5']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^error: .*density must be in \(0, 1\]/);
    assert.ok(nothingIn(join(root, 'x')));
    const both = await runCli(['compress', '--adapter', adapter, '--model', base, '--out', join(root, 'y')]);
    assert.equal(both.status, 2);
    const noBase = await runCli(['compress', '--model', base, '--out', join(root, 'y')]);
    assert.equal(noBase.status, 2);
  });

  it('compress --model --base and decompress --base', async () => {
    const tuned = tunedVariant(base, join(root, 'tuned'), 2);
    const out = join(root, 'mc');
    const r = await runCli(['compress', '--model', tuned, '--base', base, '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.kind, 'model-delta');
    const missing = await runCli(['decompress', '--compressed', out, '--out', join(root, 'm1')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /--base/);
    const d = await runCli(['decompress', '--compressed', out, '--base', base, '--out', join(root, 'm2')]);
    assert.equal(d.status, 0, d.stderr);
    assert.ok(existsSync(join(root, 'm2', 'model.safetensors')));
  });

  it('port --json records what was applied; --overwrite is needed for an existing --out', async () => {
    const newBase = tunedVariant(base, join(root, 'new'), 5);
    const out = join(root, 'ported');
    const r = await runCli(['port', '--adapter', adapter, '--to-base', newBase, '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.targets.length, 4);
    assert.equal(r.json.scaling, 2);
    mkdirSync(join(root, 'exists'));
    const e = await runCli([
      'port',
      '--adapter',
      adapter,
      '--to-base',
      newBase,
      '--out',
      join(root, 'exists'),
    ]);
    assert.equal(e.status, 2);
    const help = await runCli(['port', '--help']);
    assert.match(help.stdout, /--to-base/);
  });
});
