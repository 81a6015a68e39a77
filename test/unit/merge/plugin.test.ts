/** A merge method registered from outside src/ runs from a YAML config like a built-in one. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { parseOptions } from '../../../src/cli/args.ts';
import { mergeCommand } from '../../../src/cli/commands/merge.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { ConfigError } from '../../../src/errors.ts';
import {
  loadMergeConfig,
  mergeMethods,
  numericSetting,
  registerMergeMethod,
  runMerge,
} from '../../../src/merge/index.ts';
import { cleanup, tempDir, tensorsOf, tinyModel, variant, writeYaml } from './helpers.ts';

/** `toy_max`: out = max_i(scale_i * θ_i) + offset, element by element. */
function registerToy(): void {
  registerMergeMethod({
    name: 'toy_max',
    description: 'element-wise maximum of the scaled models, plus an offset',
    options: z.object({
      scale: numericSetting().default(1).describe('factor of a model'),
      offset: z.number().default(0).describe('added to every entry'),
    }),
    modelParameters: ['scale'],
    usesBase: false,
    mergeTensor(ctx) {
      const scale = ctx.params.models.scale!;
      const offset = ctx.params.global.offset as number;
      const thetas = ctx.entries.map((_, i) => ctx.model(i));
      const out = thetas[0]!;
      for (let j = 0; j < out.length; j++) {
        let best = Number.NEGATIVE_INFINITY;
        thetas.forEach((theta, i) => {
          best = Math.max(best, scale[i]! * theta[j]!);
        });
        out[j] = best + offset;
      }
      return out;
    },
  });
}

let dir: string;
before(() => {
  registerToy();
  dir = tempDir();
  tinyModel(join(dir, 'a'), { seed: 1 });
  variant(join(dir, 'a'), join(dir, 'b'), 5);
});
after(() => {
  mergeMethods.unregister('toy_max');
  cleanup();
});

const YAML = `merge_method: toy_max
models:
  - model: a
    parameters: {scale: 2}
  - model: b
parameters:
  offset: 0.25
`;

describe('a plug-in merge method', () => {
  it('runs from YAML through attune merge, with its per-model and global parameters and --set', async () => {
    const yaml = writeYaml(join(dir, 'toy.yaml'), YAML);
    const out = join(dir, 'out');
    const { io, stdout, stderr } = captureIO();
    const argv = [yaml, '--out', out, '--set', 'parameters.offset=0.5', '--json'];
    const code = await mergeCommand.run(parseOptions(argv, mergeCommand.options, 'attune merge', true), io);
    assert.equal(code, 0, stderr());
    assert.equal(JSON.parse(stdout().trim().split('\n').at(-1)!).method, 'toy_max');
    const a = tensorsOf(join(dir, 'a'));
    const b = tensorsOf(join(dir, 'b'));
    const merged = tensorsOf(out);
    assert.deepEqual([...merged.keys()].sort(), [...a.keys()].sort());
    for (const [name, values] of merged) {
      const x = a.get(name)!;
      const y = b.get(name)!;
      for (let j = 0; j < values.length; j++) {
        const expected = Math.fround(Math.max(2 * x[j]!, y[j]!) + 0.5);
        assert.equal(values[j], expected, `${name}[${j}]`);
      }
    }
  });

  it('validates its options like a built-in: every problem with its line, unknown keys with a suggestion', () => {
    const yaml = writeYaml(
      join(dir, 'bad.yaml'),
      YAML.replace('{scale: 2}', '{scale: 2, offset: 1}').replace('offset: 0.25', 'ofset: 0.25'),
    );
    assert.throws(
      () => loadMergeConfig(yaml),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(
          e.message,
          /bad\.yaml:4: models\[0\]\.parameters\.offset: 'offset' is a global parameter of toy_max/,
        );
        assert.match(
          e.message,
          /bad\.yaml:7: unknown key 'parameters\.ofset' \(did you mean 'parameters\.offset'\?\)/,
        );
        return true;
      },
    );
  });

  it('is listed by the registry and runs through loadMergeConfig + runMerge', () => {
    assert.ok(mergeMethods.names().includes('toy_max'));
    const config = loadMergeConfig(writeYaml(join(dir, 'again.yaml'), YAML));
    assert.equal(config.parameters.offset, 0.25);
    assert.equal(existsSync(join(dir, 'again-out')), false);
    runMerge(config, { out: join(dir, 'again-out') });
    assert.ok(existsSync(join(dir, 'again-out', 'model.safetensors')));
  });
});
