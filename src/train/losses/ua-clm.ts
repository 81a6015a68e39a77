/**
 * `ua-clm` — uncertainty-aware causal LM loss ("Enhancing Trust in LLMs with Uncertainty-Aware
 * Fine-Tuning"), METHODS.md §1:
 *   L = NLL + lambda * L_ua
 *   L_ua = - mean_{i incorrect} P_i log(tanh(H_i) + eps) - mean_{i correct} (1 - P_i) log(1 - tanh(H_i) + eps)
 * Confident-but-wrong tokens are pushed to higher entropy, unsure-but-right ones to lower. Group
 * means are over the whole optimizer step (so accumulation equals one large batch); an empty group
 * contributes 0. P is the gold-token probability (default) or the max probability; its gradient
 * can be stopped.
 */
import { z } from 'zod';
import { registerLoss, type TokenLoss } from './registry.ts';

export interface UaClmOptions {
  /** Weight of the uncertainty term (default 1). */
  lambda: number;
  /** Which probability is P: the gold token's ('gold', default) or the top one ('max'). */
  probability: 'gold' | 'max';
  /** Treat P as a constant in the uncertainty term (default false). */
  stopGradient: boolean;
  /** Inside the logs (default 1e-6). */
  eps: number;
}

/** The UA-CLM loss with its per-token coefficients on (logp, H, top1). */
export function uaClmLoss(options: UaClmOptions): TokenLoss {
  const { lambda, probability, stopGradient, eps } = options;
  return {
    name: 'ua-clm',
    needsCorrectCounts: true,
    compute(terms, step) {
      const n = Math.max(1, step.stepTokens);
      const nCorrect = step.stepCorrect;
      const nIncorrect = step.stepTokens - step.stepCorrect;
      const cLogp = new Float32Array(terms.count);
      const cEntropy = new Float32Array(terms.count);
      const cTop1 = probability === 'max' ? new Float32Array(terms.count) : null;
      let nll = 0;
      let uaIncorrect = 0;
      let uaCorrect = 0;
      for (let i = 0; i < terms.count; i++) {
        nll -= terms.logp[i]!;
        cLogp[i] = -1 / n;
        const logP = probability === 'max' ? terms.top1[i]! : terms.logp[i]!;
        const P = Math.exp(logP);
        const t = Math.tanh(terms.entropy[i]!);
        const dt = 1 - t * t;
        let dLogP: number;
        if (terms.correct[i]! > 0) {
          const w = lambda / nCorrect;
          const inner = Math.log(1 - t + eps);
          uaCorrect -= (1 - P) * inner;
          cEntropy[i] = (w * (1 - P) * dt) / (1 - t + eps);
          dLogP = w * P * inner;
        } else {
          const w = lambda / nIncorrect;
          const inner = Math.log(t + eps);
          uaIncorrect -= P * inner;
          cEntropy[i] = (-w * P * dt) / (t + eps);
          dLogP = -w * P * inner;
        }
        if (!stopGradient) {
          if (cTop1) cTop1[i] = dLogP;
          else cLogp[i]! += dLogP;
        }
      }
      const ua = (nIncorrect > 0 ? uaIncorrect / nIncorrect : 0) + (nCorrect > 0 ? uaCorrect / nCorrect : 0);
      const value = nll / n + lambda * ua;
      return { value, parts: { nll: nll / n, ua }, cLogp, cEntropy, cTop1 };
    },
  };
}

registerLoss({
  name: 'ua-clm',
  description: 'uncertainty-aware CLM: NLL + lambda * entropy calibration term (METHODS.md section 1)',
  options: z.object({
    lambda: z.number().min(0).default(1).describe('weight of the uncertainty term'),
    probability: z
      .enum(['gold', 'max'])
      .default('gold')
      .describe("P in the loss: the gold token's probability or the top one's"),
    stop_gradient: z.boolean().default(false).describe('treat P as a constant in the uncertainty term'),
    eps: z.number().positive().default(1e-6).describe('inside the logs'),
  }),
  create: (o) =>
    uaClmLoss({ lambda: o.lambda, probability: o.probability, stopGradient: o.stop_gradient, eps: o.eps }),
});
