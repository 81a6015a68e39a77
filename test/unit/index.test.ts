/**
 * The public API (src/index.ts) and the package's entry points: the main functions are there under
 * their short names; every value a layer's index exports is reachable from the root, as itself or
 * under the name src/index.ts gives it where two layers export the same name (`export *` would
 * otherwise drop such a name without a word); and package.json `exports` has an entry point for
 * every layer. Layers are found on disk, so a new src/<layer>/index.ts is checked too.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as api from '../../src/index.ts';
import * as merge from '../../src/merge/index.ts';
import * as uq from '../../src/uq/index.ts';
import * as world from '../../src/world/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'src');

/** Folders of src/ with an index.ts, except the CLI and the bench harness (not library API). */
const layers = readdirSync(src, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(src, e.name, 'index.ts')))
  .map((e) => e.name)
  .filter((name) => name !== 'cli' && name !== 'bench');

/** Exports that the root gives another name: layer -> (layer name -> root name). */
const renamed: Record<string, Record<string, string>> = {
  world: { readEvalRecords: 'readWorldEvalRecords' },
};

/** Names two layers export as the same value, where the root exports one of them. */
const sameValue = new Set(['IGNORE_INDEX']);

/** backend/'s index also serves the layers above it; the root exports only its user-facing part. */
const partial = new Set(['backend']);

test('the main entry points are exported under their short names', () => {
  for (const name of [
    'loadModel',
    'train',
    'evaluate',
    'auroc',
    'merge',
    'predict',
    'generate',
    'scoreIds',
  ]) {
    assert.equal(typeof (api as Record<string, unknown>)[name], 'function', `attune exports ${name}`);
  }
  assert.equal(api.evaluate, uq.summarizePredictions);
  assert.equal(api.merge, merge.runMerge);
  assert.equal(api.readEvalRecords, uq.readEvalRecords);
  assert.equal(api.readWorldEvalRecords, world.readEvalRecords);
});

test('every value a layer exports is reachable from the root', async () => {
  assert.ok(layers.includes('train') && layers.includes('tensor'), `layers found: ${layers.join(', ')}`);
  const rootExports = api as Record<string, unknown>;
  const missing: string[] = [];
  const modules = [['errors', join(src, 'errors.ts')], ...layers.map((l) => [l, join(src, l, 'index.ts')])];
  for (const [layer, file] of modules) {
    if (partial.has(layer!)) continue;
    const exports = (await import(file!)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(exports)) {
      const rootName = renamed[layer!]?.[name] ?? name;
      if (!(rootName in rootExports)) missing.push(`${layer}.${name}`);
      else if (sameValue.has(name)) assert.deepEqual(rootExports[rootName], value, `${layer}.${name}`);
      else assert.equal(rootExports[rootName], value, `attune.${rootName} is ${layer}.${name}`);
    }
  }
  assert.deepEqual(missing, [], 'add these layers to src/index.ts (or resolve the name collision there)');
});

test('package.json exports the root and every layer, each with types and import', () => {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    exports: Record<string, unknown>;
  };
  const expected: Record<string, string> = { '.': 'index', './errors': 'errors' };
  for (const layer of layers) expected[`./${layer}`] = `${layer}/index`;
  for (const [subpath, base] of Object.entries(expected)) {
    assert.deepEqual(
      manifest.exports[subpath],
      { types: `./dist/${base}.d.ts`, import: `./dist/${base}.js`, default: `./dist/${base}.js` },
      `package.json exports["${subpath}"]`,
    );
  }
});
