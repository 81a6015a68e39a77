/** The built-in calibrator kinds, registered in the order docs list them (METHODS.md section 1). */
import { IsotonicCalibrator } from './isotonic.ts';
import { PlattCalibrator } from './platt.ts';
import { booleanParam, numberArrayParam, numberParam, registerCalibrator } from './registry.ts';
import { TemperatureCalibrator } from './temperature.ts';

registerCalibrator({
  name: 'temperature',
  description: 'one temperature T > 0 dividing the token logits, fitted by NLL (never changes the argmax)',
  input: 'logits',
  fromParams: (p, source) => new TemperatureCalibrator(numberParam(p, 'temperature', source)),
});
registerCalibrator({
  name: 'platt',
  description: 'logistic regression sigmoid(a * score + b) on a scalar score',
  input: 'confidence',
  fromParams: (p, source) => new PlattCalibrator(numberParam(p, 'a', source), numberParam(p, 'b', source)),
});
registerCalibrator({
  name: 'isotonic',
  description: 'monotone step function fitted by pool-adjacent-violators',
  input: 'confidence',
  fromParams: (p, source) =>
    new IsotonicCalibrator(
      numberArrayParam(p, 'x', source),
      numberArrayParam(p, 'y', source),
      booleanParam(p, 'increasing', true, source),
    ),
});
