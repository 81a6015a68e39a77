/**
 * Dev-machine script: writes random Llama (llama3 rope scaling, untied head) and Qwen2 (q/k/v bias,
 * untied head) checkpoints with Attune, runs the independent PyTorch reference
 * (hf_llama_reference.py, needs Debian's python3-torch) on them and stores ids + reference logits
 * in test/fixtures/random-llama-reference.json for the CI test.
 *   node --import tsx scripts/reference/make-random-llama-fixture.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createModel, saveModel } from '../../src/models/index.ts';
import { RANDOM_REFERENCE_CASES, randomizeBiasesAndNorms } from '../../test/fixtures/random-llama-cases.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out: Record<string, unknown> = {};
for (const c of RANDOM_REFERENCE_CASES) {
  const dir = mkdtempSync(join(tmpdir(), `attune-ref-${c.name}-`));
  saveModel(randomizeBiasesAndNorms(createModel(c.config, { seed: c.seed }), c.seed + 1000), dir);
  const stdout = execFileSync(
    '/usr/bin/python3',
    [join(root, 'scripts/reference/hf_llama_reference.py'), dir, JSON.stringify(c.ids)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    },
  );
  const { logits } = JSON.parse(stdout) as { logits: number[][] };
  out[c.name] = { ids: c.ids, logits: logits.map((row) => row.map((v) => Number(v.toPrecision(9)))) };
  console.log(`${c.name}: ${logits.length} x ${logits[0]!.length} reference logits`);
}
writeFileSync(join(root, 'test/fixtures/random-llama-reference.json'), `${JSON.stringify(out)}\n`);
