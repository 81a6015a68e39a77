/**
 * Bench experiment `clear` (CLEAR, "Automated Data Curation for Robust Language Model Fine-Tuning"):
 * LoRA + CE on the taught facts with 30% of the answers corrupted, vs the same data curated by
 * CLEAR, vs the clean data. As in the paper's loop the curation model is the base fine-tuned on the
 * corrupted data; it scores every record with BSDetector (k 5, alpha 0.8, beta 0.7, the paper's
 * self-reflection), removes records below the median confidence and corrects those whose own
 * answer is confident above 0.8. The data is every training wording of each fact (3 records per
 * fact), so a corrupted record usually disagrees with the other wordings of its fact: with one
 * record per fact nothing in the data could tell a corrupted answer from a true one. The three rows
 * train on the same records with the bench's recipe; curation is scored against the ground truth.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../io/json.ts';
import { loadModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import { type CurationReport, curateFile } from '../../uq/index.ts';
import {
  readWorldDir,
  renderCorruptedFinetuneSet,
  scoreCuration,
  writeCorruptedSet,
} from '../../world/index.ts';
import { registerExperiment } from '../experiment.ts';

/** The fraction of corrupted answers (the 30%). */
const CORRUPT_FRACTION = 0.3;

const PAPER = 'Automated Data Curation for Robust Language Model Fine-Tuning (CLEAR)';
const CORRUPT = { method: 'lora-corrupt30', loss: 'ce' };
const CURATED = { method: 'lora-clear', loss: 'ce' };
const CLEAN = { method: 'lora-clean3w', loss: 'ce' };

registerExperiment({
  byDefault: false,
  heavy:
    'BSDetector curation samples k answers and asks two reflection questions per record (about 10 min a seed for 924 records on 2 cores)',
  name: 'clear',
  description:
    'CE on 30% corrupted taught facts vs CLEAR-curated (scored by the model tuned on them) vs clean',
  run(ctx) {
    const world = readWorldDir(ctx.worldDir);
    const rows: ReturnType<typeof ctx.evaluate>[][] = [[], [], []];
    for (const seed of ctx.seeds) {
      const dir = join(ctx.work, `seed${seed}`);
      mkdirSync(dir, { recursive: true });
      const noisyFile = join(dir, 'noisy.jsonl');
      const cleanFile = join(dir, 'clean.jsonl');
      const noisy = renderCorruptedFinetuneSet(
        world,
        { seed, corruptFraction: CORRUPT_FRACTION },
        'training',
      );
      if (!existsSync(noisyFile)) writeCorruptedSet(noisy, noisyFile);
      if (!existsSync(cleanFile))
        writeCorruptedSet(
          renderCorruptedFinetuneSet(world, { seed, corruptFraction: 0 }, 'training'),
          cleanFile,
        );

      const clean = ctx.train('clean-3-wordings', seed, { data: { train: cleanFile } });
      rows[2]!.push(ctx.evaluate(CLEAN, seed, clean, clean.cost));
      const corrupt = ctx.train('corrupt30', seed, { data: { train: noisyFile } });
      rows[0]!.push(
        ctx.evaluate(CORRUPT, seed, corrupt, corrupt.cost, () => ({ residual_noise: CORRUPT_FRACTION })),
      );

      // curate with the model fine-tuned on the corrupted data (cached in report.json)
      const curatedFile = join(dir, 'curated.jsonl');
      const reportFile = join(dir, 'report.json');
      let report: CurationReport;
      let curationS: number;
      if (existsSync(reportFile) && existsSync(curatedFile)) {
        const cached = JSON.parse(readFileSync(reportFile, 'utf8')) as CurationReport & { seconds: number };
        report = cached;
        curationS = cached.seconds;
      } else {
        const loaded = loadModel(corrupt.modelDir);
        if (corrupt.adapterDir) loadAdapter(loaded.model, corrupt.adapterDir);
        loaded.model.eval();
        ctx.phase(`clear: curate (seed ${seed})`, noisy.lines.length);
        const started = performance.now();
        report = curateFile(loaded.model, loaded.tokenizer!, {
          data: noisyFile,
          out: curatedFile,
          seed,
          eosTokenIds: loaded.eosTokenIds,
          onProgress: (done) => ctx.progress(done),
        });
        curationS = (performance.now() - started) / 1000;
        writeJsonAtomic(reportFile, { ...report, seconds: curationS });
      }
      const score = scoreCuration(noisy.truth, report.records);
      ctx.note(
        `clear seed ${seed}: removed ${report.summary.removed}, corrected ${report.summary.corrected}; caught ${score.caught}/${score.corrupted} corrupted, touched ${score.cleanTouched}/${score.clean} clean`,
      );
      const curated = ctx.train('clear-curated', seed, { data: { train: curatedFile } });
      rows[1]!.push(
        ctx.evaluate(CURATED, seed, curated, curated.cost, () => ({
          curation_precision: score.precision,
          curation_recall: score.recall,
          detection_auroc: score.detectionAuroc,
          residual_noise: score.residualNoise,
          removed: report.summary.removed,
          corrected: report.summary.corrected,
          corrections_right: score.correctionsRight,
          curation_s: curationS,
        })),
      );
    }
    return rows;
  },
  headlines: [
    {
      paper: PAPER,
      claim: 'corrupted answers hurt: CE on clean data beats CE on 30% corrupted data (taught accuracy)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: CORRUPT,
      treatment: CLEAN,
    },
    {
      paper: PAPER,
      claim: 'CLEAR-curated data beats the corrupted data (taught accuracy)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: CORRUPT,
      treatment: CURATED,
    },
    {
      paper: PAPER,
      claim: 'curation recovers most of the gap: CLEAR within 0.05 of clean data (taught accuracy)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'not-worse',
      tolerance: 0.05,
      baseline: CLEAN,
      treatment: CURATED,
    },
    {
      paper: PAPER,
      claim: 'curation leaves less noise than the corrupted data had',
      metric: 'extra.residual_noise',
      sign: -1,
      kind: 'better',
      baseline: CORRUPT,
      treatment: CURATED,
    },
  ],
});
