/**
 * ComPEFT decompression: decode a container's gap and sign streams into the ternary
 * reconstruction tau^ tensor by tensor, and write it back as a PEFT adapter directory or, for a
 * model delta, as base + tau^ (see compress.ts for the method, compress-format.ts for the file).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import {
  isJsonObject,
  openCheckpoint,
  TOKENIZER_FILE,
  writeCheckpoint,
  writeJsonAtomic,
  writeSafetensors,
} from '../io/index.ts';
import { copyTokenizerFiles } from '../models/index.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../peft/index.ts';
import { formatShape, shapeSize, Tensor } from '../tensor/index.ts';
import { COMPEFT_FILE, type CompeftFile, type CompeftKind, readCompeftFile } from './compress-format.ts';
import { BitReader, readRice } from './compress-golomb.ts';
import { Fingerprint, listProblems, readFloat64 } from './compress-tau.ts';

/** The container path for a directory written by compress, or a path to the file itself. */
export function compeftPath(input: string): string {
  return existsSync(input) && statSync(input).isDirectory() ? join(input, COMPEFT_FILE) : input;
}

/**
 * The ternary reconstruction tau^ of a container, tensor by tensor: calls `visit(index, values)`
 * with values = +scale / -scale at kept positions and 0 elsewhere (f64). The streams are checked
 * to hold exactly `kept` positions inside the vector and no extra bits.
 */
export function decodeCompeft(file: CompeftFile, visit: (index: number, values: Float64Array) => void): void {
  const { header } = file;
  const gaps = new BitReader(file.gaps, header.gap_bits, file.path, 'the gap stream');
  const signs = new BitReader(file.signs, header.kept, file.path, 'the sign stream');
  let remaining = header.kept;
  let next = remaining > 0 ? readRice(gaps, header.rice_parameter) : Number.POSITIVE_INFINITY;
  let offset = 0;
  header.tensors.forEach((tensor, index) => {
    const size = shapeSize(tensor.shape);
    const values = new Float64Array(size);
    while (next < offset + size) {
      values[next - offset] = signs.bit() === 1 ? -header.scale : header.scale;
      remaining--;
      next = remaining > 0 ? next + 1 + readRice(gaps, header.rice_parameter) : Number.POSITIVE_INFINITY;
    }
    offset += size;
    visit(index, values);
  });
  if (remaining > 0 || Number.isFinite(next)) {
    throw new FormatError(file.path, `the gap stream points past the ${header.total} entries (file corrupt)`);
  }
  if (gaps.consumed !== header.gap_bits) {
    throw new FormatError(
      file.path,
      `the gap stream has ${header.gap_bits - gaps.consumed} unused bits (file corrupt)`,
    );
  }
}

/** What decompression wrote. */
export interface DecompressResult {
  kind: CompeftKind;
  out: string;
  /** Files written, relative to `out`. */
  files: string[];
  tensors: number;
  kept: number;
  total: number;
}

/**
 * Decompress `input` (a directory written by compress, or the compeft.bin file) into `outDir`: a
 * PEFT adapter directory for an adapter, or a model directory (base + tau^, F32; config from the
 * tuned model; tokenizer files copied from the base) for a model delta, which needs `base`: the
 * same base model it was compressed against (checked by fingerprint). Everything is read and
 * checked before `outDir` is written.
 */
export function decompress(input: string, outDir: string, options: { base?: string } = {}): DecompressResult {
  const file = readCompeftFile(compeftPath(input));
  const { header } = file;
  if (header.kind === 'lora-adapter') {
    if (!isJsonObject(header.adapter_config)) {
      throw new FormatError(file.path, 'an adapter container must hold adapter_config (the header has none)');
    }
    const tensors = new Map<string, Tensor>();
    decodeCompeft(file, (index, values) => {
      const t = header.tensors[index]!;
      tensors.set(t.name, Tensor.wrap(Float32Array.from(values), t.shape, { track: false }));
    });
    mkdirSync(outDir, { recursive: true });
    writeSafetensors(join(outDir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
    writeJsonAtomic(join(outDir, ADAPTER_CONFIG_FILE), header.adapter_config);
    return {
      kind: header.kind,
      out: outDir,
      files: [ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE],
      tensors: tensors.size,
      kept: header.kept,
      total: header.total,
    };
  }
  const baseDir = options.base;
  if (baseDir === undefined) {
    throw new ConfigError(
      `${file.path} holds a model delta: give the base model it was compressed against (--base DIR)`,
    );
  }
  if (!isJsonObject(header.model_config)) {
    throw new FormatError(file.path, 'a model-delta container must hold model_config (the header has none)');
  }
  const base = openCheckpoint(baseDir);
  const tensors = new Map<string, Tensor>();
  try {
    const problems: string[] = [];
    const wanted = new Set(header.tensors.map((t) => t.name));
    for (const t of header.tensors) {
      if (!base.has(t.name)) problems.push(`'${t.name}' is missing from ${baseDir}`);
      else if (formatShape(base.info(t.name).shape) !== formatShape(t.shape)) {
        problems.push(
          `'${t.name}' is ${formatShape(base.info(t.name).shape)} in ${baseDir} but ${formatShape(t.shape)} in the delta`,
        );
      }
    }
    for (const name of base.names())
      if (!wanted.has(name)) problems.push(`'${name}' of ${baseDir} is not in the delta`);
    if (problems.length > 0) {
      throw new TensorMismatchError(`${baseDir} is not the base of ${file.path} (${listProblems(problems)})`);
    }
    const fingerprint = new Fingerprint();
    decodeCompeft(file, (index, values) => {
      const t = header.tensors[index]!;
      const w = readFloat64(base, t.name);
      fingerprint.add(t.name, t.shape, w);
      const out = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) out[i] = w[i]! + values[i]!;
      tensors.set(t.name, Tensor.wrap(out, t.shape, { track: false }));
    });
    if (header.base_fingerprint !== null && fingerprint.value() !== header.base_fingerprint) {
      throw new ConfigError(
        `${baseDir} is not the base ${file.path} was compressed against (fingerprint ${fingerprint.value()}, expected ${header.base_fingerprint}${header.source.base ? `, from ${header.source.base}` : ''})`,
      );
    }
  } finally {
    base.close();
  }
  const written = writeCheckpoint(outDir, tensors, { metadata: { format: 'pt' } });
  const config = { ...header.model_config, torch_dtype: 'float32' };
  writeJsonAtomic(join(outDir, 'config.json'), config);
  const files = [...written.files, 'config.json'];
  if (isJsonObject(header.generation_config)) {
    writeJsonAtomic(join(outDir, 'generation_config.json'), header.generation_config);
    files.push('generation_config.json');
  }
  if (existsSync(join(baseDir, TOKENIZER_FILE))) {
    copyTokenizerFiles(baseDir, outDir);
    files.push(TOKENIZER_FILE);
  }
  return {
    kind: header.kind,
    out: outDir,
    files,
    tensors: tensors.size,
    kept: header.kept,
    total: header.total,
  };
}
