/**
 * A toy tuner registered from outside src/, as docs/extending.md shows: train only the norm
 * weights (option `include_final`: also the final norm). Its adapter saves those weights.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { openSafetensors, writeJsonAtomic, writeSafetensors } from '../../src/io/index.ts';
import type { Module, Parameter } from '../../src/nn/index.ts';
import {
  type Adapter,
  registerTuner,
  restoreTrainable,
  snapshotTrainable,
  type Tuner,
} from '../../src/peft/index.ts';

interface NormsConfig {
  includeFinal: boolean;
}

function normsOnlyAdapter(model: Module, config: NormsConfig): Adapter {
  const flags = snapshotTrainable(model);
  model.freeze();
  const named = model
    .namedParameters()
    .filter(([n]) => n.endsWith('norm.weight') && (config.includeFinal || n.includes('layers.')));
  for (const [, p] of named) p.unfreeze();
  const adapter: Adapter = {
    method: 'norms-only',
    model,
    merged: false,
    trainableParameters: () => named.map(([, p]) => p),
    namedTrainableParameters: () => [...named],
    state: () => new Map(named),
    merge() {},
    unmerge() {},
    save(dir) {
      mkdirSync(dir, { recursive: true });
      writeSafetensors(join(dir, 'adapter_model.safetensors'), new Map(named));
      writeJsonAtomic(join(dir, 'adapter_config.json'), {
        peft_type: 'NORMS_ONLY',
        include_final: config.includeFinal,
      });
    },
    load(dir) {
      const reader = openSafetensors(join(dir, 'adapter_model.safetensors'));
      for (const [name, p] of named) (p as Parameter).copyFrom(reader.read(name), true);
      reader.close();
    },
    unload() {
      restoreTrainable(flags);
      return model;
    },
    mergeAndUnload: () => adapter.unload(),
  };
  return adapter;
}

const options = z.object({
  include_final: z.boolean().default(true).describe('also train the final norm'),
});

export const normsTuner: Tuner<NormsConfig> = {
  name: 'norms-only',
  description: 'train the norm weights only',
  peftType: 'NORMS_ONLY',
  options,
  fromOptions: (o) => ({ includeFinal: options.parse(o).include_final }),
  apply: normsOnlyAdapter,
  configFromAdapterJson: (json) => ({ includeFinal: json.include_final !== false }),
};

registerTuner('norms-only', normsTuner);
