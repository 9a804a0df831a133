/*
 * pgbench.ts — one measured run against PostgreSQL: pgbench with the bench script.
 *
 *   PGOPTIONS='-c synchronous_commit=<mode>' pgbench -n -c C -j C (-T s | -t n) -f script -l
 *
 * pgbench connects its clients before it starts the clock, as walship's runs do, and logs
 * every transaction (pgbench-log.ts); the latencies go into the same kind of HdrHistogram as
 * walship's. Throughput is pgbench's own "tps = ... (without initial connection time)". A
 * failed or skipped transaction fails the run: the percentiles would otherwise describe a
 * different workload than walship's.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PostgresRunner } from './as-postgres.js';
import { newHistogram, recordMicros } from './latency.js';
import type { Mix } from './options.js';
import { parsePgbenchLog, parsePgbenchTps } from './pgbench-log.js';
import type { RunOutcome, RunRequest } from './target.js';
import { pgbenchScript } from './workload.js';

const PROGRESS_INTERVAL_MS = 100;
/** How long past its own duration a pgbench may take before we kill it. */
const GRACE_MS = 120_000;
/** A -t run has no duration; it gets this long per transaction per client. */
const PER_TRANSACTION_LIMIT_MS = 1_000;
const LOG_PREFIX = 'pgbench_log';

export interface PgbenchTarget {
  readonly host: string;
  readonly port: number;
  /** Owned by postgres, empty: the script and the logs go here. */
  readonly dir: string;
  readonly mix: Mix;
}

export async function runPgbench(postgres: PostgresRunner, target: PgbenchTarget, request: RunRequest): Promise<RunOutcome> {
  const script = join(target.dir, `${target.mix}.sql`);
  writeFileSync(script, pgbenchScript(target.mix), { mode: 0o644 });
  const length = request.length;
  const lengthArgs = length.kind === 'duration' ? ['-T', String(length.seconds)] : ['-t', String(length.perClient)];
  const limitMs = length.kind === 'duration' ? length.seconds * 1000 + GRACE_MS : length.perClient * PER_TRANSACTION_LIMIT_MS + GRACE_MS;
  const started = performance.now();
  const ticker = setInterval(() => {
    if (length.kind === 'duration') request.onProgress(Math.min(1, (performance.now() - started) / (length.seconds * 1000)));
  }, PROGRESS_INTERVAL_MS);
  let stdout: string;
  try {
    ({ stdout } = await postgres.run('pgbench', [
      '-n', '-c', String(request.clients), '-j', String(request.clients), ...lengthArgs, '-f', script,
      '-l', `--log-prefix=${join(target.dir, LOG_PREFIX)}`,
      '-h', target.host, '-p', String(target.port), '-U', 'postgres', 'postgres',
    ], { env: { PGOPTIONS: `-c synchronous_commit=${request.mode}` }, timeoutMs: limitMs }));
  } finally {
    clearInterval(ticker);
  }
  request.onProgress(1);

  const histogram = newHistogram();
  let committed = 0;
  let firstStartUs = Infinity;
  let lastEndUs = -Infinity;
  const logs = readdirSync(target.dir).filter((name) => name.startsWith(`${LOG_PREFIX}.`));
  if (logs.length === 0) throw new Error(`pgbench wrote no transaction log in ${target.dir}`);
  for (const name of logs) {
    const path = join(target.dir, name);
    const summary = parsePgbenchLog(readFileSync(path, 'utf8'), path, (us) => recordMicros(histogram, us));
    if (summary.failed > 0 || summary.skipped > 0) {
      throw new Error(`${path}: ${summary.failed} failed and ${summary.skipped} skipped transactions at synchronous_commit = ${request.mode}`);
    }
    committed += summary.committed;
    if (summary.firstStartUs !== null) firstStartUs = Math.min(firstStartUs, summary.firstStartUs);
    if (summary.lastEndUs !== null) lastEndUs = Math.max(lastEndUs, summary.lastEndUs);
  }
  const seconds = committed === 0 ? 0 : (lastEndUs - firstStartUs) / 1e6;
  return { histogram, transactions: committed, seconds, tps: parsePgbenchTps(stdout) };
}
