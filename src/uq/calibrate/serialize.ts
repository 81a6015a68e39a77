/** Calibrators to and from JSON files: `{type, version, params}` (see docs/uq.md). */
import { FormatError } from '../../errors.ts';
import { describeJsonValue, isJsonObject, readJson, writeJsonAtomic } from '../../io/index.ts';
import { UqInputError } from '../metrics/result.ts';
import { CALIBRATOR_FORMAT_VERSION } from './format.ts';
import { IsotonicCalibrator } from './isotonic.ts';
import { PlattCalibrator } from './platt.ts';
import { TemperatureCalibrator } from './temperature.ts';

/** Any fitted calibrator; `type` tells which. */
export type Calibrator = TemperatureCalibrator | PlattCalibrator | IsotonicCalibrator;

/** The calibrator kinds, as written in `type`. */
export const CALIBRATOR_TYPES = ['temperature', 'platt', 'isotonic'] as const;

function numberParam(params: Record<string, unknown>, name: string, source: string): number {
  const value = params[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new FormatError(source, `params.${name}: expected a finite number, found ${describe(value)}`);
  }
  return value;
}

function numberArrayParam(params: Record<string, unknown>, name: string, source: string): number[] {
  const value = params[name];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    throw new FormatError(
      source,
      `params.${name}: expected an array of finite numbers, found ${describe(value)}`,
    );
  }
  return value as number[];
}

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
  if (typeof type !== 'string' || !(CALIBRATOR_TYPES as readonly string[]).includes(type)) {
    throw new FormatError(
      source,
      `type: expected one of ${CALIBRATOR_TYPES.join(', ')}, found ${typeof type === 'string' ? `'${type}'` : describe(type)}`,
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
    if (type === 'temperature') return new TemperatureCalibrator(numberParam(params, 'temperature', source));
    if (type === 'platt')
      return new PlattCalibrator(numberParam(params, 'a', source), numberParam(params, 'b', source));
    const increasing = params.increasing ?? true;
    if (typeof increasing !== 'boolean') {
      throw new FormatError(
        source,
        `params.increasing: expected true or false, found ${describe(increasing)}`,
      );
    }
    return new IsotonicCalibrator(
      numberArrayParam(params, 'x', source),
      numberArrayParam(params, 'y', source),
      increasing,
    );
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
