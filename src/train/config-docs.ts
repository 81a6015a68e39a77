/** docs/config.md, generated from the training config schema (`npm run docs` rewrites it). */
import { describeTrainConfig } from './config.ts';

/** The Markdown reference of every `attune train` config field. */
export function renderConfigDocs(): string {
  const rows = describeTrainConfig()
    .map(
      (r) =>
        `| \`${r.key}\` | ${r.type} | ${r.default === '' ? '' : `\`${r.default}\``} | ${r.description} |`,
    )
    .join('\n');
  return `# Training config reference

\`attune train CONFIG.yaml\` reads a YAML file validated against this schema (src/train/config.ts;
this page is generated from it by \`npm run docs\`). Every field has a default unless it says
\`required\`. Paths are relative to the config file. An unknown key is an error that names the
closest valid key. \`--set key=value\` overrides any field (values are parsed as YAML:
\`--set train.lr=2e-4\`, \`--set lora.target_modules=[q_proj,k_proj]\`).

The minimal config (the README's quick start):

\`\`\`yaml
model: path/to/model-dir
data:
  train: path/to/train.jsonl
method: lora
lora: { r: 8, lora_alpha: 16, target_modules: [q_proj, v_proj] }
train: { steps: 20, batch_size: 4, lr: 1.0e-3, seed: 0 }
output_dir: runs/quickstart
\`\`\`

To pretrain from scratch, give \`model\` as \`{config: config.json, tokenizer: dir-with-tokenizer.json,
init_seed: 0}\` and \`method: full\`.

| field | type | default | description |
|---|---|---|---|
${rows}

## Losses

| name | options |
|---|---|
| \`ce\` | none: mean negative log-likelihood of the supervised tokens of the optimizer step |
| \`ua-clm\` | \`lambda\` (1), \`probability\` (\`gold\` \\| \`max\`), \`stop_gradient\` (false), \`eps\` (1e-6); see docs/uq.md |

Give options as \`loss: {name: ua-clm, lambda: 0.5}\`.
`;
}
