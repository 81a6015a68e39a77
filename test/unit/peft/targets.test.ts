import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { Linear } from '../../../src/nn/index.ts';
import {
  applyLora,
  fullMatchRegex,
  isAllLinear,
  linearModuleSuffixes,
  matchesTargetModules,
  outputLayerNames,
  selectTargetModules,
} from '../../../src/peft/index.ts';
import { tinyLlama } from './helpers.ts';

const Q0 = 'model.layers.0.self_attn.q_proj';

describe('target_modules matching (PEFT semantics)', () => {
  it('a list matches names equal to an entry or ending in "." + entry', () => {
    assert.ok(matchesTargetModules(Q0, ['q_proj']));
    assert.ok(matchesTargetModules('q_proj', ['q_proj']));
    assert.ok(matchesTargetModules(Q0, ['self_attn.q_proj']));
    assert.ok(matchesTargetModules(Q0, ['v_proj', 'q_proj']));
    assert.ok(
      !matchesTargetModules('model.layers.0.self_attn.xq_proj', ['q_proj']),
      'suffix must start at a dot',
    );
    assert.ok(!matchesTargetModules(Q0, ['proj']));
    assert.ok(!matchesTargetModules(Q0, []));
  });

  it('a string is a regex that must match the whole name (re.fullmatch)', () => {
    assert.ok(!matchesTargetModules(Q0, 'q_proj'), "'q_proj' as a string is a full-match regex");
    assert.ok(matchesTargetModules(Q0, '.*q_proj'));
    assert.ok(matchesTargetModules(Q0, '.*layers\\.0\\..*(q|v)_proj'));
    assert.ok(!matchesTargetModules('model.layers.1.self_attn.q_proj', '.*layers\\.0\\..*(q|v)_proj'));
    // cases from PEFT's own test table
    assert.ok(matchesTargetModules('foo', 'foo'));
    assert.ok(matchesTargetModules('foo', '.*oo'));
    assert.ok(matchesTargetModules('foo', 'fo.*'));
    assert.ok(!matchesTargetModules('foo', '.*bar.*'));
    assert.ok(matchesTargetModules('foobar', '.*oba.*'));
    assert.ok(matchesTargetModules('foo.bar', 'foo\\.(?P<x>bar)'), 'Python named groups are accepted');
    assert.throws(() => fullMatchRegex('(unclosed'), ConfigError);
  });

  it("'all-linear' is every Linear but the LM head, saved expanded like PEFT", () => {
    assert.ok(isAllLinear('all-linear') && isAllLinear('ALL-LINEAR') && !isAllLinear(['all-linear']));
    const untied = tinyLlama({ tied: false });
    assert.deepEqual([...outputLayerNames(untied)], ['lm_head']);
    const { modules, saved } = selectTargetModules(untied, 'all-linear');
    assert.equal(modules.length, 2 * 7);
    assert.ok(modules.every(([n, m]) => n !== 'lm_head' && m instanceof Linear));
    assert.deepEqual(saved, ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    assert.deepEqual(linearModuleSuffixes(untied), saved);
    // re-matching the saved list selects the same modules
    const again = selectTargetModules(untied, saved as string[]);
    assert.deepEqual(
      again.modules.map(([n]) => n),
      modules.map(([n]) => n),
    );
    const tied = tinyLlama({ tied: true });
    assert.equal(outputLayerNames(tied).size, 0);
    assert.equal(selectTargetModules(tied, 'all-linear').modules.length, 14);
  });

  it('exclude_modules removes matches (list or regex)', () => {
    const model = tinyLlama();
    const names = (exclude: string[] | string) =>
      selectTargetModules(model, ['q_proj', 'v_proj'], { exclude }).modules.map(([n]) => n);
    assert.deepEqual(names(['v_proj']), [Q0, 'model.layers.1.self_attn.q_proj']);
    assert.deepEqual(names('.*layers\\.1\\..*'), [Q0, 'model.layers.0.self_attn.v_proj']);
  });

  it('targets matching nothing are an error listing module names that exist', () => {
    const model = tinyLlama();
    assert.throws(
      () => selectTargetModules(model, ['query', 'value'], { method: 'lora' }),
      (e: Error) =>
        e instanceof ConfigError &&
        /matched no module/.test(e.message) &&
        e.message.includes(Q0) &&
        /q_proj, up_proj, v_proj/.test(e.message),
    );
    assert.throws(() => selectTargetModules(model, 'q_proj'), /matched no module/);
    assert.throws(() => selectTargetModules(model, []), /empty list/);
  });

  it('a match that is not a Linear is an error; the model is unchanged', () => {
    const model = tinyLlama({ tied: false });
    assert.throws(() => selectTargetModules(model, ['mlp']), /'model\.layers\.0\.mlp', a LlamaMLP/);
    assert.throws(() => applyLora(model, { targetModules: ['q_proj', 'mlp'] }), /a LlamaMLP/);
    assert.ok(model.modules().every((m) => m.constructor.name !== 'LoraLinear'));
    assert.equal(model.numParameters({ trainableOnly: true }), model.numParameters());
  });

  it('an adapted model cannot be adapted again', () => {
    const model = tinyLlama();
    applyLora(model, { r: 2 });
    assert.throws(() => applyLora(model, { r: 2 }), /already adapted/);
    // all-linear skips the adapted layers' internals and finds the other Linear layers
    assert.equal(selectTargetModules(model, 'all-linear').modules.length, 2 * 5);
  });
});
