/**
 * The public API (src/index.ts): the main entry points are there under their short names, and
 * every value a layer's index exports is reachable from the root, either as itself or under the
 * name src/index.ts gives it where two layers export the same name (`export *` would otherwise
 * drop such a name without a word).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as analysis from '../../src/analysis/index.ts';
import * as data from '../../src/data/index.ts';
import * as errors from '../../src/errors.ts';
import * as api from '../../src/index.ts';
import * as io from '../../src/io/index.ts';
import * as merge from '../../src/merge/index.ts';
import * as models from '../../src/models/index.ts';
import * as nn from '../../src/nn/index.ts';
import * as peft from '../../src/peft/index.ts';
import * as tensor from '../../src/tensor/index.ts';
import * as train from '../../src/train/index.ts';
import * as uq from '../../src/uq/index.ts';
import * as world from '../../src/world/index.ts';

const layers: Record<string, Record<string, unknown>> = {
  analysis,
  data,
  errors,
  io,
  merge,
  models,
  nn,
  peft,
  tensor,
  train,
  uq,
  world,
};

/** Exports that the root gives another name: layer -> (layer name -> root name). */
const renamed: Record<string, Record<string, string>> = {
  world: { readEvalRecords: 'readWorldEvalRecords' },
};

/** Names two layers export as the same value, where the root exports one of them. */
const sameValue = new Set(['IGNORE_INDEX']);

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

test('every value a layer exports is reachable from the root', () => {
  const root = api as Record<string, unknown>;
  const missing: string[] = [];
  for (const [layer, exports] of Object.entries(layers)) {
    for (const [name, value] of Object.entries(exports)) {
      const rootName = renamed[layer]?.[name] ?? name;
      if (!(rootName in root)) missing.push(`${layer}.${name}`);
      else if (sameValue.has(name)) assert.deepEqual(root[rootName], value, `${layer}.${name}`);
      else assert.equal(root[rootName], value, `attune.${rootName} is ${layer}.${name}`);
    }
  }
  assert.deepEqual(missing, []);
});
