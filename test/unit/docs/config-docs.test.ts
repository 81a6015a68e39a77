import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { renderConfigDocs } from '../../../src/train/config-docs.ts';
// every registration, as `npm run docs` sees them (uq/ registers the uq_head tuner)
import '../../../src/index.ts';

it('docs/config.md is generated from the current config schema (run `npm run docs` after changing it)', () => {
  const onDisk = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'config.md'), 'utf8');
  assert.equal(onDisk, renderConfigDocs());
});

it('docs/cli-reference.md is generated from the commands (run `npm run docs` after changing one)', async () => {
  const { renderCliReference } = await import('../../../src/cli/reference-docs.ts');
  const onDisk = readFileSync(
    join(import.meta.dirname, '..', '..', '..', 'docs', 'cli-reference.md'),
    'utf8',
  );
  assert.equal(onDisk, renderCliReference());
});

it("docs/merge.md's methods table is generated from the merge-method registry (run `npm run docs`)", async () => {
  const { updateMergeDocs } = await import('../../../src/merge/method-docs.ts');
  const onDisk = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'merge.md'), 'utf8');
  assert.equal(onDisk, updateMergeDocs(onDisk));
});

it("docs/uq.md's registry tables are generated from the uq registries (run `npm run docs`)", async () => {
  const { updateUqDocs } = await import('../../../src/uq/registry-docs.ts');
  const onDisk = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'uq.md'), 'utf8');
  assert.ok(onDisk.includes('<!-- uq registries'), 'docs/uq.md has the generated section');
  assert.equal(onDisk, updateUqDocs(onDisk));
});
