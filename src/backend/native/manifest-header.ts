/**
 * Renders native/src/manifest.gen.h from the kernel manifest: per kernel its argument table
 * (name, kind, optional, enum names) and signature line, and the X-macro list binding.cpp registers
 * the kernels from. Written by scripts/gen-native-manifest.ts; a unit test checks the checked-in
 * header is current.
 */
import { type ArgKind, KERNEL_NAMES, KERNELS, type KernelSpec, signatureOf } from '../manifest.ts';

/** The C++ `Kind` enumerator of each argument kind (float and float32 both take Float32Array). */
const CPP_KIND: Record<ArgKind, string> = {
  float: 'Float',
  float32: 'Float',
  floatOrBf16: 'FloatOrBf16',
  i32: 'I32',
  u16: 'U16',
  numeric: 'Numeric',
  count: 'Count',
  int: 'Int',
  number: 'Number',
  boolean: 'Boolean',
  choice: 'Choice',
  dims: 'Dims',
  lceOuts: 'Object',
};

/** The header's text. */
export function nativeManifestHeader(): string {
  const lines: string[] = [
    '// GENERATED from src/backend/manifest.ts by `node --import tsx scripts/gen-native-manifest.ts`.',
    '// Do not edit: change the manifest and regenerate (docs/kernels.md).',
    '#pragma once',
    '',
    'namespace attune {',
    'namespace manifest {',
    '',
    'enum class Kind { Float, FloatOrBf16, I32, U16, Numeric, Count, Int, Number, Boolean, Choice, Dims, Object };',
    '',
    'struct Arg {',
    '  const char* name;',
    '  Kind kind;',
    '  bool optional;',
    '  const char* const* choices;',
    '  int nChoices;',
    '};',
    '',
    'struct Kernel {',
    '  const char* name;',
    '  int argc;',
    '  const Arg* args;',
    '  const char* signature;',
    '};',
    '',
  ];
  let maxArgs = 0;
  for (const name of KERNEL_NAMES) {
    const spec: KernelSpec = KERNELS[name];
    maxArgs = Math.max(maxArgs, spec.args.length);
    for (const a of spec.args) {
      if (!a.choices) continue;
      const names = a.choices.map((c) => JSON.stringify(c)).join(', ');
      lines.push(`inline constexpr const char* ${name}_${a.name}_choices[] = {${names}};`);
    }
    const args = spec.args.map((a) => {
      const choices = a.choices ? `${name}_${a.name}_choices, ${a.choices.length}` : 'nullptr, 0';
      return `    {${JSON.stringify(a.name)}, Kind::${CPP_KIND[a.kind]}, ${a.optional}, ${choices}},`;
    });
    lines.push(`inline constexpr Arg ${name}_args[] = {`, ...args, '};');
    lines.push(
      `inline constexpr Kernel ${name}{${JSON.stringify(name)}, ${spec.args.length}, ${name}_args,`,
      `                              ${JSON.stringify(signatureOf(name))}};`,
      '',
    );
  }
  lines.push(`inline constexpr int kMaxArgs = ${maxArgs};`, '');
  lines.push(`inline constexpr const Kernel* kAll[] = {${KERNEL_NAMES.map((n) => `&${n}`).join(', ')}};`, '');
  lines.push('}  // namespace manifest', '}  // namespace attune', '');
  lines.push('// X(name) for every kernel, in manifest order.');
  lines.push('#define ATTUNE_MANIFEST_KERNELS(X) \\');
  lines.push(...KERNEL_NAMES.map((n, i) => `  X(${n})${i < KERNEL_NAMES.length - 1 ? ' \\' : ''}`), '');
  return lines.join('\n');
}
