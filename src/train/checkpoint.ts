/**
 * Training checkpoints: `checkpoints/step-N/` holding the trainable weights
 * (`weights.safetensors`), the optimizer moments (`optimizer.safetensors` + `optimizer.json`) and the
 * trainer state (`trainer_state.json`: step, data position, RNG states, dropout offsets). A
 * checkpoint is written into a temporary directory, fsynced and renamed into place; then the
 * `checkpoints/latest` pointer is replaced atomically; older checkpoints beyond `keepLast` are
 * removed. A crash at any point leaves the previous checkpoint and pointer intact.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../errors.ts';
import {
  briefJson,
  openSafetensors,
  readJsonObject,
  writeDirAtomic,
  writeJsonAtomic,
  writeSafetensors,
  writeTextAtomic,
} from '../io/index.ts';
import { Tensor } from '../tensor/index.ts';
import type { OptimizerState } from './optim/index.ts';

export interface CheckpointContents {
  step: number;
  /** Trainable tensors by name (adapter state or full weights). */
  weights: Map<string, Tensor>;
  optimizer: OptimizerState;
  /** JSON-serialisable trainer state (data position, RNG states, ...). */
  trainerState: Record<string, unknown>;
}

const LATEST = 'latest';

function splitOptimizer(state: OptimizerState): {
  tensors: Map<string, Tensor>;
  json: Record<string, unknown>;
} {
  const tensors = new Map<string, Tensor>();
  const params = state.params.map((p, i) => {
    const buffers: Record<string, string | null> = {};
    for (const [key, buf] of Object.entries(p.buffers)) {
      if (buf === null) {
        buffers[key] = null;
        continue;
      }
      const name = `${i}.${key}`;
      tensors.set(name, Tensor.wrap(buf, [buf.length], { track: false }));
      buffers[key] = name;
    }
    return { name: p.name, shape: p.shape, step: p.step, buffers };
  });
  return { tensors, json: { ...state, params } };
}

/** Write checkpoint `step-N` under `runDir/checkpoints` atomically and update `latest`. */
export function saveCheckpoint(runDir: string, contents: CheckpointContents, keepLast: number): string {
  const root = join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const name = `step-${contents.step}`;
  const final = join(root, name);
  writeDirAtomic(final, (tmp) => {
    writeSafetensors(join(tmp, 'weights.safetensors'), contents.weights);
    const opt = splitOptimizer(contents.optimizer);
    writeSafetensors(join(tmp, 'optimizer.safetensors'), opt.tensors);
    writeJsonAtomic(join(tmp, 'optimizer.json'), opt.json);
    writeJsonAtomic(join(tmp, 'trainer_state.json'), { step: contents.step, ...contents.trainerState });
  });
  writeTextAtomic(join(root, LATEST), `${name}\n`);
  pruneCheckpoints(root, keepLast, name);
  return final;
}

function checkpointSteps(root: string): number[] {
  return readdirSync(root)
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function pruneCheckpoints(root: string, keepLast: number, latest: string): void {
  const steps = checkpointSteps(root);
  for (const step of steps.slice(0, Math.max(0, steps.length - keepLast))) {
    if (`step-${step}` !== latest) rmSync(join(root, `step-${step}`), { recursive: true, force: true });
  }
  // temporaries of a killed save (writeDirAtomic names them step-N.tmp-<pid>-<random>)
  for (const n of readdirSync(root))
    if (/\.tmp-\d+-[0-9a-f]+$/.test(n)) rmSync(join(root, n), { recursive: true, force: true });
}

/** The directory `checkpoints/latest` points to, or null when the run has no checkpoint. */
export function latestCheckpoint(runDir: string): string | null {
  const pointer = join(runDir, 'checkpoints', LATEST);
  if (!existsSync(pointer)) return null;
  const name = readFileSync(pointer, 'utf8').trim();
  const dir = join(runDir, 'checkpoints', name);
  if (!existsSync(dir)) throw new FormatError(pointer, `points to ${briefJson(name)}, which does not exist`);
  return dir;
}

/** Read a checkpoint directory written by `saveCheckpoint`. */
export function loadCheckpoint(dir: string): CheckpointContents {
  const trainerState = readJsonObject(join(dir, 'trainer_state.json'), 'trainer state');
  const weightsReader = openSafetensors(join(dir, 'weights.safetensors'));
  const weights = new Map<string, Tensor>();
  try {
    for (const n of weightsReader.names()) weights.set(n, weightsReader.read(n));
  } finally {
    weightsReader.close();
  }
  const optJson = readJsonObject(join(dir, 'optimizer.json'), 'optimizer state') as unknown as Omit<
    OptimizerState,
    'params'
  > & {
    params: (Omit<OptimizerState['params'][number], 'buffers'> & {
      buffers: Record<string, string | null>;
    })[];
  };
  const optReader = openSafetensors(join(dir, 'optimizer.safetensors'));
  try {
    const params = optJson.params.map((p) => {
      const buffers: Record<string, Float32Array | null> = {};
      for (const [key, ref] of Object.entries(p.buffers)) {
        buffers[key] = ref === null ? null : (optReader.read(ref).data as Float32Array);
      }
      return { ...p, buffers };
    });
    const step = trainerState.step;
    if (typeof step !== 'number')
      throw new FormatError(join(dir, 'trainer_state.json'), "field 'step' must be a number");
    return { step, weights, optimizer: { ...optJson, params } as OptimizerState, trainerState };
  } finally {
    optReader.close();
  }
}
