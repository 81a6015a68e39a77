/**
 * Minimal self-contained SVG charts for the demo report (no scripts, no CDN): line charts and
 * reliability diagrams. Every series is a `<path class="series" data-points="N">`, so a browser test
 * can check that each chart drew data.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  /** Dashed reference line (e.g. the diagonal, random deferral). */
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  xDomain?: [number, number];
  yDomain?: [number, number];
  width?: number;
  height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function extent(values: number[], fallback: [number, number]): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return fallback;
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  return [lo, hi];
}

function ticks(lo: number, hi: number, count = 5): number[] {
  const step = (hi - lo) / (count - 1);
  return Array.from({ length: count }, (_, i) => lo + i * step);
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.01 || a >= 10000)) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

/** An SVG line chart with axes, ticks and a legend. */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 460;
  const height = o.height ?? 300;
  const m = { left: 56, right: 16, top: 30, bottom: 44 };
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1]));
  const [x0, x1] = o.xDomain ?? extent(xs, [0, 1]);
  const [y0, y1] = o.yDomain ?? extent(ys, [0, 1]);
  const px = (x: number) => m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right);
  const py = (y: number) => height - m.bottom - ((y - y0) / (y1 - y0)) * (height - m.top - m.bottom);
  const parts: string[] = [];
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">${escapeXml(o.title)}</text>`,
  );
  for (const t of ticks(x0, x1)) {
    parts.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${m.top}" y2="${height - m.bottom}" stroke="#eee"/>`);
    parts.push(
      `<text x="${px(t)}" y="${height - m.bottom + 14}" text-anchor="middle" font-size="10">${fmt(t)}</text>`,
    );
  }
  for (const t of ticks(y0, y1)) {
    parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 6}" y="${py(t) + 3}" text-anchor="end" font-size="10">${fmt(t)}</text>`);
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${width - m.left - m.right}" height="${height - m.top - m.bottom}" fill="none" stroke="#999"/>`,
  );
  parts.push(
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle" font-size="11">${escapeXml(o.xLabel)}</text>`,
  );
  parts.push(
    `<text x="14" y="${height / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${height / 2})">${escapeXml(o.yLabel)}</text>`,
  );
  o.series.forEach((s, i) => {
    const color = s.dashed ? '#888' : PALETTE[i % PALETTE.length]!;
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    const d = pts
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`)
      .join(' ');
    parts.push(
      `<path class="series" data-series="${escapeXml(s.name)}" data-points="${pts.length}" d="${d}" fill="none" stroke="${color}" stroke-width="${s.dashed ? 1 : 2}"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`,
    );
    const ly = m.top + 8 + i * 14;
    parts.push(
      `<line x1="${width - m.right - 110}" x2="${width - m.right - 92}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
    );
    parts.push(`<text x="${width - m.right - 88}" y="${ly + 3}" font-size="10">${escapeXml(s.name)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(o.title)}">${parts.join('')}</svg>`;
}

export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  accuracy: number | null;
  confidence: number | null;
}

/** A reliability diagram: accuracy per confidence bin as bars, with the diagonal. */
export function reliabilityDiagram(
  title: string,
  bins: readonly ReliabilityBin[],
  width = 300,
  height = 300,
): string {
  const m = { left: 44, right: 12, top: 30, bottom: 40 };
  const px = (x: number) => m.left + x * (width - m.left - m.right);
  const py = (y: number) => height - m.bottom - y * (height - m.top - m.bottom);
  const parts: string[] = [`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`];
  parts.push(
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">${escapeXml(title)}</text>`,
  );
  const nonEmpty = bins.filter((b) => b.count > 0 && b.accuracy !== null);
  for (const b of nonEmpty) {
    parts.push(
      `<rect class="bar" x="${px(b.lo).toFixed(1)}" y="${py(b.accuracy!).toFixed(1)}" width="${(px(b.hi) - px(b.lo)).toFixed(1)}" height="${(py(0) - py(b.accuracy!)).toFixed(1)}" fill="#1f77b4" fill-opacity="0.75" stroke="#fff"><title>${fmt(b.lo)}-${fmt(b.hi)}: ${b.count} answers, accuracy ${fmt(b.accuracy!)}</title></rect>`,
    );
  }
  // accuracy as a step line across each non-empty bin (two points per bin, so one bin still draws)
  const pts = nonEmpty.flatMap((b) => [[b.lo, b.accuracy!] as const, [b.hi, b.accuracy!] as const]);
  const d = pts
    .map((p, j) => `${j === 0 ? 'M' : 'L'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`)
    .join(' ');
  parts.push(
    `<path class="series" data-series="accuracy" data-points="${pts.length}" d="${d}" fill="none" stroke="#d62728" stroke-width="1.5"/>`,
  );
  parts.push(
    `<path class="reference" d="M${px(0)},${py(0)} L${px(1)},${py(1)}" stroke="#888" stroke-dasharray="4 3" fill="none"/>`,
  );
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<text x="${px(t)}" y="${height - m.bottom + 14}" text-anchor="middle" font-size="10">${t}</text>`,
    );
    parts.push(`<text x="${m.left - 6}" y="${py(t) + 3}" text-anchor="end" font-size="10">${t}</text>`);
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${width - m.left - m.right}" height="${height - m.top - m.bottom}" fill="none" stroke="#999"/>`,
  );
  parts.push(
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle" font-size="11">confidence</text>`,
  );
  parts.push(
    `<text x="12" y="${height / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 12 ${height / 2})">accuracy</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">${parts.join('')}</svg>`;
}
