import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AttuneError, FormatError } from '../../../src/errors.ts';
import type { JsonObject } from '../../../src/io/json.ts';
import { writeJsonAtomic } from '../../../src/io/json.ts';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { assertFormatError, assertOneLine, cleanup, tempDir, writeRaw } from './helpers.ts';

after(cleanup);

const special = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** A tiny Llama-style (metaspace BPE) tokenizer.json whose post-processor adds <s>. */
function tinyTokenizerJson(): JsonObject {
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>'), special(3, '<pad>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: false,
      ignore_merges: false,
      vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, '<pad>': 3, '▁': 4, h: 5, i: 6, o: 7, '▁h': 8, '▁hi': 9 },
      merges: ['▁ h', '▁h i'],
    },
  };
}

const tinyConfig = (extra: JsonObject = {}): JsonObject => ({
  bos_token: '<s>',
  eos_token: {
    content: '</s>',
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
    __type: 'AddedToken',
  },
  unk_token: '<unk>',
  clean_up_tokenization_spaces: false,
  ...extra,
});

function tinyDir(
  config: JsonObject | null = tinyConfig(),
  tokenizerJson: JsonObject = tinyTokenizerJson(),
): string {
  const dir = tempDir();
  writeJsonAtomic(join(dir, 'tokenizer.json'), tokenizerJson);
  if (config) writeJsonAtomic(join(dir, 'tokenizer_config.json'), config);
  return dir;
}

