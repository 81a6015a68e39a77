/**
 * Model checkpoints in a Hugging Face folder: one `model.safetensors`, or shards
 * `model-00001-of-0000N.safetensors` listed by `model.safetensors.index.json`
 * (`{metadata: {total_size}, weight_map: {tensor name: shard file}}`), behind one TensorReader.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { FormatError, TensorMismatchError } from '../errors.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { briefJson, isJsonObject, readJsonObject, writeJsonAtomic } from './json.ts';
import {
  type NamedTensors,
  openSafetensors,
  type ReadOptions,
  type SafetensorsReader,
  sortedTensorEntries,
  type TensorInfo,
  type TensorReader,
  tensorByteLength,
  writeSafetensors,
} from './safetensors.ts';

/** The single-file checkpoint name. */
export const SAFETENSORS_FILE = 'model.safetensors';
/** The index of a sharded checkpoint. */
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
/** Default shard size limit of `writeCheckpoint`, as transformers' `max_shard_size="5GB"`. */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

const SHARD_NAME = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** The file name of shard `index` (1-based) of `count`. */
export function shardFileName(index: number, count: number): string {
  return `model-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
}

/** A sharded checkpoint: each name is read from the shard the index maps it to. */
class ShardedReader implements TensorReader {
  private readonly shards: Map<string, SafetensorsReader>;
  private readonly weightMap: Map<string, string>;
  private readonly sortedNames: string[];

  constructor(
    readonly path: string,
    readonly indexPath: string,
  ) {
    const index = readJsonObject(indexPath, 'a safetensors index');
    const rawMap = index.weight_map;
    if (!isJsonObject(rawMap)) throw new FormatError(indexPath, "'weight_map' is missing or not an object");
    this.weightMap = new Map();
    const namesByShard = new Map<string, string[]>();
    for (const [name, file] of Object.entries(rawMap)) {
      if (typeof file !== 'string' || file === '' || isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
        throw new FormatError(
          indexPath,
          `weight_map['${name}'] is ${briefJson(file)}, expected a shard file name in the folder`,
        );
      }
      this.weightMap.set(name, file);
      const list = namesByShard.get(file) ?? [];
      list.push(name);
      namesByShard.set(file, list);
    }
    this.shards = new Map();
    try {
      for (const [file, names] of namesByShard) {
        const shardPath = join(path, file);
        if (!existsSync(shardPath)) {
          throw new FormatError(
            indexPath,
            `shard '${file}' (holding ${names.length} tensors, e.g. '${names[0]}') is missing: expected ${shardPath}`,
          );
        }
        const reader = openSafetensors(shardPath);
        this.shards.set(file, reader);
        const absent = names.find((name) => !reader.has(name));
        if (absent !== undefined) {
          throw new FormatError(
            indexPath,
            `tensor '${absent}' is mapped to shard '${file}', which does not contain it`,
          );
        }
      }
    } catch (error) {
      this.close();
      throw error;
    }
    this.sortedNames = [...this.weightMap.keys()].sort();
  }

  names(): string[] {
    return [...this.sortedNames];
  }

  has(name: string): boolean {
    return this.weightMap.has(name);
  }

  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }

  read(name: string, options?: ReadOptions): Tensor {
    return this.shard(name).read(name, options);
  }

  readMapped(name: string, options?: ReadOptions): Tensor | null {
    return this.shard(name).readMapped(name, options);
  }

  metadata(): Record<string, string> {
    const merged: Record<string, string> = {};
    for (const reader of this.shards.values()) Object.assign(merged, reader.metadata());
    return merged;
  }

  close(): void {
    for (const reader of this.shards.values()) reader.close();
  }

  private shard(name: string): SafetensorsReader {
    const file = this.weightMap.get(name);
    if (file === undefined) {
      throw new TensorMismatchError(
        `${this.indexPath}: no tensor named '${name}' (the checkpoint has ${this.weightMap.size} tensors)`,
      );
    }
    return this.shards.get(file)!;
  }
}

/**
 * Open the checkpoint in the folder `dir`: `model.safetensors` if present (as transformers prefers
 * it), else the shards listed by `model.safetensors.index.json`. Headers are parsed now; a missing
 * shard is a FormatError naming the index and the shard.
 */
export function openCheckpoint(dir: string): TensorReader {
  const single = join(dir, SAFETENSORS_FILE);
  if (existsSync(single)) return openSafetensors(single);
  const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
  if (existsSync(indexPath)) return new ShardedReader(dir, indexPath);
  throw new FormatError(dir, `no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE} in this folder`);
}

/** Options of `writeCheckpoint`. */
export interface WriteCheckpointOptions {
  /** Largest data size of one file before sharding (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** `__metadata__` of every file written (default `{format: 'pt'}`). */
  metadata?: Record<string, string>;
}

/** What `writeCheckpoint` wrote. */
export interface WrittenCheckpoint {
  /** Files written, relative to the folder (shards, then the index when sharded). */
  files: string[];
  /** Bytes of tensor data in all files. */
  totalSize: number;
}

/**
 * Write `tensors` into the folder `dir` (created if needed): one `model.safetensors` when the data
 * fits in `maxShardBytes`, else shards `model-0000i-of-0000N.safetensors` (filled in sorted name
 * order, a new shard started when the next tensor would overflow the limit; a tensor larger than
 * the limit gets a shard of its own) plus `model.safetensors.index.json` with
 * `metadata: {total_size}`. Each file is written atomically; afterwards, checkpoint files of the
 * other layout or stale shards left from an earlier write are removed so the folder holds exactly
 * one checkpoint. (The folder as a whole is not swapped atomically: train/ does that.)
 */
export function writeCheckpoint(
  dir: string,
  tensors: NamedTensors,
  options: WriteCheckpointOptions = {},
): WrittenCheckpoint {
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0))
    throw new RangeError(`writeCheckpoint: maxShardBytes must be positive, got ${maxShardBytes}`);
  const metadata = options.metadata ?? { format: 'pt' };
  const entries = sortedTensorEntries(tensors);
  const totalSize = entries.reduce((sum, [, tensor]) => sum + tensorByteLength(tensor), 0);
  mkdirSync(dir, { recursive: true });

  if (totalSize <= maxShardBytes) {
    writeSafetensors(join(dir, SAFETENSORS_FILE), new Map(entries), metadata);
    removeStale(dir, new Set([SAFETENSORS_FILE]));
    return { files: [SAFETENSORS_FILE], totalSize };
  }

  const groups: [string, Tensor][][] = [];
  let current: [string, Tensor][] = [];
  let currentBytes = 0;
  for (const entry of entries) {
    const bytes = tensorByteLength(entry[1]);
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(entry);
    currentBytes += bytes;
  }
  if (current.length > 0) groups.push(current);

  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    const file = shardFileName(i + 1, groups.length);
    writeSafetensors(join(dir, file), new Map(group), metadata);
    for (const [name] of group) weightMap[name] = file;
    files.push(file);
  });
  writeJsonAtomic(join(dir, SAFETENSORS_INDEX_FILE), {
    metadata: { total_size: totalSize },
    weight_map: weightMap,
  });
  files.push(SAFETENSORS_INDEX_FILE);
  removeStale(dir, new Set(files));
  return { files, totalSize };
}

/** Remove checkpoint files in `dir` (single file, index, shards) that are not in `keep`. */
function removeStale(dir: string, keep: Set<string>): void {
  for (const name of readdirSync(dir)) {
    const isCheckpointFile =
      name === SAFETENSORS_FILE || name === SAFETENSORS_INDEX_FILE || SHARD_NAME.test(name);
    if (isCheckpointFile && !keep.has(name)) rmSync(join(dir, name), { force: true });
  }
}
