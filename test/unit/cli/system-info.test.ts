import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuFeaturesFromCpuinfo, procCpuFeatures, simdLevel } from '../../../src/cli/system-info.ts';

describe('CPU features from /proc/cpuinfo', () => {
  it('reads x86 flags', () => {
    const text =
      'processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse4_2 avx2 fma avx512f avx512bw avx\n\nprocessor\t: 1\n';
    const features = cpuFeaturesFromCpuinfo(text);
    assert.deepEqual(features, ['sse4_2', 'avx', 'fma', 'avx2', 'avx512f', 'avx512bw']);
    assert.equal(simdLevel(features), 'avx512');
    assert.equal(simdLevel(['avx', 'avx2', 'fma']), 'avx2+fma');
    assert.equal(simdLevel(['avx2']), 'scalar');
  });

  it('reads arm64 features', () => {
    const features = cpuFeaturesFromCpuinfo('processor\t: 0\nFeatures\t: fp asimd evtstrm asimddp sve\n');
    assert.deepEqual(features, ['asimd', 'asimddp', 'sve']);
    assert.equal(simdLevel(features), 'neon');
  });

  it('returns nothing without a flags line, null without the file', () => {
    assert.deepEqual(cpuFeaturesFromCpuinfo('processor : 0\n'), []);
    assert.equal(procCpuFeatures('/nonexistent/cpuinfo'), null);
  });
});
