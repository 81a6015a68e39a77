/** Regenerates the docs pages that are derived from code (docs/config.md). */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs } from '../src/train/config-docs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(join(root, 'docs', 'config.md'), renderConfigDocs());
console.log('wrote docs/config.md');
