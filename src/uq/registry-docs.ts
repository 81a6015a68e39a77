/**
 * docs/uq.md's generated section: every registered score (single-pass and sampling), metric, grader and calibrator
 * with its description (`npm run docs` rewrites the part between the markers).
 */
import { calibrators } from './calibrate/registry.ts';
import './calibrate/serialize.ts';
import { graders } from './grade.ts';
import './metrics/report.ts';
import { uqMetrics } from './metrics/registry.ts';
import { uqScores } from './scores/index.ts';

const BEGIN = '<!-- uq registries: generated from src/uq/ by `npm run docs` -->';
const END = '<!-- end of generated uq registries -->';

/** The generated Markdown (tables of each registry). */
export function renderUqRegistries(): string {
  const table = (head: string, rows: string[][]) =>
    `| ${head} |\n|${head
      .split('|')
      .map(() => '---')
      .join('|')}|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`;
  return [
    BEGIN,
    '',
    '**Scores** (uncertainty, higher = less sure; `samples`: needs `eval --samples N`; `extra`: one more pass per question, `eval --extra NAME`):',
    '',
    table(
      'score | needs | definition',
      uqScores.list().map((s) => [`\`${s.name}\``, s.needs ?? 'tokens', s.description]),
    ),
    '**Metrics** (positive = wrong answer for ranking metrics):',
    '',
    table(
      'metric | needs | better | definition',
      uqMetrics.list().map((m) => [`\`${m.name}\``, m.needs, m.better, m.description]),
    ),
    '**Graders** (`attune eval --metric`):',
    '',
    table(
      'grader | rule',
      graders.list().map((g) => [`\`${g.name}\``, g.description]),
    ),
    '**Calibrators** (files `{type, version, params}`):',
    '',
    table(
      'type | calibrates | what',
      calibrators.list().map((c) => [`\`${c.name}\``, c.input, c.description]),
    ),
    END,
  ].join('\n');
}

/** `text` (docs/uq.md) with its generated section replaced (appended when the markers are missing). */
export function updateUqDocs(text: string): string {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < 0)
    return `${text.trimEnd()}\n\n## Registered scores, metrics, graders and calibrators\n\n${renderUqRegistries()}\n`;
  return text.slice(0, start) + renderUqRegistries() + text.slice(end + END.length);
}
