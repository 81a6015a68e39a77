/**
 * The demo's report.html: one self-contained page (inline CSS and SVG, no scripts, no CDN) with
 * the metrics table, loss curves, reliability diagrams and risk-coverage curves.
 */
import type { ModelEvaluation } from './evaluate.ts';
import { lineChart, type ReliabilityBin, reliabilityDiagram } from './svg-chart.ts';

export interface ReportData {
  title: string;
  generated: string;
  backend: string;
  evaluations: Record<string, ModelEvaluation>;
  lossCurves: Record<string, [number, number][]>;
  reliability: Record<string, readonly ReliabilityBin[]>;
  riskCoverage: Record<string, [number, number][]>;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function cell(v: number | null | undefined): string {
  return v === null || v === undefined ? '<td class="na">n/a</td>' : `<td>${v.toFixed(3)}</td>`;
}

function metricsTable(evaluations: Record<string, ModelEvaluation>): string {
  const models = Object.keys(evaluations);
  const rows: [string, (e: ModelEvaluation) => number | null][] = [
    ['accuracy: taught facts', (e) => e.accuracy.taught],
    ['accuracy: known facts (retention)', (e) => e.accuracy.known],
    ['accuracy: unknown people (any answer is wrong)', (e) => e.accuracy.unknown],
    ['accuracy: mixed set', (e) => e.accuracy.mixed],
    ['ECE of exp(mean log-prob), mixed set (lower is better)', (e) => e.ece],
    ['Brier, mixed set (lower is better)', (e) => e.brier],
  ];
  const scoreNames = Object.keys(evaluations[models[0]!]?.auroc ?? {});
  for (const s of scoreNames) rows.push([`AUROC wrong-answer detection: ${s}`, (e) => e.auroc[s] ?? null]);
  for (const s of scoreNames)
    rows.push([`AUROC out-of-domain detection: ${s}`, (e) => e.ood_auroc[s] ?? null]);
  const head = `<tr><th>metric</th>${models.map((m) => `<th>${escapeHtml(m)}</th>`).join('')}</tr>`;
  const body = rows
    .map(
      ([label, f]) =>
        `<tr><td>${escapeHtml(label)}</td>${models.map((m) => cell(f(evaluations[m]!))).join('')}</tr>`,
    )
    .join('');
  return `<table id="metrics">${head}${body}</table>`;
}

function figure(kind: string, title: string, svg: string): string {
  return `<figure class="chart" data-chart="${kind}"><figcaption>${escapeHtml(title)}</figcaption>${svg}</figure>`;
}

/** The report page. */
export function renderReport(d: ReportData): string {
  const loss = figure(
    'loss',
    'Training loss',
    lineChart({
      title: 'training loss per step',
      xLabel: 'step',
      yLabel: 'loss',
      series: Object.entries(d.lossCurves).map(([name, points]) => ({ name, points })),
    }),
  );
  const reliability = Object.entries(d.reliability)
    .map(([name, bins]) => figure('reliability', `Reliability: ${name}`, reliabilityDiagram(name, bins)))
    .join('');
  const risk = figure(
    'risk-coverage',
    'Risk-coverage (score: log-perplexity)',
    lineChart({
      title: 'selective risk vs coverage',
      xLabel: 'coverage',
      yLabel: 'error rate of kept answers',
      xDomain: [0, 1],
      yDomain: [0, 1],
      series: Object.entries(d.riskCoverage).map(([name, points]) => ({ name, points })),
    }),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(d.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}td.na{color:#999}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:6px}
figcaption{font-size:12px;color:#555;margin-bottom:4px}
</style></head><body>
<h1>${escapeHtml(d.title)}</h1>
<p>Generated ${escapeHtml(d.generated)} on the ${escapeHtml(d.backend)} backend. A tiny Llama pretrained on a synthetic
world is fine-tuned with LoRA on facts about new people, once with cross-entropy (<code>ce</code>) and once with the
uncertainty-aware loss (<code>ua-clm</code>). Questions about people the model never saw have no right answer: a good
model is unsure there. Scores are uncertainties (higher = less sure); AUROCs detect wrong answers (positive = wrong)
or out-of-domain questions (positive = out-of-domain).</p>
<h2>Metrics</h2>
${metricsTable(d.evaluations)}
<h2>Charts</h2>
<div class="charts">${loss}${risk}${reliability}</div>
</body></html>
`;
}
