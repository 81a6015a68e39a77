/**
 * Headless Chromium (Debian's /usr/bin/chromium driven by playwright-core) for the report tests, and
 * the checks a rendered report.html must pass: offline (no request but the page itself), no console
 * or page errors, a metrics table of numbers, and every `figure.chart` drawn with data (each
 * `path.series` has >= 2 points, a non-empty `d` and a visible, non-degenerate rendered box inside
 * its svg; reliability diagrams have bars). The checks are a pure function of the facts collected in
 * the page, so they can be tested on deliberately broken pages.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';

/** The Chromium binary the tests drive: Debian's package (`.ci/run` installs it when missing). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a quiet, sandbox-free, network-silent headless Chromium. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Containers often have a 64 MB /dev/shm, too small for Chromium's shared memory.
  '--disable-dev-shm-usage',
];

/**
 * Whether Chromium is available: `{ skip: false }`, or a printed skip reason locally. Under
 * CI=true a missing browser throws, since nothing optional may be skipped there.
 */
export function chromiumOrSkip(): { skip: false } | { skip: string } {
  if (existsSync(CHROMIUM_PATH)) return { skip: false };
  const reason = `${CHROMIUM_PATH} is missing (install Debian's chromium package; .ci/run does)`;
  if (process.env.CI === 'true') throw new Error(`headless Chromium is required under CI: ${reason}`);
  console.log(`# skipped browser tests: ${reason}`);
  return { skip: `skipped: ${reason}` };
}

/** A running headless Chromium with its own fresh profile; `close()` also deletes the profile. */
export interface ReportBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launch headless Chromium with a fresh `--user-data-dir`, offline, with a fixed viewport. */
export async function launchChromium(): Promise<ReportBrowser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'attune-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
      offline: true,
      viewport: { width: 1200, height: 900 },
      timeout: 60_000,
    });
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Rendered box of an SVG element, from `getBBox()` (user units of its svg). */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One `path.series` as rendered. */
export interface SeriesFacts {
  name: string | null;
  /** The `data-points` attribute (NaN when missing). */
  points: number;
  d: string;
  bbox: Box;
  /** `getTotalLength()`: 0 when nothing is drawn. */
  length: number;
}

/** One `figure.chart` as rendered. */
export interface ChartFacts {
  kind: string | null;
  caption: string;
  hasSvg: boolean;
  /** The svg's on-screen size (CSS px). */
  svgSize: { width: number; height: number };
  /** The svg's viewBox (user units); null without one. */
  viewBox: Box | null;
  series: SeriesFacts[];
  /** `rect.bar` boxes (reliability diagrams). */
  bars: Box[];
}

/** Everything the checks look at, collected from a loaded report page. */
export interface ReportFacts {
  url: string;
  title: string;
  /** Rows of `table#metrics`, header first, each a list of cell texts; null without the table. */
  table: string[][] | null;
  charts: ChartFacts[];
  /** `src`/`href` attributes that point outside the page (not `#...` or `data:`). */
  externalRefs: string[];
  consoleErrors: string[];
  pageErrors: string[];
  /** Requests other than the report itself (all blocked; any is a failure). */
  requests: string[];
}

/**
 * Collects ReportFacts in the page. A string, not a function, so that neither the TS transform's
 * helpers nor Node's types leak into the page.
 */
const COLLECT_IN_PAGE = `(() => {
  const box = (b) => ({ x: b.x, y: b.y, width: b.width, height: b.height });
  const table = document.querySelector('table#metrics');
  const rows = table
    ? Array.from(table.querySelectorAll('tr')).map((tr) =>
        Array.from(tr.children).map((c) => (c.textContent || '').trim()))
    : null;
  const charts = Array.from(document.querySelectorAll('figure.chart')).map((fig) => {
    const svg = fig.querySelector('svg');
    const rect = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    const vb = svg && svg.viewBox && svg.viewBox.baseVal;
    const viewBox = vb && vb.width > 0 && vb.height > 0 ? box(vb) : null;
    const series = svg
      ? Array.from(svg.querySelectorAll('path.series')).map((p) => ({
          name: p.getAttribute('data-series'),
          points: p.hasAttribute('data-points') ? Number(p.getAttribute('data-points')) : NaN,
          d: p.getAttribute('d') || '',
          bbox: box(p.getBBox()),
          length: p.getTotalLength(),
        }))
      : [];
    const bars = svg ? Array.from(svg.querySelectorAll('rect.bar')).map((r) => box(r.getBBox())) : [];
    const cap = fig.querySelector('figcaption');
    return {
      kind: fig.getAttribute('data-chart'),
      caption: cap ? (cap.textContent || '').trim() : '',
      hasSvg: !!svg,
      svgSize: { width: rect.width, height: rect.height },
      viewBox,
      series,
      bars,
    };
  });
  const externalRefs = Array.from(document.querySelectorAll('[src],[href]'))
    .flatMap((el) => [el.getAttribute('src'), el.getAttribute('href')])
    .filter((v) => v !== null && v !== '' && !v.startsWith('#') && !v.startsWith('data:'));
  return { title: document.title, table: rows, charts, externalRefs };
})()`;

/** Options of `inspectReport`. */
export interface InspectOptions {
  /** Save a full-page PNG screenshot here (its folder is created). */
  screenshot?: string;
}

/**
 * Open an HTML file from disk in a new page of `browser`, with every network request blocked and
 * recorded, and collect the facts the checks need. Console errors, page errors and attempted
 * requests are recorded, not thrown.
 */
