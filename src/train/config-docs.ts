/** docs/config.md, generated from the training config schema and the registries (`npm run docs`). */
import type { SchemaRow } from '../config/schema-info.ts';
import { describeTrainConfig, describeTrainRegistries } from './config.ts';
import { describeRoundKinds, describeRoundsCommon } from './rounds/config.ts';

function table(rows: readonly SchemaRow[]): string {
  if (rows.length === 0) return 'No options.\n';
  const lines = rows.map(
    (r) => `| \`${r.key}\` | ${r.type} | ${r.default === '' ? '' : `\`${r.default}\``} | ${r.description} |`,
  );
  return `| option | type | default | description |\n|---|---|---|---|\n${lines.join('\n')}\n`;
}

const TITLES: Record<string, string> = {
  method: 'Methods (`method:`)',
  loss: 'Losses (`loss:`)',
  optimizer: 'Optimizers (`optimizer:`)',
  schedule: 'Schedules (`schedule:`)',
  'data.transforms': 'Data transforms (`data.transforms:`)',
};

/** The Markdown reference of every `attune train` config field and registered method. */
export function renderConfigDocs(): string {
  const rows = describeTrainConfig()
    .map(
      (r) =>
        `| \`${r.key}\` | ${r.type} | ${r.default === '' ? '' : `\`${r.default}\``} | ${r.description} |`,
    )
    .join('\n');
  const registries = describeTrainRegistries()
    .map((r) => {
      const entries = r.entries
        .map((e) => `### \`${r.field}: ${e.name}\`\n\n${e.description}.\n\n${table(e.options)}`)
        .join('\n');
      return `## ${TITLES[r.field] ?? r.field}\n\n${entries}`;
    })
    .join('\n');
  const roundKinds = describeRoundKinds()
    .map((k) => `### \`rounds.kind: ${k.name}\`\n\n${k.description}.\n\n${table(k.options)}`)
    .join('\n');
  const rounds = `## Rounds (\`attune rounds\`, \`rounds:\`)

\`attune rounds CONFIG.yaml\` reads a training config (the recipe of every round) plus a flat
\`rounds:\` section: the fields below, and the options of every kind (each kind's options are
validated whichever kind is chosen; only the chosen kind's are used). See docs/training.md.

${table(describeRoundsCommon())}
${roundKinds}`;
  return `# Training config reference

\`attune train CONFIG.yaml\` reads a YAML file validated against this schema (src/train/config.ts;
this page is generated from it and from the registries by \`npm run docs\`). Every field has a
default unless it says \`required\`. Paths are relative to the config file, including the options a
method or loss marks as paths (\`.meta({ path: true })\` in its schema: a teacher cache, an adapter,
a calibration file). Every problem of a file
is reported in one run, each with its line; an unknown key names the closest valid key.
\`--set key=value\` overrides any field (values are parsed as YAML: \`--set train.lr=2e-4\`,
\`--set method.target_modules=[q_proj,k_proj]\`).

The minimal config (the README's quick start):

\`\`\`yaml
model: path/to/model-dir
data:
  train: path/to/train.jsonl
method: { name: lora, r: 8, lora_alpha: 16, target_modules: [q_proj, v_proj] }
train: { steps: 20, batch_size: 4, lr: 1.0e-3, seed: 0 }
output_dir: runs/quickstart
\`\`\`

\`method\`, \`loss\`, \`optimizer\` and \`schedule\` are each \`{name, ...options}\` or just a name (then
every option has its default). Their options are listed per entry below; a plug-in registered
from outside Attune appears here too (docs/extending.md).

The 0.1 form is still read, with a one-line deprecation note: \`method: lora\` plus a \`lora:\`
block (its \`init: kaiming | gaussian\` becomes PEFT's \`init_lora_weights: true | gaussian\`), and
\`train.optimizer\`, \`train.betas\`, \`train.adam_eps\` (now \`optimizer.eps\`), \`train.momentum\`,
\`train.weight_decay\`, \`train.schedule\`, \`train.warmup_steps\` and \`train.min_lr_ratio\`, which move
into \`optimizer:\` and \`schedule:\`.

To pretrain from scratch, give \`model\` as \`{config: config.json, tokenizer: dir-with-tokenizer.json,
init_seed: 0}\` and \`method: full\`.

| field | type | default | description |
|---|---|---|---|
${rows}

${registries}
${rounds}`;
}
