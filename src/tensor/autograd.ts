/**
 * Reverse-mode autograd on a tape. An op calls `record` only when `needsGrad(...inputs)`: frozen
 * weights and `noGrad` code cost no tape memory. `backward(root)` walks the nodes reachable from
 * root in reverse topological order, accumulates into leaf `.grad`, and frees each node (its saved
 * tensors go back to the pool) as soon as it has run, so memory falls during the backward pass.
 */
import { kernelsFor } from '../backend/index.ts';
import { closeFrame, openFrame, type Releasable } from './scope.ts';
import { contiguousStrides, formatShape, Tensor } from './tensor.ts';

/** One recorded op. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
  /** Tensors whose data `backward` reads; each holds a reference until the node is freed. */
  readonly saved: readonly Tensor[];
  /** Gradients of the inputs (null where none flows) from the outputs' gradients (null = zero). */
  backward(gradOutputs: readonly (Tensor | null)[]): readonly (Tensor | null)[];
}

let gradEnabled = true;

/** Run fn with gradient recording off (inference). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Run fn with gradient recording on (inside a noGrad block). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** True when an op on these inputs must record itself on the tape. */
export function needsGrad(...inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t?.requiresGrad) return true;
  return false;
}

/**
 * Put an op on the tape. `saved` must list every tensor whose data `backward` reads (inputs or
 * outputs); they stay alive until the node is freed even if their scope ends.
 */
export function record(
  op: string,
  inputs: readonly Tensor[],
  outputs: readonly Tensor[],
  saved: readonly Tensor[],
  backward: GradNode['backward'],
): void {
  for (const t of saved) t.retain();
  const node: GradNode = { op, inputs, outputs, saved, backward };
  for (const out of outputs) {
    out.requiresGrad = true;
    out.node = node;
  }
}

function freeNode(node: GradNode): void {
  for (const out of node.outputs) if (out.node === node) out.node = null;
  for (const t of node.saved) t.release();
}

/** Nodes reachable from root, in an order where every node comes after the nodes it feeds. */
function reverseTopological(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const visited = new Set<GradNode>();
  const stack: [GradNode, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1]++;
      const child = node.inputs[i]!.node;
      if (child && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

function addInto(dest: Tensor, g: Tensor, op: string): void {
  if (dest.dtype !== g.dtype || dest.size !== g.size) {
    throw new Error(
      `backward (${op}): gradient ${formatShape(g.shape)} ${g.dtype} does not match ${formatShape(dest.shape)} ${dest.dtype}`,
    );
  }
  const k = kernelsFor(dest.dtype === 'f64');
  const strides = contiguousStrides([dest.size]);
  k.binary('add', dest.floatData(), strides, g.floatData(), strides, dest.floatData(), [dest.size]);
}

function cloneUntracked(g: Tensor): Tensor {
  const copy = Tensor.alloc(g.shape, g.dtype, false, { track: false });
  (copy.data as Float32Array).set(g.data as Float32Array);
  return copy;
}

/**
 * Backpropagate from `root` (a scalar unless `gradient` is given). Leaf tensors that require grad
 * get `.grad` (accumulated across calls); the tape from root is freed.
 */
export function backward(root: Tensor, gradient?: Tensor): void {
  if (!root.node) {
    if (root.requiresGrad) {
      throw new Error(
        `backward: ${root.describe()} is a leaf or its graph was already freed by an earlier backward()`,
      );
    }
    throw new Error(
      `backward: ${root.describe()} does not require grad (no input of the computation requires grad)`,
    );
  }
  if (!gradient && root.size !== 1) {
    throw new Error(`backward: ${root.describe()} is not a scalar; pass the gradient of the output`);
  }
  const grads = new Map<Tensor, Tensor>();
  const frame = openFrame();
  try {
    let seed: Tensor;
    if (gradient) {
      if (gradient.size !== root.size) {
        throw new Error(
          `backward: gradient ${formatShape(gradient.shape)} does not match output ${formatShape(root.shape)}`,
        );
      }
      seed = cloneUntracked(gradient);
    } else {
      seed = Tensor.alloc(root.shape, root.dtype, false, { track: false });
      (seed.data as Float32Array).fill(1);
    }
    grads.set(root, seed);
    for (const node of reverseTopological(root.node)) {
      runNode(node, grads, frame);
    }
  } finally {
    closeFrame(frame);
    for (const t of frame) t.release();
    for (const g of grads.values()) g.release();
  }
}

function runNode(node: GradNode, grads: Map<Tensor, Tensor>, frame: Set<Releasable>): void {
  const gradOutputs: (Tensor | null)[] = [];
  const ownedOutputs = new Set<Tensor>();
  for (const out of node.outputs) {
    const g = grads.get(out) ?? null;
    if (g) {
      grads.delete(out);
      ownedOutputs.add(g);
    }
    gradOutputs.push(g);
  }
  if (ownedOutputs.size === 0) {
    freeNode(node);
    return;
  }
  // backward rules use ops; they must not record onto the tape themselves
  const inputGrads = noGrad(() => node.backward(gradOutputs));
  if (inputGrads.length !== node.inputs.length) {
    throw new Error(
      `backward (${node.op}): rule returned ${inputGrads.length} gradients for ${node.inputs.length} inputs`,
    );
  }
  node.inputs.forEach((input, i) => {
    const g = inputGrads[i];
    if (!g || !input.requiresGrad) return;
    if (g.size !== input.size) {
      throw new Error(
        `backward (${node.op}): gradient ${formatShape(g.shape)} for input ${i} of shape ${formatShape(input.shape)}`,
      );
    }
    const isLeaf = input.node === null;
    const existing = isLeaf ? input.grad : (grads.get(input) ?? null);
    if (existing) {
      addInto(existing, g, node.op);
      return;
    }
    // Take ownership of g when nobody else holds it; otherwise store a private copy (it will be
    // accumulated into in place later).
    let stored: Tensor;
    if (frame.has(g)) {
      frame.delete(g);
      stored = g;
    } else if (ownedOutputs.has(g)) {
      ownedOutputs.delete(g);
      stored = g;
    } else {
      stored = cloneUntracked(g);
    }
    const shaped =
      stored.shape.length === input.shape.length && stored.shape.every((d, j) => d === input.shape[j]);
    if (!shaped) {
      const reshaped = stored.view(input.shape, { track: false });
      stored.release();
      stored = reshaped;
    }
    if (isLeaf) input.grad = stored;
    else grads.set(input, stored);
  });
  for (const t of frame) t.release();
  frame.clear();
  for (const g of ownedOutputs) g.release();
  freeNode(node);
}
