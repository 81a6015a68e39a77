/**
 * report.html of `attune bench methods`: self-contained (no scripts, no CDN). A scatter of taught
 * accuracy against retention (one point per (method, loss), error bars = std over seeds), bars of
 * wrong-answer AUROC, out-of-domain AUROC and ECE per (method, loss), the result table and the
 * headline table. Each mark is an SVG element with a class (`point`, `bar`) so a browser test can
 * check that every row drew.
 */
import { lineChart } from '../world/svg-chart.ts';
import type { Headline, MethodRow, MethodsBenchResult, Spread } from './methods.ts';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(s: Spread): string {
  return s.mean === null ? '-' : `${s.mean.toFixed(3)} ± ${(s.std ?? 0).toFixed(3)}`;
}

const label = (r: MethodRow) => `${r.method} + ${r.loss}`;

/** Taught accuracy (x) against retention (y), both in [0, 1] (retention clipped at 1.2). */
function scatter(rows: readonly MethodRow[]): string {
  const w = 460;
  const h = 320;
  const m = { l: 56, r: 16, t: 30, b: 44 };
  const x = (v: number) => m.l + (Math.min(Math.max(v, 0), 1) / 1) * (w - m.l - m.r);
  const y = (v: number) => h - m.b - (Math.min(Math.max(v, 0), 1.2) / 1.2) * (h - m.t - m.b);
  const marks = rows
    .map((r, i) => {
      const c = PALETTE[i % PALETTE.length];
      const tx = r.taught_accuracy.mean;
      const ty = r.retention.mean;
      if (tx === null) return '';
      const yy = ty ?? 0;
      const ex = r.taught_accuracy.std ?? 0;
      const ey = r.retention.std ?? 0;
      return `<g><line class="errorbar" x1="${x(tx - ex)}" x2="${x(tx + ex)}" y1="${y(yy)}" y2="${y(yy)}" stroke="${c}"/>
<line class="errorbar" x1="${x(tx)}" x2="${x(tx)}" y1="${y(yy - ey)}" y2="${y(yy + ey)}" stroke="${c}"/>
<circle class="point" cx="${x(tx)}" cy="${y(yy)}" r="5" fill="${c}"${ty === null ? ' fill-opacity="0.3"' : ''}><title>${esc(label(r))}: taught ${fmt(r.taught_accuracy)}, retention ${fmt(r.retention)}</title></circle>
<text x="${x(tx) + 7}" y="${y(yy) - 7}" font-size="11">${esc(label(r))}</text></g>`;
    })
    .join('\n');
  const axes = `<line x1="${m.l}" y1="${h - m.b}" x2="${w - m.r}" y2="${h - m.b}" stroke="#333"/>
<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${h - m.b}" stroke="#333"/>
${[0, 0.25, 0.5, 0.75, 1].map((v) => `<text x="${x(v)}" y="${h - m.b + 16}" font-size="10" text-anchor="middle">${v}</text>`).join('')}
${[0, 0.4, 0.8, 1.2].map((v) => `<text x="${m.l - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v}</text>`).join('')}
<text x="${(w + m.l) / 2}" y="${h - 8}" font-size="12" text-anchor="middle">taught accuracy</text>
<text x="14" y="${(h - m.b + m.t) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${(h - m.b + m.t) / 2})">retention (known after / before)</text>`;
  return `<svg class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><text x="${w / 2}" y="18" font-size="13" text-anchor="middle">Learning vs forgetting</text>${axes}${marks}</svg>`;
}

/** One bar per row for `pick` (values in [0, 1]), with a std whisker. */
function bars(title: string, all: readonly MethodRow[], pick: (r: MethodRow) => Spread): string {
  // rows that do not measure this (an experiment's own rows) are left out, not drawn as n/a
  const rows = all.filter((r) => pick(r).n > 0);
  const w = 460;
  const barH = 22;
  const h = 40 + rows.length * (barH + 8);
  const left = 150;
  const scale = (v: number) => Math.min(Math.max(v, 0), 1) * (w - left - 30);
  const marks = rows
    .map((r, i) => {
      const s = pick(r);
      const top = 30 + i * (barH + 8);
      const c = PALETTE[i % PALETTE.length];
      const v = s.mean ?? 0;
      const whisker =
        s.std && s.mean !== null
          ? `<line x1="${left + scale(v - s.std)}" x2="${left + scale(v + s.std)}" y1="${top + barH / 2}" y2="${top + barH / 2}" stroke="#000"/>`
          : '';
      return `<text x="${left - 6}" y="${top + barH / 2 + 4}" font-size="11" text-anchor="end">${esc(label(r))}</text>
<rect class="bar" x="${left}" y="${top}" width="${scale(v)}" height="${barH}" fill="${c}"${s.mean === null ? ' fill-opacity="0.2"' : ''}><title>${esc(label(r))}: ${fmt(s)}</title></rect>${whisker}
<text x="${left + scale(v) + 4}" y="${top + barH / 2 + 4}" font-size="10">${s.mean === null ? 'n/a' : s.mean.toFixed(3)}</text>`;
    })
    .join('\n');
  return `<svg class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><text x="${w / 2}" y="18" font-size="13" text-anchor="middle">${esc(title)}</text>${marks}</svg>`;
}

function resultTable(rows: readonly MethodRow[]): string {
  const head = [
    'method',
    'loss',
    'taught',
    'retention',
    'paraphrase',
    'wrong AUROC',
    'OOD AUROC',
    'ECE',
    'Brier',
    'params',
    's/step',
  ];
  const body = rows
    .map(
      (r) =>
        `<tr><td>${esc(r.method)}</td><td>${esc(r.loss)}</td><td>${fmt(r.taught_accuracy)}</td><td>${fmt(r.retention)}</td><td>${fmt(r.paraphrase_accuracy)}</td><td>${fmt(r.wrong_auroc)}</td><td>${fmt(r.ood_auroc)}</td><td>${fmt(r.ece)}</td><td>${fmt(r.brier)}</td><td>${r.trainable_params}</td><td>${r.step_s.toFixed(3)}</td></tr>`,
    )
    .join('\n');
  return `<table id="results"><tr>${head.map((c) => `<th>${c}</th>`).join('')}</tr>\n${body}</table>`;
}

/** The experiments' own measurements (`extra`), one column per name. */
function extraTable(rows: readonly MethodRow[]): string {
  const withExtra = rows.filter((r) => r.extra && Object.keys(r.extra).length > 0);
  if (withExtra.length === 0) return '';
  const names = [...new Set(withExtra.flatMap((r) => Object.keys(r.extra!)))];
  const body = withExtra
    .map(
      (r) =>
        `<tr><td>${esc(r.method)}</td><td>${esc(r.loss)}</td>${names.map((n) => `<td>${r.extra![n] ? fmt(r.extra![n]!) : ''}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const charts = names
    .filter((n) =>
      withExtra.every(
        (r) =>
          !r.extra![n] || r.extra![n]!.mean === null || (r.extra![n]!.mean! >= 0 && r.extra![n]!.mean! <= 1),
      ),
    )
    .map((n) => bars(n, withExtra, (r) => r.extra![n] ?? { mean: null, std: null, n: 0 }))
    .join('');
  return `<h2>Experiment measurements</h2>
<div>${charts}</div>
<table id="extra"><tr><th>method</th><th>loss</th>${names.map((n) => `<th>${esc(n)}</th>`).join('')}</tr>\n${body}</table>`;
}

/**
 * Learning curves: an experiment's extras named `curve_<metric>_<x>` (e.g. `curve_taught_40`, taught
 * accuracy at 40 labels) draw one line per row over x, one chart per metric.
 */
function learningCurves(rows: readonly MethodRow[]): string {
  const byMetric = new Map<string, { name: string; points: [number, number][] }[]>();
  for (const r of rows) {
    const perMetric = new Map<string, [number, number][]>();
    for (const [k, v] of Object.entries(r.extra ?? {})) {
      const m = /^curve_(.+)_(\d+)$/.exec(k);
      if (!m || v.mean === null) continue;
      perMetric.set(m[1]!, [...(perMetric.get(m[1]!) ?? []), [Number(m[2]), v.mean]]);
    }
    for (const [metric, points] of perMetric)
      byMetric.set(metric, [
        ...(byMetric.get(metric) ?? []),
        { name: label(r), points: points.sort((a, b) => a[0] - b[0]) },
      ]);
  }
  return [...byMetric]
    .map(([metric, series]) =>
      lineChart({ title: `Learning curve: ${metric}`, xLabel: 'labels', yLabel: metric, series }),
    )
    .join('');
}

function headlineTable(hs: readonly Headline[]): string {
  const body = hs
    .map(
      (h) =>
        `<tr><td>${esc(h.paper)}</td><td>${esc(h.claim)}</td><td>${esc(h.metric)}</td><td>${esc(`${h.baseline.method} + ${h.baseline.loss}`)}: ${fmt(h.baseline.value)}</td><td>${esc(`${h.treatment.method} + ${h.treatment.loss}`)}: ${fmt(h.treatment.value)}</td><td>${h.difference === null ? '-' : h.difference.toFixed(3)}</td><td class="verdict">${h.reproduced === null ? 'n/a' : h.reproduced ? 'yes' : 'no'}</td></tr>`,
    )
    .join('\n');
  return `<table id="headlines"><tr><th>paper</th><th>claim</th><th>metric</th><th>baseline</th><th>treatment</th><th>difference</th><th>reproduced</th></tr>\n${body}</table>`;
}

/** The whole report page. */
export function renderMethodsReport(r: MethodsBenchResult): string {
  const rows = r.results;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Attune bench methods</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1000px}table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}svg.chart{margin:8px 16px 8px 0}</style></head>
<body>
<h1>Attune bench methods</h1>
<p>Base <code>${esc(r.base.dir)}</code>: known-fact accuracy ${r.base.known_accuracy === null ? 'n/a' : r.base.known_accuracy.toFixed(3)}.
Budget: ${r.budget.steps} steps, batch ${r.budget.batchSize}, lr ${r.budget.lr} (full fine-tuning ${r.budget.fullLr}).
Mean ± std over seeds. AUROCs use the score <code>${esc(r.default_score)}</code>. Backend ${r.backend} (${r.threads} threads), ${esc(r.cpu)}.</p>
<div>${scatter(rows)}${bars('Wrong-answer AUROC', rows, (x) => x.wrong_auroc)}${bars('Out-of-domain AUROC', rows, (x) => x.ood_auroc)}${bars('ECE (lower is better)', rows, (x) => x.ece)}</div>
<h2>Results</h2>
${resultTable(rows)}
${extraTable(rows)}
${learningCurves(rows)}
<h2>Headlines</h2>
${headlineTable(r.headlines)}
</body></html>
`;
}
