/**
 * Activation checkpointing (the standard recompute scheme, Chen et al. 2016 "Training Deep Nets
 * with Sublinear Memory Cost"): `checkpoint(fn, inputs)` runs fn with the tape off, so none of its
 * intermediates are kept, and records one node that holds only the inputs. In backward that node
 * runs fn again with the tape on (same kernels, same inputs: the same values) and back-propagates
 * through the recomputed graph, which is freed at once. Parameters that fn uses are leaves, so
 * their gradients accumulate into `.grad` inside the recompute exactly as without checkpointing.
 *
 * Randomness: fn must compute the same thing twice. State it draws (dropout offsets) is captured
 * before the forward by `options.captureState`, which returns a function that puts it back; the
 * recompute runs between that restore and a restore of the state the forward left behind.
 */
import { backward, enableGrad, isGradEnabled, noGrad, record } from './autograd.ts';
import { scope, track } from './scope.ts';
import type { Tensor } from './tensor.ts';

export interface CheckpointOptions {
  /** Tensors fn reads besides `inputs` (its parameters): a node is recorded when one requires grad. */
  parameters?: readonly Tensor[];
  /** Snapshot the random state fn advances; the returned function restores the snapshot. */
  captureState?: () => () => void;
}

/**
 * fn(inputs) with its activations recomputed in backward instead of kept; see the file comment.
 * Without gradient recording, or when nothing fn reads requires grad, it is just fn(inputs).
 */
export function checkpoint(
  fn: (inputs: readonly Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  options: CheckpointOptions = {},
): Tensor {
  const anyGrad =
    inputs.some((t) => t.requiresGrad) || (options.parameters ?? []).some((t) => t.requiresGrad);
  if (!isGradEnabled() || !anyGrad) return fn(inputs);
  const restoreBefore = options.captureState?.() ?? null;
  const out = noGrad(() => fn(inputs));
  record('checkpoint', inputs, [out], inputs, ([g]) => {
    const restoreAfter = options.captureState?.() ?? null;
    restoreBefore?.();
    // leaves standing in for the inputs: their .grad is the inputs' gradient
    const leaves = inputs.map((t) => {
      const leaf = t.view(t.shape, { track: false });
      leaf.requiresGrad = t.requiresGrad;
      return leaf;
    });
    try {
      enableGrad(() =>
        scope(() => {
          const recomputed = fn(leaves);
          if (recomputed.node) backward(recomputed, g!);
        }),
      );
    } finally {
      restoreAfter?.();
    }
    return leaves.map((leaf) => {
      const grad = leaf.grad;
      leaf.grad = null;
      leaf.release();
      // hand the untracked leaf gradient to the autograd engine's frame, which takes ownership
      if (grad) track(grad);
      return grad;
    });
  });
  return out;
}
