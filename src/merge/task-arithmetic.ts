/**
 * The building block of mergekit's generalized task arithmetic family (task_arithmetic, TIES, DARE,
 * breadcrumbs): per tensor, each model's task vector Δ = θ − base is sparsified (or not), weighted,
 * optionally sign-elected (TIES consensus), summed, optionally normalized and scaled by `lambda`.
 * A method file picks the sparsification and whether to elect signs; `scope: global` adds the
 * model-wide magnitude cuts, found in one or two streaming passes before the merge.
 */
import { Rng } from '../tensor/index.ts';
import { combineTaskVectors, type TaskVector } from './combine.ts';
import type { MergeConfigView, MergeMethod, PrepareContext, ReportProblem, TensorContext } from './method.ts';
import type { Divisor, Rescale } from './parameters.ts';
import { isBufferName } from './plan.ts';
import { RadixRankSelector, type RankCut } from './select.ts';
import { isScalarSetting, type Setting } from './settings.ts';
import { rankBand, type Sparsification, sparsifyTaskVector } from './sparsify.ts';

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The seed of DARE's drops for one (tensor, model): independent of the tensor order. */
export function dropSeed(seed: number, tensorName: string, modelIndex: number): number {
  return ((seed >>> 0) ^ fnv1a(tensorName) ^ Math.imul(modelIndex + 1, 0x9e3779b9)) >>> 0;
}

/** Model-wide |Δ| cuts of each entry (null where the entry is not trimmed). */
type GlobalCuts = ({ start: RankCut; end: RankCut } | null)[];

/** The |Δ| cuts of `scope: global`: rank every entry of the whole model per model (TIES paper). */
function globalCuts(method: 'magnitude' | 'magnitude_outliers', context: PrepareContext) {
  const { plan, tracker } = context;
  const base = plan.base!;
  const names = plan.names.filter((n) => !isBufferName(n));
  const total = names.reduce((sum, n) => sum + plan.shapes.get(n)!.reduce((p, d) => p * d, 1), 0);
  const first = plan.params.get(names[0]!)!.models;
  const selectors = plan.entries.map((_, i) => {
    const density = first.density?.[i] ?? 1;
    if (density >= 1) return null;
    const band = rankBand(method, total, density, first.gamma?.[i] ?? 0);
    return new RadixRankSelector([band.start, band.end]);
  });
  const pass = (visit: (selector: RadixRankSelector, bits: Uint32Array) => void) => {
    for (const name of names) {
      const inputs = context.inputs();
      const b = inputs.get(base, name);
      plan.entries.forEach((e, i) => {
        const selector = selectors[i];
        if (!selector) return;
        const theta = e.source.read(name, tracker);
        const mags = inputs.scratch(b.length);
        const bits = new Uint32Array(mags.buffer);
        for (let j = 0; j < theta.length; j++) mags[j] = Math.abs(theta[j]! - b[j]!);
        tracker.remove(theta.byteLength);
        visit(selector, bits);
      });
      inputs.releaseAll();
    }
  };
  pass((s, bits) => s.addHighBits(bits));
  for (const s of selectors) s?.finishHigh();
  let passes = 1;
  if (selectors.some((s) => s?.needsLow)) {
    pass((s, bits) => s.addLowBits(bits));
    passes++;
  }
  const cuts: GlobalCuts = selectors.map((s) => {
    if (!s) return null;
    const [start, end] = s.cuts();
    return { start: start!, end: end! };
  });
  return { state: cuts, passes };
}

/** `scope: global` ranks over the whole model, so density and gamma must be one number each. */
function checkGlobalScope(
  modelParameters: readonly string[],
  config: MergeConfigView,
  problem: ReportProblem,
) {
  if (config.parameters.scope !== 'global') return;
  const message = 'scope: global needs a single number, not a per-tensor setting';
  for (const name of ['density', 'gamma']) {
    if (!modelParameters.includes(name)) continue;
    const global = config.parameters[name] as Setting | undefined;
    if (global !== undefined && !isScalarSetting(global))
      problem(`parameters.${name}: ${message}`, ['parameters', name]);
    config.models.forEach((m, i) => {
      const own = m.parameters[name] as Setting | undefined;
      if (own !== undefined && !isScalarSetting(own))
        problem(`models[${i}].parameters.${name}: ${message}`, ['models', i, 'parameters', name]);
    });
  }
}

/** The rule of one tensor: sparsify each task vector, then combine (see the file comment). */
function mergeTaskVectors(sparsification: Sparsification | null, consensus: boolean, ctx: TensorContext) {
  const { models, global } = ctx.params;
  const base = ctx.base();
  // every input first (a LoRA fold's temporary update is gone before the scratch array exists)
  const thetas = ctx.entries.map((_, i) => ctx.model(i));
  const scratch = sparsification && sparsification !== 'random' ? ctx.scratch(base.length) : undefined;
  const cuts = ctx.prepared as GlobalCuts | null;
  const vectors: TaskVector[] = ctx.entries.map((e, i) => {
    const theta = thetas[i]!;
    let scale = 1;
    if (sparsification) {
      scale = sparsifyTaskVector(
        theta,
        base,
        {
          method: sparsification,
          density: models.density?.[i] ?? 1,
          gamma: models.gamma?.[i] ?? 0,
          rescale: (global.rescale as Rescale | undefined) ?? 'none',
          scope: global.scope === 'row' ? 'row' : 'tensor',
          rowLength: ctx.rowLength,
          rng: sparsification === 'random' ? new Rng(dropSeed(ctx.seed, ctx.name, e.index)) : undefined,
          cuts: cuts?.[i] ?? undefined,
        },
        scratch,
      ).scale;
    }
    return { theta, weight: models.weight?.[i] ?? 1, scale };
  });
  combineTaskVectors(
    base,
    vectors,
    {
      consensus,
      normalize: global.normalize === true,
      divisor: (global.divisor as Divisor | undefined) ?? 'weights',
      lambda: typeof global.lambda === 'number' ? global.lambda : 1,
    },
    base,
  );
  return base;
}

/** How a task-arithmetic method treats its task vectors. */
export interface TaskArithmeticRule {
  /** Sparsification of each task vector before combining (null: none). */
  sparsification: Sparsification | null;
  /** TIES sign election over the weighted task vectors. */
  consensus: boolean;
}

/**
 * The parts of a merge method a task-arithmetic rule provides: a base, the tensor rule, and for
 * magnitude sparsification the `scope: global` pre-pass and its check.
 */
export function taskArithmetic(
  rule: TaskArithmeticRule,
  modelParameters: readonly string[],
): Pick<MergeMethod, 'usesBase' | 'check' | 'prepare' | 'mergeTensor'> {
  const { sparsification, consensus } = rule;
  const ranked =
    sparsification === 'magnitude' || sparsification === 'magnitude_outliers' ? sparsification : null;
  return {
    usesBase: true,
    ...(ranked
      ? {
          check: (config, problem) => checkGlobalScope(modelParameters, config, problem),
          prepare: (context) =>
            context.plan.params.get(context.plan.names[0]!)?.global.scope === 'global'
              ? globalCuts(ranked, context)
              : null,
        }
      : {}),
    mergeTensor: (ctx) => mergeTaskVectors(sparsification, consensus, ctx),
  };
}
