// report.html in a real browser (Debian's headless Chromium through playwright-core), offline: a
// report rendered from realistic synthetic data, the real one `attune demo --quick` wrote in .ci/run
// (ATTUNE_DEMO_OUT), and deliberately broken pages the checks must reject. Screenshots go to
// test-output/. Without /usr/bin/chromium the tests are skipped locally and fail under CI=true.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/tensor/index.ts';
import { reliabilityDiagram, riskCoverageCurve } from '../../src/uq/index.ts';
import type { ModelEvaluation } from '../../src/world/demo.ts';
import { type ReportData, renderReport } from '../../src/world/report.ts';
import {
  checkReport,
  chromiumOrSkip,
  inspectReport,
  launchChromium,
  type ReportBrowser,
  reportProblems,
} from '../helpers/browser.ts';

const outputDir = fileURLToPath(new URL('../../test-output/', import.meta.url));
const availability = chromiumOrSkip();
const work = mkdtempSync(join(tmpdir(), 'attune-report-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A decaying, noisy loss curve of `steps` points. */
function lossCurve(rng: Rng, steps: number, from: number, to: number): [number, number][] {
  return Array.from({ length: steps }, (_, i) => {
    const t = i / (steps - 1);
    return [i + 1, to + (from - to) * Math.exp(-5 * t) + 0.08 * rng.normal()] as [number, number];
  });
}

/** Report data shaped like the quick demo's: 300 mixed predictions per model, 3 loss curves. */
function syntheticReport(): ReportData {
  const rng = new Rng(7);
  // Probability of a right answer on known / taught / unknown people per model.
  const skill: Record<string, [number, number, number]> = {
    base: [0.85, 0.05, 0],
    ce: [0.8, 0.75, 0],
    'ua-clm': [0.8, 0.7, 0],
  };
  const evaluations: Record<string, ModelEvaluation> = {};
  const reliability: ReportData['reliability'] = {};
  const riskCoverage: ReportData['riskCoverage'] = {};
  for (const [name, [known, taught, unknown]] of Object.entries(skill)) {
    const confidence: number[] = [];
    const correct: boolean[] = [];
    const logPerplexity: number[] = [];
    for (const [p, split] of [
      [known, 0],
      [taught, 1],
      [unknown, 2],
    ] as const) {
      for (let i = 0; i < 100; i++) {
        const ok = rng.uniform() < p;
        const c = Math.min(0.99, Math.max(0.01, (ok ? 0.75 : 0.35) + 0.18 * rng.normal() - 0.05 * split));
        confidence.push(c);
        correct.push(ok);
        logPerplexity.push(-Math.log(c));
      }
    }
    const acc = (from: number, to: number) => correct.slice(from, to).filter(Boolean).length / (to - from);
    evaluations[name] = {
      accuracy: {
        known: acc(0, 100),
        taught: acc(100, 200),
        unknown: acc(200, 300),
        mixed: acc(0, 300),
        ood: 0,
      },
      ece: 0.05 + 0.1 * rng.uniform(),
      brier: 0.15 + 0.1 * rng.uniform(),
      auroc: { log_perplexity: 0.8, mean_entropy: 0.75, msp: name === 'base' ? null : 0.7 },
      ood_auroc: { log_perplexity: 0.9, mean_entropy: 0.85, msp: 0.6 },
    };
    reliability[name] = reliabilityDiagram(confidence, correct, { bins: 10 }).bins;
    riskCoverage[name] = riskCoverageCurve(logPerplexity, correct).map(
      (pt) => [pt.coverage, pt.risk] as [number, number],
    );
  }
  return {
    title: 'Attune demo (synthetic data, seed 0)',
    generated: '2025-01-01T00:00:00.000Z',
    backend: 'native (2 threads)',
    evaluations,
    lossCurves: {
      'pretrain (base)': lossCurve(rng, 240, 5.6, 1.1),
      'LoRA + ce': lossCurve(rng, 160, 1.6, 0.3),
      'LoRA + ua-clm': lossCurve(rng, 160, 1.7, 0.4),
    },
    reliability,
    riskCoverage,
  };
}

/** Width and height of a PNG from its IHDR chunk. */
function pngSize(path: string): { width: number; height: number } {
  const b = readFileSync(path);
  assert.equal(b.subarray(1, 4).toString('latin1'), 'PNG', `${path} is not a PNG`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

function writeHtml(name: string, html: string): string {
  const p = join(work, name);
  writeFileSync(p, html);
  return p;
}

describe('report.html in headless Chromium', { skip: availability.skip || false }, () => {
  let browser: ReportBrowser;
  let syntheticHtml: string;
  before(async () => {
    browser = await launchChromium();
    syntheticHtml = renderReport(syntheticReport());
  });
  after(async () => browser?.close());

  it('a report from synthetic data renders every chart with data, offline, without errors', async () => {
    const screenshot = join(outputDir, 'report-synthetic.png');
    const facts = await checkReport(browser, writeHtml('report.html', syntheticHtml), { screenshot });
    assert.deepEqual(facts.table?.[0], ['metric', 'base', 'ce', 'ua-clm']);
    assert.ok(facts.table!.length >= 10, `${facts.table!.length} table rows`);
    assert.deepEqual(
      facts.charts.map((c) => c.kind),
      ['loss', 'risk-coverage', 'reliability', 'reliability', 'reliability'],
    );
    assert.equal(facts.charts[0]!.series.length, 3);
    assert.deepEqual(
      facts.charts[0]!.series.map((s) => s.points),
      [240, 160, 160],
    );
    const size = pngSize(screenshot);
    assert.ok(size.width >= 1000 && size.height >= 900, `screenshot ${size.width}x${size.height}`);
  });

  describe('the checks reject a broken report', () => {
    // Each variant breaks one thing in the synthetic report; the checks must name it.
    const firstSeries = /data-points="\d+" d="[^"]*"/;
    const variants: [string, (html: string) => string, RegExp][] = [
      ['an empty series', (h) => h.replace(firstSeries, 'data-points="0" d=""'), /data-points is 0/],
      [
        'a one-point series',
        (h) => h.replace(firstSeries, 'data-points="1" d="M100.0,100.0"'),
        /data-points is 1/,
      ],
      [
        'a series with non-finite coordinates',
        (h) => h.replace(firstSeries, 'data-points="2" d="MNaN,NaN LNaN,NaN"'),
        /non-finite coordinates/,
      ],
      [
        'a series drawn off the canvas',
        (h) => h.replace(firstSeries, 'data-points="2" d="M-5000,-5000 L-4000,-4500"'),
        /drawn outside the svg/,
      ],
      ['a chart without series', (h) => h.replace(/<path class="series"[^>]*\/>/g, ''), /no data series/],
      [
        'a chart without its svg',
        (h) =>
          h.replace(
            /(<figure class="chart" data-chart="risk-coverage">.*?<\/figcaption>)<svg.*?<\/svg>/s,
            '$1',
          ),
        /risk-coverage.*: no svg/,
      ],
      [
        'reliability diagrams without bars',
        (h) => h.replace(/<rect class="bar".*?<\/rect>/gs, ''),
        /no bars/,
      ],
      [
        'a missing chart kind',
        (h) => h.replaceAll('data-chart="reliability"', 'data-chart="other"'),
        /no 'reliability' chart/,
      ],
      [
        'a console error',
        (h) => h.replace('</body>', "<script>console.error('boom')</script></body>"),
        /console error: boom/,
      ],
      [
        'a page error',
        (h) => h.replace('</body>', '<script>null.x</script></body>'),
        /page error: .*TypeError/,
      ],
      [
        'a script from a CDN',
        (h) => h.replace('</head>', '<script src="https://cdn.jsdelivr.net/npm/chart.js"></script></head>'),
        /network request attempted.*cdn\.jsdelivr\.net/,
      ],
      [
        'a missing metrics table',
        (h) => h.replace(/<table id="metrics">.*?<\/table>/s, ''),
        /no metrics table/,
      ],
      [
        'a non-numeric metrics cell',
        (h) => h.replace(/<td>\d\.\d{3}<\/td>/, '<td>NaN</td>'),
        /non-numeric cells: NaN/,
      ],
    ];
    for (const [name, breakIt, expected] of variants) {
      it(name, async () => {
        const html = breakIt(syntheticHtml);
        assert.notEqual(html, syntheticHtml, 'the variant changed nothing');
        const file = writeHtml(`broken-${name.replace(/\W+/g, '-')}.html`, html);
        const problems = reportProblems(await inspectReport(browser, file));
        assert.ok(problems.length > 0, `${name}: the checks passed a broken report`);
        assert.match(problems.join('\n'), expected);
      });
    }

    it('checkReport throws, listing the problem, when a series is empty', async () => {
      const file = writeHtml('broken-empty.html', syntheticHtml.replace(firstSeries, 'data-points="0" d=""'));
      await assert.rejects(checkReport(browser, file), /failed \d+ check\(s\):[\s\S]*data-points is 0/);
    });
  });

  it('the report of `attune demo --quick` (ATTUNE_DEMO_OUT, set by .ci/run)', async (t) => {
    const dir = process.env.ATTUNE_DEMO_OUT;
    if (!dir) {
      if (process.env.CI === 'true') assert.fail('ATTUNE_DEMO_OUT must point at the demo output under CI');
      t.skip('ATTUNE_DEMO_OUT is not set (.ci/run sets it after running the demo)');
      return;
    }
    const reportPath = join(dir, 'report.html');
    assert.ok(existsSync(reportPath), `${reportPath} is missing`);
    const screenshot = join(outputDir, 'report.png');
    const facts = await checkReport(browser, reportPath, { screenshot });
    // The table shows the run's own metrics.
    const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as Record<
      string,
      { accuracy: { taught: number | null } }
    >;
    assert.deepEqual(facts.table?.[0], ['metric', 'base', 'ce', 'ua-clm']);
    const taught = facts.table!.find((r) => r[0] === 'accuracy: taught facts');
    assert.deepEqual(
      taught?.slice(1),
      ['base', 'ce', 'ua-clm'].map((m) => metrics[m]!.accuracy.taught?.toFixed(3) ?? 'n/a'),
    );
    assert.equal(facts.charts.filter((c) => c.kind === 'reliability').length, 3);
    const size = pngSize(screenshot);
    assert.ok(size.width >= 1000 && size.height >= 900, `screenshot ${size.width}x${size.height}`);
  });
});
