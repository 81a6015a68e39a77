// `attune bench methods --quick` end to end on the shipped small world base (nothing is pretrained):
// two (method, loss) pairs and the ComPEFT row derived from lora + ce, one seed; the --json
// envelope, results.json, a rerun that reuses every run, and report.html in headless Chromium
// (every point and bar drawn, no network request, no console error). Screenshot: test-output/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromiumOrSkip, launchChromium } from '../helpers/browser.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'attune-bench-methods-e2e-'));
after(() => rmSync(work, { recursive: true, force: true }));
const out = join(work, 'out');

function bench(): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(
    process.execPath,
    [
      join(root, 'bin', 'attune.js'),
      'bench',
      'methods',
      '--quick',
      '--seeds',
      '1',
      '--methods',
      'lora',
      '--losses',
      'ce,ua-clm',
      '--out',
      out,
      '--json',
    ],
    { cwd: work, encoding: 'utf8', env: process.env, timeout: 900_000 },
  );
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('attune bench methods --quick', () => {
  it('runs lora + ce and lora + ua-clm, prints the envelope, reuses finished runs and writes a report', async (t) => {
    const first = bench();
    assert.equal(first.status, 0, first.stderr.slice(-2000));
    const lines = first.stdout.trim().split('\n');
    const result = JSON.parse(lines.at(-1)!) as {
      bench: string;
      results: { method: string; loss: string; seeds: number; taught_accuracy: { mean: number | null } }[];
      headlines: { paper: string; reproduced: boolean | null }[];
      base: { known_accuracy: number | null };
    };
    assert.equal(result.bench, 'methods');
    assert.deepEqual(
      result.results.map((r) => [r.method, r.loss, r.seeds]),
      [
        ['lora', 'ce', 1],
        ['lora', 'ua-clm', 1],
        ['compeft(lora)', 'ce', 1],
      ],
    );
    assert.ok(result.headlines.length >= 1 && result.headlines[0]!.paper.includes('Uncertainty-Aware'));
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')), result);
    const again = bench();
    assert.equal(again.status, 0, again.stderr.slice(-2000));
    assert.equal((again.stderr.match(/reusing \S*\/runs\//g) ?? []).length, 2, 'both runs are reused');
    assert.deepEqual(JSON.parse(again.stdout.trim().split('\n').at(-1)!).results, result.results);

    const availability = chromiumOrSkip();
    if (availability.skip) {
      t.skip(availability.skip);
      return;
    }
    const report = join(out, 'report.html');
    assert.ok(existsSync(report));
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`page: ${e}`));
      const url = pathToFileURL(report).href;
      await page.route('**/*', (route) => {
        if (route.request().url() === url) return route.continue();
        problems.push(`request: ${route.request().url()}`);
        return route.abort();
      });
      await page.goto(url, { waitUntil: 'load' });
      const facts = (await page.evaluate(`(() => {
        const box = (e) => { const b = e.getBBox(); return b.width > 0 && b.height > 0 && Number.isFinite(b.x) && Number.isFinite(b.y); };
        return {
          points: [...document.querySelectorAll('circle.point')].map(box),
          bars: [...document.querySelectorAll('rect.bar')].length,
          rows: document.querySelectorAll('#results tr').length,
          headlines: document.querySelectorAll('#headlines tr').length,
        };
      })()`)) as { points: boolean[]; bars: number; rows: number; headlines: number };
      await page.screenshot({ path: join(root, 'test-output', 'bench-methods.png'), fullPage: true });
      assert.deepEqual(problems, []);
      assert.deepEqual(facts.points, [true, true, true], 'one drawn point per row');
      assert.equal(facts.bars, 9, 'three bar charts of three rows');
      assert.equal(facts.rows, 4);
      assert.equal(facts.headlines, 1 + result.headlines.length);
    } finally {
      await browser.close();
    }
  });
});
