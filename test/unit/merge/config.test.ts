import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { loadMergeConfig, parseModelReference, runMerge } from '../../../src/merge/index.ts';
import { cleanup, config, tempDir, writeYaml } from './helpers.ts';

after(cleanup);

const dir = tempDir();
mkdirSync(join(dir, 'base'));
mkdirSync(join(dir, 'ft'));
mkdirSync(join(dir, 'lora+x'));

const rejects = (raw: Record<string, unknown>, pattern: RegExp) =>
  assert.throws(
    () => config(raw, dir),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, pattern);
      return true;
    },
  );

describe('merge config', () => {
  it('reads mergekit YAML; model references are relative to the file; per-model settings override globals', () => {
    const file = writeYaml(
      join(dir, 'ties.yaml'),
      `merge_method: ties
base_model: base
models:
  - model: base
  - model: ft
    parameters:
      weight: 0.7
      density: [0.2, 0.8]
parameters:
  normalize: true
  density: 0.5
  int8_mask: true
dtype: bfloat16
`,
    );
    const c = loadMergeConfig(file);
    assert.equal(c.method, 'ties');
    assert.equal(c.base?.dir, join(dir, 'base'));
    assert.equal(c.models[1]!.ref.dir, join(dir, 'ft'));
    assert.deepEqual(c.models[1]!.parameters.density, [0.2, 0.8]);
    assert.equal(c.parameters.density, 0.5);
    assert.equal(c.outDtype, 'bfloat16');
    assert.equal(c.seed, 0);
  });

  it('parses base_dir+adapter_dir references (a folder whose name has + stays a folder)', () => {
    mkdirSync(join(dir, 'adapter'), { recursive: true });
    assert.deepEqual(parseModelReference('base+adapter', dir), {
      text: 'base+adapter',
      dir: join(dir, 'base'),
      adapterDir: join(dir, 'adapter'),
      key: `${join(dir, 'base')}+${join(dir, 'adapter')}`,
    });
    assert.equal(parseModelReference('lora+x', dir).adapterDir, null);
  });

  it('names the closest key for an unknown one, at any level', () => {
    rejects(
      { merge_method: 'ties', base_model: 'base', models: [{ model: 'ft' }], paramters: {} },
      /unknown key 'paramters' \(did you mean 'parameters'\?\)/,
    );
    rejects(
      { merge_method: 'ties', base_model: 'base', models: [{ model: 'ft', parameters: { densty: 0.5 } }] },
      /unknown key 'models\[0\]\.parameters\.densty' \(did you mean 'models\[0\]\.parameters\.density'\?\)/,
    );
    rejects(
      { merge_method: 'ties', base_model: 'base', slices: [], models: [{ model: 'ft' }] },
      /'slices' is not supported/,
    );
  });

  it('rejects an unknown method with a suggestion, and unsupported mergekit methods by name', () => {
    rejects(
      { merge_method: 'tie', base_model: 'base', models: [{ model: 'ft' }] },
      /unknown merge_method 'tie' \(did you mean 'ties'\?\)/,
    );
    rejects(
      { merge_method: 'passthrough', models: [{ model: 'ft' }] },
      /'passthrough' \(mergekit\) is not supported/,
    );
  });

  it('rejects a density outside (0, 1] wherever it is written, listing every offender', () => {
    rejects(
      {
        merge_method: 'dare_ties',
        base_model: 'base',
        models: [{ model: 'ft', parameters: { density: 0 } }],
        parameters: { density: [0.5, 1.5] },
      },
      /parameters\.density: 1\.5 is outside \(0, 1\].*models\[0\]\.parameters\.density: 0 is outside \(0, 1\]/,
    );
  });

  it('checks parameters against the method: unknown ones, global-only ones per model, required ones', () => {
    rejects(
      {
        merge_method: 'task_arithmetic',
        base_model: 'base',
        models: [{ model: 'ft', parameters: { density: 0.5 } }],
      },
      /task_arithmetic has no parameter 'density'/,
    );
    rejects(
      {
        merge_method: 'ties',
        base_model: 'base',
        models: [{ model: 'ft', parameters: { normalize: false } }],
      },
      /'normalize' is a global parameter of ties/,
    );
    rejects(
      { merge_method: 'slerp', base_model: 'base', models: [{ model: 'ft' }] },
      /slerp needs the global parameter 't'/,
    );
    rejects({ merge_method: 'ties', models: [{ model: 'ft' }] }, /ties needs 'base_model'/);
    rejects(
      {
        merge_method: 'dare_linear',
        base_model: 'base',
        models: [{ model: 'ft' }],
        parameters: { scope: 'row' },
      },
      /dare_linear has no parameter 'scope'/,
    );
    rejects(
      { merge_method: 'model_stock', base_model: 'base', models: [{ model: 'ft' }] },
      /model_stock needs at least two models/,
    );
    rejects({ merge_method: 'greedy_soup', models: [{ model: 'ft' }] }, /greedy_soup needs 'eval/);
    rejects({ merge_method: 'linear', models: [{ model: 'ft' }, { model: 'ft' }] }, /'ft' is listed twice/);
    rejects(
      {
        merge_method: 'ties',
        base_model: 'base',
        models: [{ model: 'ft', parameters: { density: [0.5, 1] } }],
        parameters: { scope: 'global' },
      },
      /scope: global needs a single number/,
    );
  });

  it('reports every problem of a YAML file in one error, each with its line', () => {
    const file = writeYaml(
      join(dir, 'many.yaml'),
      `merge_method: ties
base_model: base
models:
  - model: ft
    parameters: {weight: 1, density: 1.5, normalize: true}
  - model: base
    parameters: {densty: 0.5}
parameters:
  scope: diagonal
  t: 0.5
dtype: float8
`,
    );
    assert.throws(
      () => loadMergeConfig(file),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        const lines = e.message.split(/; (?=\S*many\.yaml)/);
        const expected = [
          /many\.yaml:9: field 'parameters\.scope': expected one of tensor \| row \| global, found 'diagonal'/,
          /many\.yaml:10: parameters\.t: ties has no parameter 't' \(its parameters: weight, density, /,
          /many\.yaml:5: models\[0\]\.parameters\.density: 1\.5 is outside \(0, 1\]/,
          /many\.yaml:5: models\[0\]\.parameters\.normalize: 'normalize' is a global parameter of ties/,
          /many\.yaml:7: unknown key 'models\[1\]\.parameters\.densty' \(did you mean 'models\[1\]\.parameters\.density'\?\)/,
          /many\.yaml:11: field 'dtype'/,
        ];
        assert.equal(lines.length, expected.length, e.message);
        for (const [i, pattern] of expected.entries()) assert.match(lines[i]!, pattern);
        return true;
      },
    );
  });

  it('applies --set overrides before validating; defaults fill the global parameters', () => {
    const file = writeYaml(
      join(dir, 'set.yaml'),
      'merge_method: dare_ties\nbase_model: base\nmodels:\n  - model: ft\n    parameters: {weight: 0.5}\n',
    );
    const c = loadMergeConfig(file, [
      'parameters.rescale=true',
      'models.0.parameters.density=0.25',
      'seed=3',
    ]);
    assert.equal(c.mergeMethod.name, 'dare_ties');
    assert.deepEqual(c.models[0]!.parameters, { weight: 0.5, density: 0.25 });
    assert.deepEqual(c.parameters, {
      weight: 1,
      density: 1,
      normalize: false,
      lambda: 1,
      int8_mask: false,
      rescale: 'l1',
      divisor: 'weights',
    });
    assert.equal(c.seed, 3);
    assert.throws(
      () => loadMergeConfig(file, ['models.0.parameters.density=2']),
      /set\.yaml:5: models\[0\]\.parameters\.density: 2 is outside \(0, 1\]/,
    );
    assert.throws(
      () => loadMergeConfig(file, ['parameters.lambda=big']),
      /set\.yaml: field 'parameters\.lambda': expected a number, a gradient \[a, b, \.\.\.\] or conditions .*, found "big"/,
    );
  });

  it('fails on a missing model folder before writing anything', () => {
    const c = config({ merge_method: 'linear', models: [{ model: 'nowhere' }] }, dir);
    const out = join(dir, 'out');
    assert.throws(() => runMerge(c, { out }), /no such folder/);
    assert.equal(existsSync(out), false);
  });
});
