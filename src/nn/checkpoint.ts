/** Activation checkpointing of a module: tensor/'s `checkpoint` with the module's dropout replayed. */
import { checkpoint, type Tensor } from '../tensor/index.ts';
import { Dropout } from './dropout.ts';
import type { Module } from './module.ts';

/**
 * Run `fn(input)` (the module's forward) under activation checkpointing: only `input` is kept, and
 * backward recomputes the forward with the tape on. Every Dropout site under `module` has its
 * (key, offset) captured before the forward and restored for the recompute, so the recompute draws
 * the same masks; afterwards the sites are put back where the forward left them.
 */
export function checkpointModule(module: Module, fn: (input: Tensor) => Tensor, input: Tensor): Tensor {
  const sites = module.modules().filter((m): m is Dropout => m instanceof Dropout);
  const captureState = () => {
    const saved = sites.map((d) => ({ key: d.key, offset: d.offset }));
    return () => {
      sites.forEach((d, i) => {
        d.setKey(saved[i]!.key);
        d.offset = saved[i]!.offset;
      });
    };
  };
  return checkpoint(([x]) => fn(x!), [input], { parameters: module.parameters(), captureState });
}
