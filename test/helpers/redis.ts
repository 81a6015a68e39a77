/**
 * Redis for the BullMQ tests: the server named by ATTUNE_TEST_REDIS (`.ci/run` starts Debian's
 * redis-server and sets it), else a private redis-server on a free port when the binary is
 * installed. A missing server is a printed skip locally and an error under CI=true. BullMQ's Redis
 * client (ioredis, bullmq's optional peer dependency) missing is a printed skip.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { checkRedisClient } from '../../src/sweep/bullmq-executor.ts';

/** Debian's redis-server. */
export const REDIS_SERVER = '/usr/bin/redis-server';

/** A Redis to test against; `stop()` ends a server this helper started. */
export interface TestRedis {
  url: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Why the BullMQ tests cannot run here (printed), or null when they can. */
export function redisSkipReason(): string | null {
  try {
    checkRedisClient();
  } catch (error) {
    const reason = (error as Error).message;
    console.log(`# skipped bullmq tests: ${reason}`);
    return reason;
  }
  if (process.env.ATTUNE_TEST_REDIS || existsSync(REDIS_SERVER)) return null;
  const reason = `${REDIS_SERVER} is missing and ATTUNE_TEST_REDIS is unset (install Debian's redis-server; .ci/run does)`;
  if (process.env.CI === 'true') throw new Error(`Redis is required under CI: ${reason}`);
  console.log(`# skipped bullmq tests: ${reason}`);
  return reason;
}

/** The Redis of ATTUNE_TEST_REDIS (database 0 as given), or a fresh private redis-server. */
export async function startTestRedis(): Promise<TestRedis> {
  if (process.env.ATTUNE_TEST_REDIS) return { url: process.env.ATTUNE_TEST_REDIS, stop: async () => {} };
  const port = await freePort();
  const server: ChildProcess = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const ping = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
    if (ping.stdout?.trim() === 'PONG') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        server.once('exit', () => resolve());
        server.kill('SIGTERM');
      }),
  };
}
