import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import { loadTrainConfig } from '../../../src/train/config.ts';
import { TrainingInterrupted, train, trainAsync } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-trainer-config-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

function yaml(name: string, text: string): string {
  const p = join(root, name);
  writeFileSync(p, text);
  return p;
}

describe('training configs through the registries', () => {
  it('reads the current form: method, loss, optimizer and schedule as {name, ...options}', () => {
    const notes: string[] = [];
    const c = loadTrainConfig(
      yaml(
        'new.yaml',
        `model: model
data: {train: train.jsonl}
method: {name: lora, r: 4, target_modules: all-linear}
loss: {name: ua-clm, lambda: 0.5}
optimizer: {name: sgd, momentum: 0.9}
schedule: {name: cosine, warmup_steps: 3}
train: {steps: 5}
output_dir: run-new
`,
      ),
      [],
      { onNote: (n) => notes.push(n) },
    );
    assert.deepEqual(notes, []);
    assert.equal(c.method.name, 'lora');
    assert.equal(c.method.r, 4);
    assert.equal(c.method.lora_alpha, 8, 'PEFT default filled in');
    assert.deepEqual(c.optimizer, {
      name: 'sgd',
      momentum: 0.9,
      dampening: 0,
      nesterov: false,
      weight_decay: 0,
    });
    assert.deepEqual(c.schedule, { name: 'cosine', warmup_steps: 3, min_lr_ratio: 0, num_cycles: 0.5 });
  });

  it('upgrades the 0.1 form with one deprecation note', () => {
    const notes: string[] = [];
    const c = loadTrainConfig(
      yaml(
        'old.yaml',
        `model: model
data: {train: train.jsonl}
method: lora
lora: {r: 2, lora_alpha: 4, init: gaussian}
train: {steps: 5, optimizer: sgd, momentum: 0.5, schedule: linear, warmup_steps: 1, min_lr_ratio: 0.1}
output_dir: run-old
`,
      ),
      [],
      { onNote: (n) => notes.push(n) },
    );
    assert.equal(notes.length, 1);
    assert.match(
      notes[0]!,
      /deprecated 0\.1 config form \(lora:, train\.optimizer, train\.schedule, train\.momentum/,
    );
    assert.equal(c.method.r, 2);
    assert.equal(c.method.init_lora_weights, 'gaussian');
    assert.equal(c.optimizer.name, 'sgd');
    assert.equal(c.optimizer.momentum, 0.5);
    assert.deepEqual(c.schedule, { name: 'linear', warmup_steps: 1, min_lr_ratio: 0.1 });
  });

  it('reports every config error of the file in one run, with lines', () => {
    const path = yaml(
      'many.yaml',
      `model: model
data: {train: train.jsonl}
method: {name: lora, r: 0}
loss: {name: ua-clm, lamda: 1}
optimizer: adamx
train: {steps: 5, lr: -1}
output_dir: run-many
`,
    );
    assert.throws(
      () => loadTrainConfig(path),
      (e: Error) => {
        assert.match(e.message, /many\.yaml:3: field 'method\.r': fine-tuning method 'lora': Too small/);
        assert.match(
          e.message,
          /many\.yaml:4: .*loss 'ua-clm': unknown option 'lamda' \(did you mean 'lambda'\?\)/,
        );
        assert.match(
          e.message,
          /many\.yaml:5: .*unknown optimizer 'adamx' \(known: adamw, sgd[^;]*; did you mean 'adamw'\?\)/,
        );
        assert.match(e.message, /many\.yaml:6: field 'train\.lr'/);
        return true;
      },
    );
  });

  it('validates the model, data and method before creating output_dir (a fixed rerun is not refused)', () => {
    const out = join(root, 'run-late');
    const badTargets = tinyConfig(root, { lora: { target_modules: ['nope_proj'] }, output_dir: out });
    assert.throws(() => train(badTargets), /matched no module/);
    assert.ok(!existsSync(out), 'nothing was created');
    const badModel = tinyConfig(root, { model: join(root, 'missing-model'), output_dir: out });
    assert.throws(() => train(badModel));
    assert.ok(!existsSync(out));
    const fixed = tinyConfig(root, { train: { steps: 2 }, output_dir: out });
    assert.ok(existsSync(train(fixed).adapterDir));
  });

  it('every tuner writes output_dir/adapter; full also writes model/, and its adapter loads like any other', () => {
    const r = train(
      tinyConfig(root, { method: 'full', train: { steps: 2, lr: 1e-3 }, output_dir: join(root, 'run-full') }),
    );
    assert.ok(existsSync(join(r.adapterDir, 'adapter_config.json')));
    assert.equal(
      JSON.parse(readFileSync(join(r.adapterDir, 'adapter_config.json'), 'utf8')).peft_type,
      'FULL',
    );
    const base = loadModel(join(root, 'model')).model;
    const adapter = loadAdapter(base, r.adapterDir);
    assert.equal(adapter.method, 'full');
    const trained = loadModel(r.finalDir).model;
    for (const [name, p] of trained.namedParameters())
      assert.deepEqual(base.namedParameters().find(([n]) => n === name)![1].data, p.data, name);
  });

  it('an interrupt saves a checkpoint, says how to resume, and the resumed run equals the uninterrupted one', async () => {
    const overrides = (dir: string) => ({
      train: { steps: 6, batch_size: 2, lr: 1e-2, seed: 3 },
      output_dir: join(root, dir),
    });
    const whole = train(tinyConfig(root, overrides('run-whole')));
    const cfg = tinyConfig(root, overrides('run-int'));
    const controller = new AbortController();
    await assert.rejects(
      trainAsync(cfg, {
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'step' && e.metrics.step === 3) controller.abort();
        },
      }),
      (e: Error) =>
        e instanceof TrainingInterrupted &&
        e.step === 3 &&
        /interrupted after step 3: checkpoint saved in .*step-3.*--resume/.test(e.message),
    );
    const resumed = train(cfg, { resume: true });
    for (const [name, t] of whole.adapter.state())
      assert.deepEqual(resumed.adapter.state().get(name)!.data, t.data, name);
  });
});

