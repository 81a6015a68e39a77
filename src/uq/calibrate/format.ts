/** The JSON form every fitted calibrator saves: `{type, version, params}`. */

/** The version written by this Attune; loading accepts exactly this version. */
export const CALIBRATOR_FORMAT_VERSION = 1;

/** A calibrator as JSON: its kind, the format version and its fitted parameters. */
export interface CalibratorJSON<Type extends string = string, Params = Record<string, unknown>> {
  type: Type;
  version: number;
  params: Params;
}