export async function inspectReport(
  browser: ReportBrowser,
  htmlPath: string,
  options: InspectOptions = {},
): Promise<ReportFacts> {
  const url = pathToFileURL(htmlPath).href;
  const page = await browser.context.newPage();
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('websocket', (ws) => requests.push(ws.url()));
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    requests.push(u);
    return route.abort();
  });
  try {
    await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
    const collected = (await page.evaluate(COLLECT_IN_PAGE)) as Pick<
      ReportFacts,
      'title' | 'table' | 'charts' | 'externalRefs'
    >;
    if (options.screenshot) {
      mkdirSync(dirname(options.screenshot), { recursive: true });
      await page.screenshot({ path: options.screenshot, fullPage: true });
    }
    return { url, ...collected, consoleErrors, pageErrors, requests };
  } finally {
    await page.close();
  }
}

/** What a report must contain, beyond the checks every chart gets. */
export interface ReportExpectations {
  /** `data-chart` kinds that must each appear at least once (default: loss, risk-coverage, reliability). */
  kinds?: readonly string[];
}

const NUMBER_CELL = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;

function positive(b: Box): boolean {
  return Number.isFinite(b.width) && Number.isFinite(b.height) && (b.width > 0 || b.height > 0);
}

function intersects(b: Box, vb: Box): boolean {
  return b.x <= vb.x + vb.width && b.x + b.width >= vb.x && b.y <= vb.y + vb.height && b.y + b.height >= vb.y;
}

/**
 * Every problem with a rendered report, one line each (an empty list means it passes): network
 * requests, external references, console and page errors, a missing or non-numeric metrics table,
 * missing chart kinds, and any chart without an svg, with a zero-size svg, without series, with a
 * series of < 2 points, an empty or non-finite `d`, a degenerate or off-canvas rendered box, or (for
 * reliability diagrams) without bars.
 */
export function reportProblems(facts: ReportFacts, expect: ReportExpectations = {}): string[] {
  const problems: string[] = [];
  for (const r of facts.requests)
    problems.push(`network request attempted (the report must work offline): ${r}`);
  for (const r of facts.externalRefs) problems.push(`external reference in the page: ${r}`);
  for (const e of facts.consoleErrors) problems.push(`console error: ${e}`);
  for (const e of facts.pageErrors) problems.push(`page error: ${e}`);

  const table = facts.table;
  if (!table) problems.push('no metrics table (table#metrics)');
  else {
    const [head, ...body] = table;
    if (!head || head.length < 2) problems.push('metrics table: header has no model columns');
    if (body.length === 0) problems.push('metrics table: no rows');
    body.forEach((row, i) => {
      const label = row[0] || `row ${i + 1}`;
      if (head && row.length !== head.length)
        problems.push(`metrics table: '${label}' has ${row.length} cells, header has ${head.length}`);
      const values = row.slice(1);
      const bad = values.filter((v) => v !== 'n/a' && !NUMBER_CELL.test(v));
      if (bad.length > 0) problems.push(`metrics table: '${label}' has non-numeric cells: ${bad.join(', ')}`);
      if (!values.some((v) => NUMBER_CELL.test(v))) problems.push(`metrics table: '${label}' has no number`);
    });
  }

  if (facts.charts.length === 0) problems.push('no charts (figure.chart)');
  for (const kind of expect.kinds ?? ['loss', 'risk-coverage', 'reliability']) {
    if (!facts.charts.some((c) => c.kind === kind)) problems.push(`no '${kind}' chart`);
  }
  facts.charts.forEach((c, i) => {
    const where = `chart ${i + 1} (${c.kind ?? 'no data-chart'}: ${c.caption || 'no caption'})`;
    if (!c.hasSvg) {
      problems.push(`${where}: no svg`);
      return;
    }
    if (!(c.svgSize.width > 0 && c.svgSize.height > 0)) problems.push(`${where}: the svg has zero size`);
    if (c.series.length === 0) problems.push(`${where}: no data series (path.series)`);
    for (const s of c.series) {
      const name = `${where}, series '${s.name ?? '?'}'`;
      if (!(s.points >= 2)) problems.push(`${name}: data-points is ${s.points} (needs >= 2)`);
      if (s.d.trim() === '') problems.push(`${name}: empty d attribute`);
      else if (/nan|infinity/i.test(s.d)) problems.push(`${name}: non-finite coordinates in d`);
      if (!positive(s.bbox) || !(s.length > 0))
        problems.push(`${name}: draws nothing (bbox ${s.bbox.width}x${s.bbox.height}, length ${s.length})`);
      else if (c.viewBox && !intersects(s.bbox, c.viewBox)) problems.push(`${name}: drawn outside the svg`);
    }
    if (c.kind === 'reliability') {
      if (c.bars.length === 0) problems.push(`${where}: no bars (rect.bar)`);
      else if (!c.bars.every((b) => b.width > 0)) problems.push(`${where}: a bar has zero width`);
    }
  });
  return problems;
}

/** `inspectReport` then `reportProblems`; throws one error listing every problem. */
export async function checkReport(
  browser: ReportBrowser,
  htmlPath: string,
  options: InspectOptions & ReportExpectations = {},
): Promise<ReportFacts> {
  const facts = await inspectReport(browser, htmlPath, options);
  const problems = reportProblems(facts, options);
  if (problems.length > 0) {
    throw new Error(`${htmlPath} failed ${problems.length} check(s):\n  ${problems.join('\n  ')}`);
  }
  return facts;
}
