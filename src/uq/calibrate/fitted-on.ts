/**
 * What a calibrator was fitted on (the `fitted_on` object of a calibrator file): the method, the
 * score it maps, the model and adapter identities, the data file's sha256 and the counts. Applying a
 * calibrator to another model, adapter or score is refused; other data is the normal case.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ConfigError, FormatError } from '../../errors.ts';
import { isJsonObject } from '../../io/index.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../../peft/index.ts';

/** A model's identity: sha256 of config.json and a fingerprint of its safetensors weights. */
export interface ModelIdentity {
  /** The folder it was read from (informative only; never compared). */
  path: string;
  config_sha256: string;
  /** sha256 over each *.safetensors file's name, size, first and last MiB (cheap for big models). */
  weights_fingerprint: string;
}

/** An adapter's identity: sha256 of adapter_config.json followed by adapter_model.safetensors. */
export interface AdapterIdentity {
  path: string;
  sha256: string;
}

/** The provenance a fitted calibrator carries. */
export interface FittedOn {
  /** The calibrator kind (temperature, platt, isotonic). */
  method: string;
  /** The score it maps: "confidence" (exp mean log-prob) or a score / field name. */
  score: string;
  /** Null when fitted from a predictions file (no model to identify). */
  model: ModelIdentity | null;
  /** Null when fitted without an adapter (or from a predictions file). */
  adapter: AdapterIdentity | null;
  /** The held-out file: its path (informative) and sha256. */
  data: { path: string; sha256: string };
  /** Records fitted on. */
  n: number;
  /** Answer tokens fitted on (temperature only). */
  tokens?: number;
}

const MIB = 1 << 20;

/** sha256 (hex) of a whole file. */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function fingerprintFile(hash: ReturnType<typeof createHash>, path: string): void {
  const size = statSync(path).size;
  hash.update(`${basename(path)}\0${size}\0`);
  const fd = openSync(path, 'r');
  try {
    const read = (position: number, length: number) => {
      const buffer = Buffer.alloc(length);
      const got = readSync(fd, buffer, 0, length, position);
      hash.update(buffer.subarray(0, got));
    };
    read(0, Math.min(MIB, size));
    if (size > MIB) read(Math.max(MIB, size - MIB), Math.min(MIB, size - MIB));
  } finally {
    closeSync(fd);
  }
}

/** The identity of the model folder `dir` (config.json and its *.safetensors files). */
export function modelIdentity(dir: string): ModelIdentity {
  const config = join(dir, 'config.json');
  if (!existsSync(config)) throw new FormatError(dir, 'no config.json (expected a Hub-format model folder)');
  const weights = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  const hash = createHash('sha256');
  for (const f of weights) fingerprintFile(hash, join(dir, f));
  return { path: dir, config_sha256: fileSha256(config), weights_fingerprint: hash.digest('hex') };
}

/** The identity of the PEFT adapter folder `dir`. */
export function adapterIdentity(dir: string): AdapterIdentity {
  const hash = createHash('sha256');
  for (const f of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]) {
    const path = join(dir, f);
    if (!existsSync(path)) throw new FormatError(dir, `no ${f} (expected a PEFT adapter folder)`);
    hash.update(readFileSync(path));
  }
  return { path: dir, sha256: hash.digest('hex') };
}

const short = (hex: string) => hex.slice(0, 12);

/**
 * Refuse (ConfigError naming `source`) to apply a calibrator (density, head: `thing`) fitted on `fittedOn` to `model` with
 * `adapter` (null = none). A calibrator fitted from a predictions file (model null) names no model:
 * it is accepted for any.
 */
export function checkFittedModel(
  fittedOn: FittedOn,
  source: string,
  model: ModelIdentity,
  adapter: AdapterIdentity | null,
  thing: 'calibrator' | 'density' | 'head' = 'calibrator',
): void {
  const was = fittedOn.model;
  if (was === null) return;
  if (was.config_sha256 !== model.config_sha256 || was.weights_fingerprint !== model.weights_fingerprint) {
    const what = was.config_sha256 !== model.config_sha256 ? 'config.json sha256' : 'weights fingerprint';
    throw new ConfigError(
      `${source}: this ${thing} was fitted on the model at ${was.path} (${what} ${short(
        what === 'config.json sha256' ? was.config_sha256 : was.weights_fingerprint,
      )}), not on ${model.path} (${short(what === 'config.json sha256' ? model.config_sha256 : model.weights_fingerprint)}); fit one for this model with attune calibrate fit`,
    );
  }
  const fittedAdapter = fittedOn.adapter;
  if (fittedAdapter === null && adapter !== null) {
    throw new ConfigError(
      `${source}: this ${thing} was fitted on the base model without an adapter, not with the adapter ${adapter.path}`,
    );
  }
  if (fittedAdapter !== null && adapter === null) {
    throw new ConfigError(
      `${source}: this ${thing} was fitted with the adapter ${fittedAdapter.path} (sha256 ${short(fittedAdapter.sha256)}); pass --adapter with it`,
    );
  }
  if (fittedAdapter !== null && adapter !== null && fittedAdapter.sha256 !== adapter.sha256) {
    throw new ConfigError(
      `${source}: this ${thing} was fitted with the adapter ${fittedAdapter.path} (sha256 ${short(fittedAdapter.sha256)}), not with ${adapter.path} (sha256 ${short(adapter.sha256)})`,
    );
  }
}

/** Refuse (ConfigError) to apply a calibrator of score `fittedOn.score` to another score. */
export function checkFittedScore(fittedOn: FittedOn, source: string, score: string): void {
  if (fittedOn.score !== score) {
    throw new ConfigError(
      `${source}: this calibrator maps the score "${fittedOn.score}", not "${score}"; pass --confidence/--uncertainty ${fittedOn.score} or fit one for "${score}"`,
    );
  }
}

function identityOf(value: unknown, keys: readonly string[], source: string, field: string): void {
  if (!isJsonObject(value) || keys.some((k) => typeof value[k] !== 'string')) {
    throw new FormatError(source, `${field}: expected null or an object with string ${keys.join(', ')}`);
  }
}

/** Validate a parsed `fitted_on` object (FormatError naming `source` and the field). */
export function fittedOnFromJSON(value: unknown, source: string): FittedOn {
  if (!isJsonObject(value)) throw new FormatError(source, 'fitted_on: expected an object');
  for (const k of ['method', 'score'] as const) {
    if (typeof value[k] !== 'string' || value[k] === '')
      throw new FormatError(source, `fitted_on.${k}: expected a non-empty string`);
  }
  if (value.model !== null)
    identityOf(value.model, ['path', 'config_sha256', 'weights_fingerprint'], source, 'fitted_on.model');
  if (value.adapter !== null) identityOf(value.adapter, ['path', 'sha256'], source, 'fitted_on.adapter');
  identityOf(value.data, ['path', 'sha256'], source, 'fitted_on.data');
  if (!Number.isInteger(value.n) || (value.n as number) < 1)
    throw new FormatError(source, 'fitted_on.n: expected an integer >= 1');
  return value as unknown as FittedOn;
}
