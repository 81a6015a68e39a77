/**
 * data/tokenize + data/chat on the real tinystories-656k tokenizer (ATTUNE_TEST_MODELS): label
 * masking of every shape, hand-checked token positions, truncation, bad records.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataRecord } from '../../../src/data/jsonl.ts';
import {
  ALPACA_PROMPT_NO_INPUT,
  ALPACA_PROMPT_WITH_INPUT,
  alpacaPrompt,
  IGNORE_INDEX,
  tokenizeRecord,
  tokenizeRecords,
} from '../../../src/data/tokenize.ts';
import { ConfigError, DataError } from '../../../src/errors.ts';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { testModelDir } from '../../helpers/models-env.ts';
import { assertDataError, chatTokenizer, expectedLabels, tinystoriesTokenizer } from './helpers.ts';

const BOS = 1;
const EOS = 2;
const IM_END = 2049;
const M = IGNORE_INDEX;

const src = { file: 'train.jsonl', line: 3 };
const text = (value: string): DataRecord => ({ shape: 'text', ...src, text: value });
const pc = (prompt: string, completion: string): DataRecord => ({
  shape: 'prompt_completion',
  ...src,
  prompt,
  completion,
});
const chat = (...turns: [string, string][]): DataRecord => ({
  shape: 'messages',
  ...src,
  messages: turns.map(([role, content]) => ({ role, content })),
});

describe('text records', () => {
  it('trains every token: BOS from the tokenizer, EOS appended', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const ex = tokenizeRecord(text('Once upon a time'), tok);
    // <|start_story|> ▁ On ce▁ upon▁a▁tim e <|end_story|>
    assert.deepEqual([...ex.inputIds], [BOS, 80, 147, 201, 282, 57, EOS]);
    assert.deepEqual([...ex.labels], [BOS, 80, 147, 201, 282, 57, EOS]);
    assert.equal(ex.file, 'train.jsonl');
    assert.equal(ex.line, 3);
    assert.equal(ex.truncatedTokens, 0);
  });

  it('appendEos: false leaves EOS out; trainOn does not mask text', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const ex = tokenizeRecord(text('Once upon a time'), tok, { appendEos: false, trainOn: 'completion' });
    assert.deepEqual([...ex.inputIds], [BOS, 80, 147, 201, 282, 57]);
    assert.deepEqual([...ex.labels], [...ex.inputIds]);
  });
});

describe('prompt/completion records', () => {
  it('masks the prompt tokens, trains completion + EOS (hand-checked positions)', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const prompt = 'Q: Who is Tom?\n';
    const ex = tokenizeRecord(pc(prompt, 'A: Tom is a cat.'), tok);
    // prompt: <|start_story|> ▁ Q :▁ Wh o▁ is▁ Tom ? \n   completion: A :▁ Tom▁ is▁a▁ cat .   EOS
    const promptIds = [BOS, 80, 42, 1608, 433, 139, 124, 380, 25, 3];
    const completionIds = [26, 1608, 388, 1220, 476, 10];
    assert.deepEqual(tok.encode(prompt), promptIds);
    assert.deepEqual([...ex.inputIds], [...promptIds, ...completionIds, EOS]);
    assert.deepEqual([...ex.labels], [...promptIds.map(() => M), ...completionIds, EOS]);
  });

  it('the reported case: the prompt keeps its inference tokens though "found" + " a" merges into found▁a▁', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const prompt = 'Once upon a time, Lily found';
    const completion = ' a small red ball.';
    // The bug: tokenised whole, the last prompt word and the first completion word share a token.
    const whole = tok.encode(prompt + completion).map((id) => tok.idToToken(id));
    assert.ok(whole.includes('found▁a▁'), whole.join(' '));
    const promptIds = tok.encode(prompt); // what generate/eval feed the model
    assert.deepEqual(
      promptIds.slice(-2).map((id) => tok.idToToken(id)),
      ['f', 'ound'],
    );
    const ex = tokenizeRecord(pc(prompt, completion), tok);
    const ids = [...ex.inputIds];
    assert.deepEqual(ids.slice(0, promptIds.length), promptIds);
    assert.equal(ids.at(-1), EOS);
    const completionIds = ids.slice(promptIds.length, -1);
    // No spurious dummy-prefix '▁' before the completion: ▁a▁ small ▁red ▁ball .
    assert.equal(tok.idToToken(completionIds[0]!), '▁a▁');
    assert.deepEqual([...ex.labels], [...promptIds.map(() => M), ...completionIds, EOS]);
    // The completion's ids decode to the completion, after the prompt (the decoder strips the
    // leading space of a whole text, so alone they read 'a small red ball.').
    const decodedPrompt = tok.decode(promptIds, { skipSpecialTokens: true });
    const decoded = tok.decode([...promptIds, ...completionIds], { skipSpecialTokens: true });
    assert.equal(decodedPrompt, prompt);
    assert.equal(decoded.slice(decodedPrompt.length), completion);
    assert.equal(tok.decode(completionIds), completion.slice(1));
  });

  it('a merge across the boundary (e▁) keeps the prompt tokens and encodes the completion as a continuation', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    // "Once upon a time" alone ends with 'e' (57); followed by " there" the merge would give 'e▁' (81).
    // The completion is ' there was' encoded without dummy prefix: ▁ (80) there▁ (248) was (197).
    const ex = tokenizeRecord(pc('Once upon a time', ' there was'), tok);
    assert.deepEqual([...ex.inputIds], [BOS, 80, 147, 201, 282, 57, 80, 248, 197, EOS]);
    assert.deepEqual([...ex.labels], [M, M, M, M, M, M, 80, 248, 197, EOS]);
    assert.equal(tok.decode(ex.inputIds, { skipSpecialTokens: true }), 'Once upon a time there was');
  });

  it('for many prompt/completion pairs: prompt ids == encode(prompt), completion ids decode to the completion', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const prompts = [
      'Lily found',
      'The cat saw',
      'Tom went to the',
      'Q: Who is Tom?\n',
      'She was ',
      'He said, "',
      'Mom',
    ];
    const completions = [' a small dog.', ' the park', 'a big tree', ' happy!', '\nYes.', ' red', '.', ' '];
    let merged = 0;
    for (const prompt of prompts) {
      for (const completion of completions) {
        const ex = tokenizeRecord(pc(prompt, completion), tok);
        const promptIds = tok.encode(prompt);
        const ids = [...ex.inputIds];
        const what = JSON.stringify([prompt, completion]);
        assert.deepEqual(ids.slice(0, promptIds.length), promptIds, what);
        assert.ok(
          ex.labels.slice(0, promptIds.length).every((l) => l === M),
          what,
        );
        assert.ok(
          ex.labels.slice(promptIds.length).every((l, i) => l === ids[promptIds.length + i]),
          what,
        );
        const decodedPrompt = tok.decode(promptIds, { skipSpecialTokens: true });
        const decoded = tok.decode(ids.slice(0, -1), { skipSpecialTokens: true });
        assert.equal(decoded.slice(decodedPrompt.length), completion, what);
        if (
          tok
            .encode(prompt + completion)
            .slice(0, promptIds.length)
            .join() !== promptIds.join()
        )
          merged++;
      }
    }
    assert.ok(merged > 5, `expected merges across the boundary among these pairs, found ${merged}`);
  });

  it('on a byte-level BPE (GPT-2) nothing merges across a space: the joint tokens are kept', (t) => {
    const model = testModelDir('tiny-gpt2-random');
    if (model.skip !== false) return t.skip(model.skip);
    const tok = Tokenizer.fromDir(model.dir);
    assert.deepEqual(tok.encodeContinuation(' a small'), tok.encode(' a small', { addSpecialTokens: false }));
    const result = tokenizeRecords([pc('Lily found', ' a small ball.')], tok);
    assert.equal(result.boundaryMerges, null);
    const ids = [...result.examples[0]!.inputIds];
    assert.deepEqual(ids.slice(0, -1), tok.encode('Lily found a small ball.'));
    assert.deepEqual(ids.slice(0, 3), tok.encode('Lily found'));
  });

  it('tokenizeRecords counts the records merged across the boundary and names the first', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const records = [
      { ...pc('Q: Who is Tom?\n', 'A: Tom is a cat.'), line: 1 },
      { ...pc('Lily found', ' a small dog.'), line: 2 },
      { ...pc('Once upon a time', ' there was'), line: 3 },
      { ...text('Once upon a time'), line: 4 },
    ];
    const result = tokenizeRecords(records, tok);
    assert.deepEqual(result.boundaryMerges, { count: 2, file: 'train.jsonl', line: 2, token: 'found▁a▁' });
    assert.equal(tokenizeRecords([records[0]!, records[3]!], tok).boundaryMerges, null);
  });

  it("trainOn 'all' trains the prompt too", (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const ex = tokenizeRecord(pc('Q: Who is Tom?\n', 'A: Tom is a cat.'), tok, { trainOn: 'all' });
    assert.deepEqual([...ex.labels], [...ex.inputIds]);
  });

  it("'assistant' means the same as 'completion'", (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const a = tokenizeRecord(pc('Q: Who is Tom?\n', 'A: Tom is a cat.'), tok, { trainOn: 'assistant' });
    const b = tokenizeRecord(pc('Q: Who is Tom?\n', 'A: Tom is a cat.'), tok, { trainOn: 'completion' });
    assert.deepEqual(a, b);
  });
});

describe('alpaca records', () => {
  it('uses the exact Stanford Alpaca prompts', () => {
    assert.equal(
      ALPACA_PROMPT_WITH_INPUT,
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:',
    );
    assert.equal(
      ALPACA_PROMPT_NO_INPUT,
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:',
    );
    assert.equal(
      alpacaPrompt('Add $1.', '2 and {input}'),
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd $1.\n\n### Input:\n2 and {input}\n\n### Response:',
    );
    assert.equal(
      alpacaPrompt('Name a pet.', ''),
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a pet.\n\n### Response:',
    );
  });

  it('masks the rendered prompt, trains output + EOS (with and without input)', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const cases: [string, string, string, number[]][] = [
      ['Name a pet.', '', 'A cat.', [26, 80, 476, 10]], // A ▁ cat .
      ['Add.', '1 2', '\n3', [3, 14]], // \n 3
    ];
    for (const [instruction, input, output, outputIds] of cases) {
      const ex = tokenizeRecord({ shape: 'alpaca', ...src, instruction, input, output }, tok);
      const promptIds = tok.encode(alpacaPrompt(instruction, input));
      assert.deepEqual([...ex.inputIds], [...promptIds, ...outputIds, EOS]);
      assert.deepEqual([...ex.labels], [...promptIds.map(() => M), ...outputIds, EOS]);
    }
  });
});

describe('messages records', () => {
  it('trains assistant content + <|im_end|>, masks system, user and the headers', (t) => {
    const tok = chatTokenizer(t);
    if (!tok) return;
    const record = chat(
      ['system', 'Be kind.'],
      ['user', 'Hi there'],
      ['assistant', 'Hello friend'],
      ['user', 'Bye'],
      ['assistant', 'Bye bye'],
    );
    const ex = tokenizeRecord(record, tok);
    const rendered = tok.applyChatTemplate(record.shape === 'messages' ? record.messages : []);
    assert.deepEqual([...ex.inputIds], tok.encode(rendered, { addSpecialTokens: false }));
    // Runs of trained tokens, as token strings.
    const runs: string[] = [];
    let current: string[] = [];
    ex.labels.forEach((label, i) => {
      if (label !== M) {
        assert.equal(label, ex.inputIds[i]);
        current.push(tok.idToToken(label)!);
      } else if (current.length > 0) {
        runs.push(current.join(''));
        current = [];
      }
    });
    assert.deepEqual(runs, ['Hello▁friend<|im_end|>', 'Bye▁bye<|im_end|>']);
    // Each run starts right after '<|im_start|>assistant\n' and stops at <|im_end|> (the newline after is masked).
    const ids = [...ex.inputIds];
    for (let i = 0; i < ids.length; i++) {
      const trained = ex.labels[i] !== M;
      const startsRun = trained && (i === 0 || ex.labels[i - 1] === M);
      if (startsRun) assert.equal(tok.idToToken(ids[i - 1]!), '\n');
      if (trained && (i + 1 === ids.length || ex.labels[i + 1] === M)) assert.equal(ids[i], IM_END);
    }
    const trainedCount = ex.labels.filter((l) => l !== M).length;
    assert.equal(trainedCount, 4 + 6);
  });

  it('matches expected spans computed from the prefix renderings', (t) => {
    const tok = chatTokenizer(t);
    if (!tok) return;
    const record = chat(['user', 'Hi'], ['assistant', 'Yes.']);
    const ex = tokenizeRecord(record, tok);
    const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
    const start = enc('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n').length;
    const end = enc('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>').length;
    assert.deepEqual([...ex.labels], expectedLabels(ex.inputIds, [[start, end]]));
    assert.equal(ex.inputIds[end - 1], IM_END);
  });

  it("trainOn 'all' trains every token; no EOS is appended", (t) => {
    const tok = chatTokenizer(t);
    if (!tok) return;
    const ex = tokenizeRecord(chat(['user', 'Hi'], ['assistant', 'Yes.']), tok, { trainOn: 'all' });
    assert.deepEqual([...ex.labels], [...ex.inputIds]);
    assert.ok(!ex.inputIds.includes(EOS));
  });

  it('a tokenizer without a chat template is an error naming the record, even in skip mode', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const expected = `train.jsonl:3: a {messages} record needs a chat template, but the tokenizer of ${tok.origin} has none; use a tokenizer with a chat template, or write the data as {prompt, completion} records`;
    assertDataError(() => tokenizeRecord(chat(['user', 'Hi'], ['assistant', 'Yes.']), tok), expected);
    assertDataError(
      () =>
        tokenizeRecords([text('ok'), chat(['user', 'Hi'], ['assistant', 'Yes.'])], tok, {
          onBadRecord: 'skip',
        }),
      expected,
    );
  });

  it('the chatTemplate option supplies a template; a token straddling the trimmed end trains the whitespace', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const ex = tokenizeRecord(chat(['user', 'Hi'], ['assistant', 'Yes.']), tok, {
      chatTemplate:
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}",
    });
    // ▁ us er :▁ Hi \n a s si st ant :▁ | Y es .\n  -- '.' and '\n' merge, so the span ends after '\n'.
    const tokens = [...ex.inputIds].map((id) => tok.idToToken(id));
    assert.deepEqual(tokens, [
      '▁',
      'us',
      'er',
      ':▁',
      'Hi',
      '\n',
      'a',
      's',
      'si',
      'st',
      'ant',
      ':▁',
      'Y',
      'es',
      '.\n',
    ]);
    assert.deepEqual([...ex.labels], expectedLabels(ex.inputIds, [[12, 15]]));
  });

  it('a token straddling the start of an assistant turn: the context keeps its inference tokens', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    // 'assistant:' ends with ':' but in the whole conversation ':' merges with the space of ' Yes.' into ':▁'.
    const chatTemplate =
      "{% for m in messages %}{{ m['role'] + ':' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";
    const record = chat(['user', 'Hi'], ['assistant', ' Yes.']);
    const whole = tok
      .encode(tok.applyChatTemplate(record.shape === 'messages' ? record.messages : [], { chatTemplate }), {
        addSpecialTokens: false,
      })
      .map((id) => tok.idToToken(id));
    assert.ok(whole.includes(':▁'), whole.join(' '));
    const context = tok.encodeChat([{ role: 'user', content: 'Hi' }], {
      addGenerationPrompt: true,
      chatTemplate,
    });
    const ex = tokenizeRecord(record, tok, { chatTemplate });
    const ids = [...ex.inputIds];
    assert.deepEqual(ids.slice(0, context.length), context);
    // Trained: ' Yes.\n' as a continuation (▁ Y es .\n); the '.\n' token straddles the trimmed end.
    assert.deepEqual(
      ids.slice(context.length).map((id) => tok.idToToken(id)),
      ['▁', 'Y', 'es', '.\n'],
    );
    assert.deepEqual([...ex.labels], expectedLabels(ids, [[context.length, ids.length]]));
    assert.equal(tok.decode(ids), 'user:Hi\nassistant: Yes.\n');
    assert.equal(tokenizeRecords([record], tok, { chatTemplate }).boundaryMerges?.token, ':▁');
  });

  it('every assistant turn is trained on the context inference encodes for it (encodeChat)', (t) => {
    const tok = chatTokenizer(t);
    if (!tok) return;
    const messages = [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Lily found' },
      { role: 'assistant', content: 'a small dog.' },
      { role: 'user', content: 'Then?' },
      { role: 'assistant', content: 'She was happy.' },
    ];
    const ex = tokenizeRecord({ shape: 'messages', ...src, messages }, tok);
    const ids = [...ex.inputIds];
    for (const i of [2, 4]) {
      const context = tok.encodeChat(messages.slice(0, i), { addGenerationPrompt: true });
      assert.deepEqual(ids.slice(0, context.length), context, `turn ${i}`);
      assert.equal(ex.labels[context.length - 1], M, `turn ${i}`);
      assert.equal(ex.labels[context.length], ids[context.length], `turn ${i}`);
      let end = context.length;
      while (end < ids.length && ex.labels[end] !== M) end++;
      assert.equal(tok.decode(ids.slice(context.length, end)), `${messages[i]!.content}<|im_end|>`);
    }
  });

  it('a conversation without an assistant turn has no trained tokens', (t) => {
    const tok = chatTokenizer(t);
    if (!tok) return;
    assertDataError(
      () => tokenizeRecord(chat(['user', 'Hi']), tok),
      'train.jsonl:3: no trained tokens: the conversation has no assistant message',
    );
  });

  it('a template that is not prefix-stable is a clear error', (t) => {
    const tok = chatTokenizer(
      t,
      "{{ messages|length }}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    );
    if (!tok) return;
    assertDataError(
      () => tokenizeRecord(chat(['user', 'Hi'], ['assistant', 'Yes.']), tok),
      /^train\.jsonl:3: the chat template is not prefix-stable: the rendering of messages\[0\.\.1\) with the generation prompt is not a prefix .*\{prompt, completion\} records$/,
    );
  });

  it('a template error is a bad record', (t) => {
    const tok = chatTokenizer(
      t,
      "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first turn must be user') }}{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}",
    );
    if (!tok) return;
    assertDataError(
      () => tokenizeRecord(chat(['assistant', 'Yes.']), tok),
      /^train\.jsonl:3: the chat template cannot render this conversation: .*first turn must be user/,
    );
  });
});

describe('truncation', () => {
  it("'right' keeps the first maxLength tokens, 'left' the last ones", (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const all = [BOS, 80, 147, 201, 282, 57, EOS];
    const right = tokenizeRecord(text('Once upon a time'), tok, { maxLength: 4 });
    assert.deepEqual([...right.inputIds], all.slice(0, 4));
    assert.deepEqual([...right.labels], all.slice(0, 4));
    assert.equal(right.truncatedTokens, 3);
    const left = tokenizeRecord(text('Once upon a time'), tok, { maxLength: 4, truncation: 'left' });
    assert.deepEqual([...left.inputIds], all.slice(3));
    assert.equal(left.truncatedTokens, 3);
    const fits = tokenizeRecord(text('Once upon a time'), tok, { maxLength: 7, truncation: 'error' });
    assert.equal(fits.truncatedTokens, 0);
  });

  it("'error' rejects a longer record naming its line and lengths", (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    assertDataError(
      () => tokenizeRecord(text('Once upon a time'), tok, { maxLength: 4, truncation: 'error' }),
      "train.jsonl:3: the record has 7 tokens, more than maxLength 4 (truncation: 'error')",
    );
  });

  it("'left' keeps the completion when the prompt is long; 'right' may leave nothing to train", (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const record = pc('Q: Who is Tom?\n', 'A: Tom is a cat.');
    const left = tokenizeRecord(record, tok, { maxLength: 8, truncation: 'left' });
    assert.deepEqual([...left.inputIds], [380, 25, 3, 26, 1608, 388, 1220, 476, 10, EOS].slice(2));
    assert.deepEqual([...left.labels], [M, 26, 1608, 388, 1220, 476, 10, EOS]);
    assertDataError(
      () => tokenizeRecord(record, tok, { maxLength: 8 }),
      "train.jsonl:3: no trained tokens left after truncating 17 tokens to maxLength 8 (truncation: 'right'); raise maxLength or shorten the record",
    );
  });
});

describe('tokenizeRecords', () => {
  it('skip mode counts unusable records with their reasons; error mode throws the first', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const records: DataRecord[] = [
      { ...pc('Q: Who is Tom?\n', 'A: Tom is a cat.'), line: 1 },
      { ...text('Once upon a time there was a dog.'), line: 2 },
      { ...text('Hi'), line: 3 },
    ];
    const { examples, skipped } = tokenizeRecords(records, tok, { maxLength: 8, onBadRecord: 'skip' });
    assert.deepEqual(
      examples.map((e) => [e.line, e.truncatedTokens]),
      [
        [2, 2],
        [3, 0],
      ],
    );
    assert.deepEqual(skipped, [
      {
        file: 'train.jsonl',
        line: 1,
        reason:
          "no trained tokens left after truncating 17 tokens to maxLength 8 (truncation: 'right'); raise maxLength or shorten the record",
      },
    ]);
    assert.throws(
      () => tokenizeRecords(records, tok, { maxLength: 8 }),
      (e: unknown) => e instanceof DataError && e.line === 1,
    );
  });

  it('invalid options are ConfigErrors naming the option', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const bad: [object, RegExp][] = [
      [
        { trainOn: 'prompt' },
        /option 'trainOn' must be one of 'completion', 'assistant', 'all', found "prompt"/,
      ],
      [{ truncation: 'middle' }, /option 'truncation' must be one of 'right', 'left', 'error'/],
      [{ maxLength: 1 }, /option 'maxLength' must be an integer >= 2, found 1/],
      [{ onBadRecord: 'ignore' }, /option 'onBadRecord' must be 'error' or 'skip'/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => tokenizeRecords([text('x')], tok, options as never),
        (e: unknown) => {
          return e instanceof ConfigError && message.test(e.message);
        },
      );
    }
  });
});
