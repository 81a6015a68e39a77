/** `slerp`: spherical interpolation between the base and one other model (mergekit's slerp). */
import { z } from 'zod';
import { slerpTensors } from '../combine.ts';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';

registerMergeMethod({
  name: 'slerp',
  description: 'spherical interpolation from the base (t = 0) to the one other model (t = 1)',
  options: z.object({ t: p.t() }),
  modelParameters: [],
  usesBase: true,
  bench: { models: 1, parameters: { t: 0.5 } },
  check(config, problem) {
    if (config.others !== 1)
      problem(`slerp merges the base with exactly one other model; found ${config.others} other model(s)`, [
        'models',
      ]);
    if (config.parameters.t === undefined) problem("slerp needs the global parameter 't'", ['parameters']);
  },
  checkTensors(params) {
    return [...params]
      .filter(([, resolved]) => resolved.global.t === undefined)
      .map(([name]) => `'t' has no value for tensor '${name}' (no filter matches it)`);
  },
  mergeTensor(ctx) {
    const base = ctx.base();
    if (slerpTensors(ctx.params.global.t as number, base, ctx.model(0), base).lerp) ctx.count('lerp');
    return base;
  },
  report: (counters) => ({ lerpFallbacks: counters.lerp ?? 0 }),
});
