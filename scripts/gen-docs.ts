/** Regenerates the docs pages that are derived from code (docs/config.md, docs/cli-reference.md, merge.md's methods). */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCliReference } from '../src/cli/reference-docs.ts';
import { updateMergeDocs } from '../src/merge/method-docs.ts';
import { renderConfigDocs } from '../src/train/config-docs.ts';
import { updateUqDocs } from '../src/uq/registry-docs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(join(root, 'docs', 'config.md'), renderConfigDocs());
writeFileSync(join(root, 'docs', 'cli-reference.md'), renderCliReference());
const mergeDocs = join(root, 'docs', 'merge.md');
writeFileSync(mergeDocs, updateMergeDocs(readFileSync(mergeDocs, 'utf8')));
const uqDocs = join(root, 'docs', 'uq.md');
writeFileSync(uqDocs, updateUqDocs(readFileSync(uqDocs, 'utf8')));
console.log(
  'wrote docs/config.md, docs/cli-reference.md and the generated parts of docs/merge.md and docs/uq.md',
);
