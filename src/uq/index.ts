/** Uncertainty: scores, grading, prediction, cascades, metrics and calibrators (docs/uq.md). */
export * from './calibrate/format.ts';
export * from './calibrate/isotonic.ts';
export * from './calibrate/platt.ts';
export * from './calibrate/serialize.ts';
export * from './calibrate/temperature.ts';
export * from './cascade.ts';
export * from './evaluate.ts';
export * from './grade.ts';
export * from './mc-dropout.ts';
export * from './metrics/calibration.ts';
export * from './metrics/ranking.ts';
export * from './metrics/report.ts';
export * from './metrics/result.ts';
export * from './metrics/selective.ts';
export * from './predict.ts';
export * from './scores.ts';
