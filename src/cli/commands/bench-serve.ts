/** `attune bench serve`: requests/s and p50/p99 latency of `attune serve` under concurrent load. */
import { backendInfo } from '../../backend/index.ts';
import { envelope } from '../../bench/envelope.ts';
import { runLoadTest } from '../../serve/load-test.ts';
import { shippedWorldBaseDir } from '../../world/base.ts';
import { jsonOption } from '../args.ts';
import { BENCH_OUTPUT_NOTE, printBench } from '../bench.ts';
import { defineCommand } from '../command.ts';
import { parseAdapterFlags } from './serve.ts';

const options = {
  model: {
    type: 'path',
    description: 'base model directory (default: the shipped small world base)',
    valueName: '<dir>',
  },
  adapter: {
    type: 'string',
    multiple: true,
    description: 'a LoRA adapter NAME=DIR; requests cycle over the base and each adapter',
    valueName: '<NAME=DIR>',
  },
  requests: { type: 'integer', min: 1, description: 'requests per concurrency level at most', default: 32 },
  concurrency: {
    type: 'integer',
    min: 1,
    list: true,
    description: 'requests in flight at once; one row per level',
    valueName: '<n,n,...>',
    defaultText: '1,8',
  },
  seconds: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    description: 'stop sending after this long per level (in-flight requests finish)',
    default: 30,
    valueName: '<s>',
  },
  'max-tokens': { type: 'integer', min: 1, description: 'max_tokens of every request', default: 32 },
  'max-batch': { type: 'integer', min: 1, description: "the server's --max-batch", default: 16 },
  json: jsonOption,
} as const;

/** `attune bench serve [--model DIR] [--requests N] [--concurrency 1,8] [--seconds S] [--json]`. */
export const benchServeCommand = defineCommand({
  name: 'bench serve',
  summary: 'Load-test attune serve: requests/s, tokens/s, p50/p99 latency',
  description: `Starts attune serve on 127.0.0.1 (a free port) in this process and keeps --concurrency
greedy /v1/completions requests in flight (max_tokens --max-tokens, a few fixed prompts) until
--requests have been sent or --seconds have passed, per concurrency level. Rows: requests/s,
generated tokens/s, p50 and p99 latency (ms) and the largest decode batch the server ran.
--json prints the bench envelope as the last stdout line.

${BENCH_OUTPUT_NOTE}`,
  options,
  examples: [
    'attune bench serve --json',
    'attune bench serve --concurrency 1,4,16 --requests 64 --max-tokens 16',
  ],
  async run(args, io) {
    const v = args.values;
    const modelDir = v.model ?? shippedWorldBaseDir('small');
    const concurrency = v.concurrency ?? [1, 8];
    io.note(
      `bench serve: ${modelDir}, concurrency ${concurrency.join(', ')}, up to ${v.requests} requests ...`,
    );
    return printBench(io, v.json, async () => {
      const rows = await runLoadTest({
        modelDir,
        adapters: parseAdapterFlags(v.adapter),
        requests: v.requests,
        concurrency,
        seconds: v.seconds,
        maxTokens: v['max-tokens'],
        maxBatch: v['max-batch'],
      });
      const info = backendInfo();
      return envelope(
        'serve',
        info.active,
        info.threads,
        rows.map((r) => ({ kernel: 'serve_completions', backend: info.active, ...r })),
      );
    });
  },
});
