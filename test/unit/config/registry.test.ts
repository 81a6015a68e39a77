import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { Registry, type RegistryEntry } from '../../../src/config/registry.ts';
import { ConfigError } from '../../../src/errors.ts';

function registry(): Registry<RegistryEntry> {
  const r = new Registry<RegistryEntry>('widget', 'widget');
  r.register({
    name: 'gear',
    description: 'a gear',
    options: z.object({
      teeth: z.number().int().positive().default(12).describe('teeth'),
      material: z.enum(['steel', 'brass']).default('steel').describe('material'),
    }),
  });
  r.register({ name: 'spring', description: 'a spring', options: z.object({}) });
  return r;
}

describe('config registries', () => {
  it('a name or {name, ...options} validates into {name, options with defaults}', () => {
    const r = registry();
    assert.deepEqual(r.parse('gear'), { name: 'gear', teeth: 12, material: 'steel' });
    assert.deepEqual(r.parse({ name: 'gear', teeth: 7 }), { name: 'gear', teeth: 7, material: 'steel' });
    const schema = z.object({ widget: r.schema('spring') });
    assert.deepEqual(schema.parse({}), { widget: { name: 'spring' } });
  });

  it('an unknown name lists the known ones and suggests the closest', () => {
    const r = registry();
    assert.throws(
      () => r.parse('gaer'),
      /unknown widget 'gaer' \(known: gear, spring; did you mean 'gear'\?\)/,
    );
    assert.throws(
      () => r.get('zzz'),
      (e: Error) => e instanceof ConfigError && /known: gear, spring\)/.test(e.message),
    );
  });

  it('reports every bad option at its own path, unknown options with a suggestion', () => {
    const r = registry();
    const schema = z.object({ widget: r.schema() });
    const result = schema.safeParse({ widget: { name: 'gear', teeth: 0, materal: 'brass' } });
    assert.equal(result.success, false);
    const issues = result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(issues[0]!, /^widget\.teeth: widget 'gear': Too small/);
    assert.match(issues[1]!, /widget 'gear': unknown option 'materal' \(did you mean 'material'\?\)/);
  });

  it('refuses duplicate names, a reserved `name` option and non-object schemas', () => {
    const r = registry();
    assert.throws(
      () => r.register({ name: 'gear', description: '', options: z.object({}) }),
      /already registered/,
    );
    assert.throws(
      () => r.register({ name: 'x', description: '', options: z.object({ name: z.string() }) }),
      /'name' is reserved/,
    );
    r.unregister('gear');
    assert.deepEqual(r.names(), ['spring']);
  });
});
