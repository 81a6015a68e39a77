/** startServer and the serve flags refuse bad settings before loading anything or listening. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseAdapterFlags } from '../../../src/cli/commands/serve.ts';
import { ConfigError, FormatError, UsageError } from '../../../src/errors.ts';
import { startServer } from '../../../src/serve/index.ts';
import { shippedWorldBaseDir } from '../../../src/world/base.ts';
import { writeRandomAdapters } from '../../helpers/lora-adapters.ts';

const baseDir = shippedWorldBaseDir('small');
const tmp = mkdtempSync(join(tmpdir(), 'attune-serve-options-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const [plain] = writeRandomAdapters(baseDir, tmp, [{ name: 'plain', seed: 1, targets: ['q_proj'] }]);

describe('serve settings', () => {
  it('parses --adapter NAME=DIR and refuses other forms', () => {
    assert.deepEqual(parseAdapterFlags([`a=${plain!.dir}`]), [{ name: 'a', dir: plain!.dir }]);
    assert.throws(() => parseAdapterFlags([plain!.dir]), /NAME=DIR/);
    assert.throws(() => parseAdapterFlags(['a=']), UsageError);
    assert.throws(() => parseAdapterFlags([`a=${join(tmp, 'missing')}`]), /no directory/);
  });

  it('refuses duplicate or malformed adapter names and a threshold outside [0, 1]', async () => {
    await assert.rejects(
      startServer({ modelDir: baseDir, port: 0, adapters: [plain!, plain!] }),
      /'plain' is given twice/,
    );
    await assert.rejects(
      startServer({ modelDir: baseDir, port: 0, adapters: [{ name: 'a:b', dir: plain!.dir }] }),
      UsageError,
    );
    await assert.rejects(
      startServer({ modelDir: baseDir, port: 0, abstainThreshold: 1.5 }),
      /abstain-threshold/,
    );
  });

  it('refuses a DoRA adapter naming its file (serve runs plain LoRA)', async () => {
    const dora = join(tmp, 'dora');
    writeRandomAdapters(baseDir, tmp, [{ name: 'dora', seed: 2, targets: ['q_proj'] }]);
    const file = join(dora, 'adapter_config.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), use_dora: true }));
    await assert.rejects(
      startServer({ modelDir: baseDir, port: 0, adapters: [{ name: 'dora', dir: dora }] }),
      (e: unknown) => e instanceof FormatError && e.message.includes(file) && e.message.includes('use_dora'),
    );
  });

  it('refuses a calibrator fitted on another model', async () => {
    const cal = join(tmp, 'cal.json');
    const fitted = {
      method: 'temperature',
      score: 'confidence',
      model: { path: '/elsewhere', config_sha256: '0'.repeat(64), weights_fingerprint: '0'.repeat(64) },
      adapter: null,
      data: { path: 'x', sha256: '0'.repeat(64) },
      n: 1,
    };
    writeFileSync(
      cal,
      JSON.stringify({ type: 'temperature', version: 1, params: { temperature: 2 }, fitted_on: fitted }),
    );
    await assert.rejects(startServer({ modelDir: baseDir, port: 0, calibratorPath: cal }), ConfigError);
  });
});