describe('data.chat_template', () => {
  it('a .jinja file next to the config renders {messages} for a tokenizer without a template', () => {
    writeJsonl(join(root, 'chat.jsonl'), [
      {
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Oslo.' },
        ],
      },
      {
        messages: [
          { role: 'user', content: 'Yo' },
          { role: 'assistant', content: 'Lima.' },
        ],
      },
    ]);
    writeFileSync(
      join(root, 'chat.jinja'),
      "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}",
    );
    const base = `model: model
data: {train: chat.jsonl}
train: {steps: 2}
`;
    const without = loadTrainConfig(yaml('chat-none.yaml', `${base}output_dir: run-chat-none\n`));
    assert.throws(() => train(without), /chat template/);
    const withTemplate = loadTrainConfig(
      yaml(
        'chat2.yaml',
        `model: model\ndata: {train: chat.jsonl, chat_template: chat.jinja}\ntrain: {steps: 2}\noutput_dir: run-chat\n`,
      ),
    );
    assert.equal(withTemplate.data.chat_template, join(root, 'chat.jinja'));
    const r = train(withTemplate);
    assert.ok(existsSync(r.adapterDir));
    const missing = loadTrainConfig(
      yaml(
        'chat3.yaml',
        `model: model\ndata: {train: chat.jsonl, chat_template: nope.jinja}\ntrain: {steps: 2}\noutput_dir: run-chat3\n`,
      ),
    );
    assert.throws(() => train(missing), /data\.chat_template: cannot read .*nope\.jinja \(ENOENT\)/);
    assert.ok(!existsSync(join(root, 'run-chat3')));
  });
});
