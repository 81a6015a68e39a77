/**
 * report.html of `attune sweep`: self-contained (no scripts, no CDN), in the SVG style of
 * world/svg-chart.ts. A table of every trial, the objective per trial, the Pareto front (every
 * finished trial a `circle.point`, the front a `path.series` staircase) and parallel coordinates of
 * the searched fields and the objective (one `path.series` per trial). Charts are `figure.chart`
 * with a `data-chart` kind, so the browser checks of the other reports apply.
 */
import { lineChart } from '../world/svg-chart.ts';
import { frontObjectives } from './pareto.ts';
import type { SweepResult, SweepTrial } from './sweep.ts';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.01 || a >= 10000)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

function text(v: unknown): string {
  if (typeof v === 'number') return fmt(v);
  if (v === null || v === undefined) return 'n/a';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

type Done = SweepTrial & { metrics: Record<string, number> };

/** Positions in [0, 1] for one axis: numbers linear (log when they span >= 2 decades), others by first appearance. */
function axisScale(values: readonly unknown[]): { at: (v: unknown) => number; ticks: [number, string][] } {
  if (values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    const nums = values as number[];
    const log = nums.every((v) => v > 0) && Math.max(...nums) / Math.min(...nums) >= 100;
    const f = (v: number) => (log ? Math.log10(v) : v);
    const lo = Math.min(...nums.map(f));
    const hi = Math.max(...nums.map(f));
    const at = (v: unknown) => (hi === lo ? 0.5 : (f(v as number) - lo) / (hi - lo));
    const ends = [...new Set([Math.min(...nums), Math.max(...nums)])];
    return { at, ticks: ends.map((v) => [at(v), fmt(v)]) };
  }
  const keys = [...new Set(values.map(text))];
  const at = (v: unknown) => (keys.length === 1 ? 0.5 : keys.indexOf(text(v)) / (keys.length - 1));
  return { at, ticks: keys.map((k) => [at(k === 'n/a' ? null : k), k]) };
}

/** Parallel coordinates: one vertical axis per searched field and one for the objective. */
function parallelCoordinates(result: SweepResult, done: readonly Done[]): string {
  const objective = result.objective[0]!;
  const manySeeds = (result.seeds?.length ?? 0) > 1;
  const axes = [
    ...result.fields.map((f) => ({ name: f, values: done.map((t) => t.params[f]) })),
    ...(manySeeds ? [{ name: 'seed', values: done.map((t) => t.seed) }] : []),
    { name: objective.metric, values: done.map((t) => t.metrics[objective.metric]) },
  ];
  const w = Math.max(460, 140 * axes.length);
  const h = 320;
  const m = { l: 60, r: 60, t: 36, b: 40 };
  const ax = (i: number) => m.l + (axes.length === 1 ? 0 : (i / (axes.length - 1)) * (w - m.l - m.r));
  const ay = (p: number) => h - m.b - p * (h - m.t - m.b);
  const scales = axes.map((a) => axisScale(a.values));
  const objScale = scales.at(-1)!;
  const parts: string[] = [`<rect x="0" y="0" width="${w}" height="${h}" fill="#fff"/>`];
  parts.push(
    `<text x="${w / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">Searched fields and ${esc(objective.metric)}</text>`,
  );
  done.forEach((t) => {
    const values = [
      ...result.fields.map((f) => t.params[f]),
      ...(manySeeds ? [t.seed] : []),
      t.metrics[objective.metric],
    ];
    const d = values
      .map((v, i) => `${i === 0 ? 'M' : 'L'}${ax(i).toFixed(1)},${ay(scales[i]!.at(v)).toFixed(1)}`)
      .join(' ');
    // colour by the objective: the best end blue, the worst red
    const p = objScale.at(t.metrics[objective.metric]);
    const good = objective.goal === 'min' ? 1 - p : p;
    const color = `rgb(${Math.round(214 * (1 - good) + 31 * good)},${Math.round(39 * (1 - good) + 119 * good)},${Math.round(40 * (1 - good) + 180 * good)})`;
    parts.push(
      `<path class="series" data-series="${esc(t.id)}" data-points="${values.length}" d="${d}" fill="none" stroke="${color}" stroke-width="1.5" stroke-opacity="0.8"><title>${esc(t.id)}</title></path>`,
    );
  });
  axes.forEach((a, i) => {
    parts.push(`<line x1="${ax(i)}" x2="${ax(i)}" y1="${m.t}" y2="${h - m.b}" stroke="#333"/>`);
    parts.push(
      `<text x="${ax(i)}" y="${h - m.b + 18}" text-anchor="middle" font-size="11">${esc(a.name)}</text>`,
    );
    for (const [p, label] of scales[i]!.ticks)
      parts.push(`<text x="${ax(i) + 5}" y="${ay(p) + 3}" font-size="10">${esc(label)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="parallel coordinates">${parts.join('')}</svg>`;
}

/** The Pareto front over two objectives: trials as points, the front as a staircase to the edge. */
function paretoChart(result: SweepResult, done: readonly Done[]): string {
  const [ox, oy] = frontObjectives(result.objective) as [
    SweepResult['objective'][0],
    SweepResult['objective'][0],
  ];
  const w = 460;
  const h = 320;
  const m = { l: 64, r: 16, t: 30, b: 44 };
  const xs = done.map((t) => t.metrics[ox.metric]!);
  const ys = done.map((t) => t.metrics[oy.metric]!);
  const pad = (lo: number, hi: number): [number, number] =>
    lo === hi ? [lo - 0.5, hi + 0.5] : [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05];
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (w - m.l - m.r);
  const py = (y: number) => h - m.b - ((y - y0) / (y1 - y0)) * (h - m.t - m.b);
  const onFront = new Set(result.pareto);
  const front = done
    .filter((t) => onFront.has(t.id))
    .sort((a, b) => (a.metrics[ox.metric]! - b.metrics[ox.metric]!) * (ox.goal === 'min' ? 1 : -1));
  // staircase: from each front point along x to the next one's x, ending at the plot's far edge
  const edgeX = ox.goal === 'min' ? x1 : x0;
  const edgeY = oy.goal === 'min' ? y1 : y0;
  const stairs: [number, number][] = [];
  if (front.length > 0) stairs.push([front[0]!.metrics[ox.metric]!, edgeY]);
  front.forEach((t, i) => {
    const x = t.metrics[ox.metric]!;
    const y = t.metrics[oy.metric]!;
    stairs.push([x, y]);
    stairs.push([i + 1 < front.length ? front[i + 1]!.metrics[ox.metric]! : edgeX, y]);
  });
  const parts: string[] = [`<rect x="0" y="0" width="${w}" height="${h}" fill="#fff"/>`];
  parts.push(
    `<text x="${w / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">Pareto front: ${esc(ox.metric)} (${ox.goal}) vs ${esc(oy.metric)} (${oy.goal})</text>`,
  );
  parts.push(
    `<rect x="${m.l}" y="${m.t}" width="${w - m.l - m.r}" height="${h - m.t - m.b}" fill="none" stroke="#999"/>`,
  );
  for (const [v, at] of [
    [x0, 'x'],
    [x1, 'x'],
    [y0, 'y'],
    [y1, 'y'],
  ] as const)
    parts.push(
      at === 'x'
        ? `<text x="${px(v)}" y="${h - m.b + 14}" text-anchor="middle" font-size="10">${fmt(v)}</text>`
        : `<text x="${m.l - 6}" y="${py(v) + 3}" text-anchor="end" font-size="10">${fmt(v)}</text>`,
    );
  parts.push(`<text x="${w / 2}" y="${h - 8}" text-anchor="middle" font-size="11">${esc(ox.metric)}</text>`);
  parts.push(
    `<text x="14" y="${h / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${h / 2})">${esc(oy.metric)}</text>`,
  );
  const d = stairs
    .map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`)
    .join(' ');
  parts.push(
    `<path class="series" data-series="pareto front" data-points="${stairs.length}" d="${d}" fill="none" stroke="${PALETTE[1]}" stroke-width="2"/>`,
  );
  for (const t of done)
    parts.push(
      `<circle class="point${onFront.has(t.id) ? ' front' : ''}" cx="${px(t.metrics[ox.metric]!).toFixed(1)}" cy="${py(t.metrics[oy.metric]!).toFixed(1)}" r="4" fill="${onFront.has(t.id) ? PALETTE[1] : PALETTE[0]}"><title>${esc(t.id)}: ${esc(ox.metric)} ${fmt(t.metrics[ox.metric]!)}, ${esc(oy.metric)} ${fmt(t.metrics[oy.metric]!)}</title></circle>`,
    );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="Pareto front">${parts.join('')}</svg>`;
}

function figure(kind: string, caption: string, svg: string): string {
  return `<figure class="chart" data-chart="${kind}">${svg}<figcaption>${esc(caption)}</figcaption></figure>`;
}

function trialTable(result: SweepResult): string {
  const metrics = ['eval_loss', 'final_loss', 'trainable_params', 'steps'];
  const head = ['trial', ...result.fields, ...(result.seeds ? ['seed'] : []), ...metrics];
  const rows = result.trials.map((t) => [
    t.id,
    ...result.fields.map((f) => text(t.params[f])),
    ...(result.seeds ? [text(t.seed)] : []),
    ...metrics.map((k) => text((t.metrics as Record<string, number> | null)?.[k])),
  ]);
  const cells = (r: string[], tag: string) =>
    `<tr>${r.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;
  return `<table id="metrics">${cells(head, 'th')}${rows.map((r) => cells(r, 'td')).join('')}</table>`;
}

/** The whole report page. */
export function sweepReportHtml(result: SweepResult): string {
  // a finished trial without a value of an objective (an undefined AUROC) is not drawn
  const drawn = frontObjectives(result.objective);
  const done = result.trials.filter(
    (t) =>
      t.status === 'done' &&
      drawn.every((o) => Number.isFinite((t.metrics as unknown as Record<string, number>)[o.metric])),
  ) as Done[];
  const objective = result.objective[0]!;
  const charts: string[] = [];
  if (done.length > 0) {
    charts.push(
      figure(
        'objective',
        `${objective.metric} (${objective.goal}) of each finished trial, in sweep order`,
        lineChart({
          title: `${objective.metric} per trial`,
          xLabel: 'trial (sweep order)',
          yLabel: objective.metric,
          series: result.objective.slice(0, 1).map((o) => ({
            name: o.metric,
            points: done.map((t, i) => [i + 1, t.metrics[o.metric]!] as const),
          })),
        }),
      ),
    );
    charts.push(
      figure('pareto', 'Pareto front (red: trials no other trial beats on both)', paretoChart(result, done)),
    );
    charts.push(
      figure(
        'parallel',
        'Parallel coordinates: one line per trial, blue = best objective',
        parallelCoordinates(result, done),
      ),
    );
  }
  const best = result.best
    ? `<p>Best (${esc(objective.metric)}, ${objective.goal}): <b>${esc(result.best.id)}</b> ${esc(JSON.stringify(result.best.params))}: ${fmt((result.best.metrics as unknown as Record<string, number>)[objective.metric]!)}</p>`
    : '<p>No trial has finished yet.</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>attune sweep: ${esc(result.out)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:8px}figcaption{font-size:12px;color:#555}</style>
</head><body>
<h1>Sweep ${esc(result.out)}</h1>
<p>${done.length} of ${result.trials.length} trials done. Objective: ${result.objective.map((o) => `${esc(o.metric)} (${o.goal})`).join(', ')}.</p>
${best}
${trialTable(result)}
${charts.join('\n')}
</body></html>
`;
}
