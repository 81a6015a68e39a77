/** Calibrators to and from JSON files: `{type, version, params}` (see docs/uq.md). */
import { FormatError } from '../../errors.ts';
import { describeJsonValue, isJsonObject, readJson, writeJsonAtomic } from '../../io/index.ts';
import { UqInputError } from '../metrics/result.ts';
import './builtin.ts';
import { type FittedOn, fittedOnFromJSON } from './fitted-on.ts';
import { CALIBRATOR_FORMAT_VERSION } from './format.ts';
import type { IsotonicCalibrator } from './isotonic.ts';
import type { PlattCalibrator } from './platt.ts';
import { calibrators } from './registry.ts';
import type { TemperatureCalibrator } from './temperature.ts';

/** Any fitted calibrator; `type` tells which. */
export type Calibrator = TemperatureCalibrator | PlattCalibrator | IsotonicCalibrator;

/** The registered calibrator kinds, as written in `type` (the registry's order). */
export const CALIBRATOR_TYPES: readonly string[] = calibrators.list().map((c) => c.name);

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : describeJsonValue(value);
}

/**
 * Rebuild a calibrator from its JSON (`toJSON()` output, or a parsed file). Anything else — not an
 * object, an unknown `type`, another `version`, missing or invalid params — is a FormatError that
 * names `source` (a file path, or "calibrator") and says what was expected.
 */
export function calibratorFromJSON(value: unknown, source = 'calibrator'): Calibrator {
  if (!isJsonObject(value))
    throw new FormatError(
      source,
      `expected a calibrator object {type, version, params}, found ${describe(value)}`,
    );
  const { type, version, params } = value;
  if (typeof type !== 'string' || !calibrators.has(type)) {
    throw new FormatError(
      source,
      `type: expected one of ${calibrators
        .list()
        .map((c) => c.name)
        .join(', ')}, found ${typeof type === 'string' ? `'${type}'` : describe(type)}`,
    );
  }
  if (version !== CALIBRATOR_FORMAT_VERSION) {
    throw new FormatError(
      source,
      `version: this Attune reads calibrator format version ${CALIBRATOR_FORMAT_VERSION}, found ${typeof version === 'number' ? version : describe(version)}`,
    );
  }
  if (!isJsonObject(params))
    throw new FormatError(source, `params: expected an object, found ${describe(params)}`);
  try {
    return calibrators.get(type).fromParams(params, source) as Calibrator;
  } catch (error) {
    if (error instanceof UqInputError) throw new FormatError(source, `params: ${error.message}`);
    throw error;
  }
}

/** Write `calibrator` to `path` as JSON (atomically: a reader never sees a partial file). */
export function saveCalibrator(path: string, calibrator: Calibrator): void {
  writeJsonAtomic(path, calibrator.toJSON());
}

/** Read a calibrator saved by `saveCalibrator`; a missing, unparsable or invalid file is a FormatError naming it. */
export function loadCalibrator(path: string): Calibrator {
  return calibratorFromJSON(readJson(path), path);
}

/** A calibrator file: the calibrator and what it was fitted on (null in a file without `fitted_on`). */
export interface CalibratorFile {
  path: string;
  calibrator: Calibrator;
  fittedOn: FittedOn | null;
}

/**
 * Write `{type, version, params, fitted_on}` to `path` atomically (validated first: the JSON is
 * read back through `calibratorFromJSON` before anything is written).
 */
export function saveCalibratorFile(path: string, calibrator: Calibrator, fittedOn: FittedOn): void {
  const value = { ...calibrator.toJSON(), fitted_on: fittedOn };
  calibratorFromJSON(JSON.parse(JSON.stringify(value)), path);
  fittedOnFromJSON(value.fitted_on, path);
  writeJsonAtomic(path, value);
}

/** Read a calibrator file with its `fitted_on` (FormatError naming the file when anything is wrong). */
export function loadCalibratorFile(path: string): CalibratorFile {
  const value = readJson(path);
  const calibrator = calibratorFromJSON(value, path);
  const raw = (value as Record<string, unknown>).fitted_on;
  return { path, calibrator, fittedOn: raw === undefined ? null : fittedOnFromJSON(raw, path) };
}
