/**
 * The load test behind `attune bench serve`: a real server on 127.0.0.1 (any free port) and a
 * client that keeps `concurrency` completions requests in flight until `requests` have been sent
 * or `seconds` have passed (whichever comes first), then reports requests/s, generated tokens/s and
 * p50 / p99 latency (after one untimed warm-up request). Greedy, fixed prompts (several, so rows differ), max_tokens fixed, every
 * request run to its token budget or EOS.
 */
import { performance } from 'node:perf_hooks';
import { startServer } from './server.ts';

/** What to load-test. */
export interface LoadTestOptions {
  modelDir: string;
  adapters?: readonly { name: string; dir: string }[];
  /** Requests to send at most (per concurrency level). */
  requests: number;
  /** Requests in flight at once (one row per level). */
  concurrency: readonly number[];
  /** Stop sending after this many seconds (per level; requests in flight still finish). */
  seconds: number;
  maxTokens: number;
  maxBatch: number;
}

/** One concurrency level's measurements. */
export interface LoadTestRow {
  concurrency: number;
  requests: number;
  errors: number;
  seconds: number;
  requests_per_s: number;
  tokens_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** Largest batch the decode loop ran. */
  max_batch_seen: number;
  max_tokens: number;
}

const PROMPTS = [
  'The capital of',
  'Once upon a time',
  'She was born in',
  'The river flows',
  'He works as a',
  'In the year',
  'Their friend lives in',
  'The city of',
];

/** The `q` quantile (nearest rank) of `values` (NaN when empty). */
export function nearestRank(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Run the load test (see the file comment); one row per concurrency level. */
export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestRow[]> {
  const rows: LoadTestRow[] = [];
  const models = ['', ...(options.adapters ?? []).map((a) => `:${a.name}`)];
  for (const concurrency of options.concurrency) {
    // a fresh server per level, so max_batch_seen is the level's own
    const server = await startServer({
      modelDir: options.modelDir,
      adapters: options.adapters ?? [],
      port: 0,
      modelName: 'bench',
      maxBatch: options.maxBatch,
      maxQueue: Math.max(concurrency, 1),
      maxTokens: options.maxTokens,
    });
    try {
      // one untimed request first: JIT and buffer pool warm-up are not load
      await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'bench',
          prompt: PROMPTS[0],
          max_tokens: options.maxTokens,
          temperature: 0,
        }),
      }).then((r) => r.arrayBuffer());
      const latencies: number[] = [];
      let sent = 0;
      let errors = 0;
      let tokens = 0;
      const started = performance.now();
      const deadline = started + options.seconds * 1000;
      const worker = async () => {
        while (sent < options.requests && performance.now() < deadline) {
          const i = sent++;
          const t0 = performance.now();
          try {
            const response = await fetch(`${server.url}/v1/completions`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({
                model: `bench${models[i % models.length]}`,
                prompt: PROMPTS[i % PROMPTS.length],
                max_tokens: options.maxTokens,
                temperature: 0,
              }),
            });
            const body = (await response.json()) as { usage?: { completion_tokens: number } };
            if (!response.ok) errors++;
            else {
              latencies.push(performance.now() - t0);
              tokens += body.usage?.completion_tokens ?? 0;
            }
          } catch {
            errors++; // a refused or broken connection is a failed request, not the end of the bench
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const seconds = (performance.now() - started) / 1000;
      rows.push({
        concurrency,
        requests: latencies.length,
        errors,
        seconds,
        requests_per_s: latencies.length / seconds,
        tokens_per_s: tokens / seconds,
        p50_ms: nearestRank(latencies, 0.5),
        p99_ms: nearestRank(latencies, 0.99),
        max_batch_seen: server.engine.stats().maxBatchSeen,
        max_tokens: options.maxTokens,
      });
    } finally {
      await server.close();
    }
  }
  return rows;
}
