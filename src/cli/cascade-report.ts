/**
 * The `attune cascade --report` file: quality against deferral rate for every rule, with the
 * random (straight line) and oracle curves dashed, as a standalone SVG or an HTML page (the chart
 * and a table of AUC-DF). Rendered here with world/svg-chart.ts: uq/ may not import world/.
 */
import { extname } from 'node:path';
import { UsageError } from '../errors.ts';
import { writeTextAtomic } from '../io/index.ts';
import type { CascadeQuality, CascadeReport } from '../uq/index.ts';
import { lineChart, type Series } from '../world/svg-chart.ts';

/** The report formats, by file extension. */
export type CascadeReportFormat = 'html' | 'svg';

/** The format of a `--report` path (.html, .htm or .svg); anything else is a UsageError. */
export function cascadeReportFormat(path: string): CascadeReportFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.svg') return 'svg';
  if (ext === '.html' || ext === '.htm') return 'html';
  throw new UsageError(`cascade --report: expected a .html or .svg file, got ${JSON.stringify(path)}`);
}

function points(curve: { rates: readonly number[]; quality: readonly number[] }): [number, number][] {
  return curve.rates.map((r, i) => [r, curve.quality[i]!]);
}

/** The deferral-curve chart of a report: one series per rule, then random and oracle (dashed). */
export function cascadeChartSvg(report: CascadeReport, quality: CascadeQuality): string {
  const series: Series[] = Object.entries(report.methods).map(([name, m]) => ({
    name: `${name} (${m.auc_df.toFixed(3)})`,
    points: points(m.curve),
  }));
  series.push({
    name: `random (${report.random_auc_df.toFixed(3)})`,
    points: points(report.random_curve),
    dashed: true,
  });
  series.push({
    name: `oracle (${report.oracle_auc_df.toFixed(3)})`,
    points: points(report.oracle_curve),
    dashed: true,
  });
  return lineChart({
    title: `Deferral curves (${report.n} test records; legend: AUC-DF)`,
    xLabel: 'deferral rate (fraction sent to the large model)',
    yLabel: quality === 'rougeL' ? 'mean ROUGE-L F' : 'accuracy (exact match)',
    series,
    xDomain: [0, 1],
    width: 720,
    height: Math.max(360, 90 + series.length * 14),
  });
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A standalone HTML page: the chart and a table of every rule's AUC-DF. */
export function cascadeReportHtml(report: CascadeReport, quality: CascadeQuality): string {
  const rows = [
    ...Object.entries(report.methods).map(([name, m]) => [name, m.auc_df] as const),
    ['random', report.random_auc_df] as const,
    ['oracle', report.oracle_auc_df] as const,
  ]
    .map(([name, auc]) => `<tr><td>${escapeHtml(name)}</td><td>${auc.toFixed(4)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>attune cascade</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}</style>
</head><body>
<h1>Cascade deferral curves</h1>
<p>${report.n} test records; quality: ${quality}; small ${report.small_accuracy.toFixed(4)}, large ${report.large_accuracy.toFixed(4)}; post-hoc target: ${report.post_hoc_target}.</p>
${cascadeChartSvg(report, quality)}
<table><thead><tr><th>rule</th><th>AUC-DF</th></tr></thead><tbody>
${rows}
</tbody></table>
</body></html>
`;
}

/** Write the report to `path` atomically, as its extension says. */
export function writeCascadeReport(path: string, report: CascadeReport, quality: CascadeQuality): void {
  const format = cascadeReportFormat(path);
  writeTextAtomic(
    path,
    format === 'svg' ? `${cascadeChartSvg(report, quality)}\n` : cascadeReportHtml(report, quality),
  );
}