describe('Tokenizer', () => {
  it('encodes through the post-processor and decodes', () => {
    const tok = Tokenizer.fromDir(tinyDir());
    assert.deepEqual(tok.encode('hi hi'), [1, 9, 9]);
    assert.deepEqual(tok.encode('ho', { addSpecialTokens: false }), [8, 7]);
    assert.deepEqual(tok.encode(''), [1]);
    assert.equal(tok.decode([1, 9, 9], { skipSpecialTokens: true }), 'hi hi');
    assert.equal(tok.decode([1, 9, 2]), '<s> hi</s>');
    assert.equal(tok.decode([]), '');
    assert.equal(tok.decode([9, 999, 9]), 'hi hi', 'ids outside the vocabulary are skipped');
    assert.equal(tok.decode(new Int32Array([9])), 'hi');
    assert.throws(() => tok.decode([1.5]), TypeError);
    assert.equal(tok.vocabSize, 10);
    assert.equal(tok.idToToken(9), '▁hi');
    assert.equal(tok.idToToken(50), undefined);
    assert.equal(tok.tokenToId('</s>'), 2);
    assert.equal(tok.tokenToId('nope'), undefined);
  });

  it('reads special tokens (strings or AddedToken objects); PAD falls back to EOS', () => {
    const tok = Tokenizer.fromDir(tinyDir());
    assert.equal(tok.bosTokenId, 1);
    assert.deepEqual(tok.eosTokenIds, [2]);
    assert.equal(tok.unkTokenId, 0);
    assert.equal(tok.padTokenId, 2);
    assert.deepEqual(tok.specialTokens, { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
    const padded = Tokenizer.fromDir(tinyDir(tinyConfig({ pad_token: '<pad>' })));
    assert.equal(padded.padTokenId, 3);
    const bare = Tokenizer.fromDir(tinyDir(null));
    assert.equal(bare.bosTokenId, null);
    assert.deepEqual(bare.eosTokenIds, []);
    assert.equal(bare.padTokenId, null);
  });

  it('fills special tokens missing from tokenizer_config.json from special_tokens_map.json', () => {
    const dir = tinyDir({ bos_token: '<s>' });
    writeJsonAtomic(join(dir, 'special_tokens_map.json'), {
      bos_token: '<unk>',
      eos_token: { content: '</s>' },
      pad_token: '<pad>',
    });
    const tok = Tokenizer.fromDir(dir);
    assert.equal(tok.bosTokenId, 1, 'tokenizer_config.json wins');
    assert.deepEqual(tok.eosTokenIds, [2]);
    assert.equal(tok.padTokenId, 3);
  });

  it('merges extra EOS ids (e.g. from generation_config.json)', () => {
    const dir = tinyDir();
    writeJsonAtomic(join(dir, 'generation_config.json'), { eos_token_id: [2, 3] });
    assert.deepEqual(Tokenizer.fromDir(dir).eosTokenIds, [2]);
    const merged = Tokenizer.fromDir(dir, { mergeGenerationConfig: true });
    assert.deepEqual(merged.eosTokenIds, [2, 3]);
    merged.addEosTokenIds(7);
    merged.addEosTokenIds([2, 8]);
    assert.deepEqual(merged.eosTokenIds, [2, 3, 7, 8]);
    assert.equal(merged.padTokenId, 2);
    assert.throws(() => merged.addEosTokenIds(-1), RangeError);
  });

  it('follows add_bos_token / add_eos_token for Llama-class tokenizers, as transformers does', () => {
    const noBos = Tokenizer.fromDir(
      tinyDir(tinyConfig({ tokenizer_class: 'LlamaTokenizer', add_bos_token: false })),
    );
    assert.deepEqual(noBos.encode('hi'), [9]);
    const both = Tokenizer.fromDir(
      tinyDir(
        tinyConfig({ tokenizer_class: 'LlamaTokenizerFast', add_bos_token: true, add_eos_token: true }),
      ),
    );
    assert.deepEqual(both.encode('hi'), [1, 9, 2]);
    assert.deepEqual(both.encode('hi', { addSpecialTokens: false }), [9]);
    const defaults = Tokenizer.fromDir(tinyDir(tinyConfig({ tokenizer_class: 'LlamaTokenizerFast' })));
    assert.deepEqual(defaults.encode('hi'), [1, 9]);
    // Other classes: the post-processor of tokenizer.json decides, whatever the flags say.
    const other = Tokenizer.fromDir(
      tinyDir(tinyConfig({ tokenizer_class: 'PreTrainedTokenizerFast', add_bos_token: false })),
    );
    assert.deepEqual(other.encode('hi'), [1, 9]);
    assertFormatError(
      () =>
        Tokenizer.fromDir(
          tinyDir({ tokenizer_class: 'LlamaTokenizer', add_eos_token: true, bos_token: '<s>' }),
        ),
      ['tokenizer_config.json', 'add_eos_token'],
    );
  });

  it('gives a one-line FormatError naming the file for malformed tokenizer files', () => {
    const broken = tempDir();
    writeRaw(broken, 'tokenizer.json', '{"version": "1.0",\n "model": {"type": "BPE",}\n}');
    assertFormatError(() => Tokenizer.fromDir(broken), ['tokenizer.json', 'line 2']);
    assertFormatError(
      () => Tokenizer.fromDir(tinyDir(tinyConfig(), { version: '1.0' })),
      ['tokenizer.json', "'model'"],
    );
    const badModel = { ...tinyTokenizerJson(), model: { type: 'NoSuchModel', vocab: {} } };
    assertFormatError(
      () => Tokenizer.fromDir(tinyDir(tinyConfig(), badModel)),
      ['tokenizer.json', 'NoSuchModel'],
    );
    const badPart = { ...tinyTokenizerJson(), decoder: { type: 'NoSuchDecoder' } };
    assertFormatError(
      () => Tokenizer.fromDir(tinyDir(tinyConfig(), badPart)),
      ['tokenizer.json', 'cannot build', 'NoSuchDecoder'],
    );
    assertFormatError(
      () => Tokenizer.fromDir(tinyDir(tinyConfig(), { ...tinyTokenizerJson(), added_tokens: 3 })),
      ['tokenizer.json', 'added_tokens'],
    );
    assertFormatError(
      () => Tokenizer.fromDir(tinyDir(tinyConfig({ eos_token: '<nope>' }))),
      ['tokenizer_config.json', '<nope>'],
    );
    const missing = tempDir();
    assertFormatError(() => Tokenizer.fromDir(missing), [join(missing, 'tokenizer.json'), 'not found']);
    const badConfig = tinyDir(null);
    writeRaw(badConfig, 'tokenizer_config.json', '{"bos_token": }');
    assertFormatError(() => Tokenizer.fromDir(badConfig), ['tokenizer_config.json', 'line 1, column 15']);
  });

  it('saves exact copies of its files, atomically', () => {
    const dir = tinyDir(tinyConfig({ chat_template: '{{ messages[0].content }}' }));
    writeJsonAtomic(join(dir, 'special_tokens_map.json'), { pad_token: '<pad>' });
    const out = join(tempDir(), 'saved');
    Tokenizer.fromDir(dir).save(out);
    assert.deepEqual(readdirSync(out).sort(), [
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    for (const name of readdirSync(out))
      assert.equal(readFileSync(join(out, name), 'utf8'), readFileSync(join(dir, name), 'utf8'));
    const again = Tokenizer.fromDir(out);
    assert.deepEqual(again.encode('hi ho'), [1, 9, 8, 7]);
    assert.equal(again.padTokenId, 3);
    const fromObjects = join(tempDir(), 'objects');
    Tokenizer.fromObjects(tinyTokenizerJson()).save(fromObjects);
    assert.deepEqual(readdirSync(fromObjects).sort(), ['tokenizer.json', 'tokenizer_config.json']);
    assert.deepEqual(Tokenizer.fromDir(fromObjects).encode('hi'), [1, 9]);
  });
});

describe('encodeContinuation', () => {
  it('drops special tokens and the Prepend dummy prefix', () => {
    const tok = Tokenizer.fromObjects(tinyTokenizerJson(), tinyConfig());
    assert.deepEqual(tok.encode('hi'), [1, 9]);
    assert.deepEqual(tok.encode('hi', { addSpecialTokens: false }), [9]);
    // 'hi' continuing a text has no '▁' before it: h i
    assert.deepEqual(tok.encodeContinuation('hi'), [5, 6]);
    assert.deepEqual(tok.encodeContinuation(' hi'), [9]);
    assert.deepEqual(tok.encode(' hi', { addSpecialTokens: false }), [4, 9]);
    assert.equal(tok.decode([9, ...tok.encodeContinuation(' hi')]), 'hi hi');
  });

  it('drops the Metaspace prefix space, also inside a Sequence', () => {
    const metaspace = {
      ...tinyTokenizerJson(),
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false }],
      },
    };
    const tok = Tokenizer.fromObjects(metaspace, tinyConfig());
    assert.deepEqual(tok.encode('hi', { addSpecialTokens: false }), [9]);
    assert.deepEqual(tok.encodeContinuation('hi'), [5, 6]);
    assert.deepEqual(tok.encodeContinuation(' hi'), [9]);
  });
});

describe('chat templates', () => {
  const llamaLike =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]" +
    "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}" +
    "{% else %}{{ raise_exception('Unknown role: ' + message['role']) }}{% endif %}{% endfor %}" +
    '{% if add_generation_prompt %} {% endif %}';

  it('renders with messages, add_generation_prompt and the special tokens', () => {
    const tok = Tokenizer.fromDir(tinyDir(tinyConfig({ chat_template: llamaLike })));
    assert.equal(tok.chatTemplate, llamaLike);
    const messages = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'ho' },
      { role: 'user', content: 'hi' },
    ];
    assert.equal(tok.applyChatTemplate(messages), '<s>[INST] hi [/INST] ho</s>[INST] hi [/INST]');
    assert.equal(
      tok.applyChatTemplate(messages, { addGenerationPrompt: true }),
      '<s>[INST] hi [/INST] ho</s>[INST] hi [/INST] ',
    );
    const ids = tok.encodeChat([{ role: 'user', content: 'hi' }]);
    assert.equal(ids[0], 1, 'BOS comes from the template');
    assert.notEqual(ids[1], 1, 'encodeChat adds no second BOS');
  });

  it('passes tools/documents as none, extra variables, and trims blocks as transformers does', () => {
    const template =
      '{% if tools is none %}no tools{% endif %}|{{ documents is none }}|{{ custom }}\n{% for m in messages %}\n  {{ m.role }}\n{% endfor %}';
    const tok = Tokenizer.fromDir(tinyDir(tinyConfig({ chat_template: template })));
    assert.equal(
      tok.applyChatTemplate([{ role: 'a', content: '' }], { variables: { custom: 'x' } }),
      'no tools|true|x\n  a\n',
    );
    assert.equal(
      tok.applyChatTemplate([], { tools: [{ name: 't' }], variables: { custom: 1 } }),
      '|true|1\n',
    );
  });

  it('supports named templates and the chat_template.jinja file', () => {
    const named = Tokenizer.fromDir(
      tinyDir(
        tinyConfig({
          chat_template: [
            { name: 'default', template: 'D{{ messages | length }}' },
            { name: 'tool_use', template: 'T' },
          ],
        }),
      ),
    );
    assert.equal(named.applyChatTemplate([{ role: 'user', content: 'x' }]), 'D1');
    assert.equal(named.applyChatTemplate([], { chatTemplate: 'tool_use' }), 'T');
    assert.equal(named.applyChatTemplate([], { tools: [{ name: 'f' }] }), 'T');
    assert.equal(named.applyChatTemplate([], { chatTemplate: 'inline {{ eos_token }}' }), 'inline </s>');
    assert.deepEqual(Object.keys(named.chatTemplates), ['default', 'tool_use']);

    const dir = tinyDir(tinyConfig({ chat_template: 'from config' }));
    writeRaw(dir, 'chat_template.jinja', 'from file {{ bos_token }}');
    assert.equal(Tokenizer.fromDir(dir).applyChatTemplate([]), 'from file <s>');
  });

  it('errors clearly: no template, a template that does not parse, raise_exception', () => {
    const none = Tokenizer.fromDir(tinyDir());
    assert.equal(none.chatTemplate, null);
    assertFormatError(() => none.applyChatTemplate([]), ['tokenizer_config.json', 'no chat template']);
    const broken = Tokenizer.fromDir(tinyDir(tinyConfig({ chat_template: '{% for m in messages %}' })));
    assertFormatError(() => broken.applyChatTemplate([]), ['tokenizer_config.json', 'does not parse']);
    const strict = Tokenizer.fromDir(tinyDir(tinyConfig({ chat_template: llamaLike })));
    let caught: unknown;
    try {
      strict.applyChatTemplate([{ role: 'system', content: 'x' }]);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof AttuneError && !(caught instanceof FormatError));
    assertOneLine(caught, ['tokenizer_config.json', 'Unknown role: system']);
    assertFormatError(
      () => Tokenizer.fromDir(tinyDir(tinyConfig({ chat_template: 5 }))),
      ['tokenizer_config.json', 'chat_template'],
    );
  });
});
