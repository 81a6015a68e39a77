/**
 * Fuzzed PEFT adapters: adapter_config.json (r, lora_alpha, target_modules, ... replaced by hostile
 * values, NaN / Infinity literals, deep nesting, invalid UTF-8) and adapter_model.safetensors
 * (header bytes mutated). Loading the adapter onto its base either works or throws a one-line
 * AttuneError naming the adapter folder.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel } from '../../../src/models/load.ts';
import { applyLora, loadAdapter } from '../../../src/peft/index.ts';
import { writeTinyModel } from '../../helpers/tiny-run.ts';
import {
  deepJsonText,
  FuzzReport,
  fuzzDir,
  hostileLiteral,
  hostileValue,
  jsonPaths,
  mutateBytes,
  Rng,
  withValueAt,
} from './harness.ts';

const { dir, remove } = fuzzDir();
after(remove);

describe('fuzzed adapters', () => {
  it('120 mutated adapters: typed errors naming the adapter folder', () => {
    const base = join(dir, 'base');
    writeTinyModel(base, { hidden: 16, layers: 1 });
    const adapterDir = join(dir, 'adapter');
    const loaded = loadModel(base);
    applyLora(loaded.model, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] }).save(adapterDir);
    const config = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
    const weights = readFileSync(join(adapterDir, 'adapter_model.safetensors'));
    const headerEnd = 8 + weights.readUInt32LE(0);
    const rng = new Rng(61);
    const report = new FuzzReport();
    for (let i = 0; i < 120; i++) {
      const folder = join(dir, `adapter-${i}`);
      cpSync(adapterDir, folder, { recursive: true });
      let what: string;
      if (i % 4 === 3) {
        const { bytes, what: how } = mutateBytes(weights.subarray(0, headerEnd), rng);
        writeFileSync(
          join(folder, 'adapter_model.safetensors'),
          Buffer.concat([bytes, weights.subarray(headerEnd)]),
        );
        what = `weights header ${how}`;
      } else {
        const text = JSON.stringify(config, null, 2);
        let mutated: Uint8Array;
        const kind = rng.int(4);
        if (kind <= 1) {
          const target = rng.pick(jsonPaths(config));
          const value = rng.int(8) === 0 ? undefined : hostileValue(rng);
          mutated = Buffer.from(JSON.stringify(withValueAt(config, target, value)));
          what = `${JSON.stringify(target)} := ${(JSON.stringify(value) ?? 'deleted').slice(0, 40)}`;
        } else if (kind === 2) {
          const m = rng.pick([...text.matchAll(/(?<=: )(-?\d[\d.e-]*|"[^"]*"|true|false|null)/g)]);
          const value = rng.int(3) === 0 ? deepJsonText(rng) : hostileLiteral(rng);
          mutated = Buffer.from(text.slice(0, m.index) + value + text.slice(m.index! + m[0].length));
          what = `${m[0].slice(0, 20)} := ${value.slice(0, 20)}`;
        } else {
          ({ bytes: mutated, what } = mutateBytes(Buffer.from(text), rng));
        }
        writeFileSync(join(folder, 'adapter_config.json'), mutated);
      }
      report.run(`adapter case ${i} (${what})`, [folder], () => {
        loadAdapter(loadModel(base).model, folder);
      });
    }
    report.check(40);
  });
});
