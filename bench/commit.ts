/*
 * commit.ts — what a durable commit costs at the WAL layer, against the raw mechanism, in
 * one run on the same disk.
 *
 *   raw        8 KiB pwrite + fdatasync into a preallocated file (the floor for `local`)
 *   local 1    one client, each commit record waits for its flush (synchronous_commit = local)
 *   off 1      one client, replies before the flush (synchronous_commit = off)
 *   local 16   sixteen clients committing concurrently: group commit's throughput
 *
 * Inline placement, real files in a temp directory under the OS temp dir (override with
 * WALSHIP_BENCH_DIR to test another disk). Raw and walwriter runs alternate (A B A B) and
 * the ratio is the median of per-pair ratios. The single-row INSERT through SQL and the
 * public API is measured by insert.ts.
 * Usage: node dist/bench/commit.js [--commits N] [--pairs P]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WALWRITER } from '../src/actors/walwriter.js';
import { Kernel } from '../src/runtime/kernel.js';
import { COMMITTER, type Acked } from '../test/fixtures/committers.js';
import { quantile, rawFdatasync } from './raw.js';
import { numberArg } from './args.js';

const COMMITS = numberArg('commits', 2000);
const PAIRS = numberArg('pairs', 5);
const SEG = 16 * 1024 * 1024;

interface WalRun { latencies: number[]; seconds: number }

async function walRun(dir: string, clients: number, flush: boolean, run: number): Promise<WalRun> {
  const walDir = join(dir, `pg_wal_${run}_${clients}_${flush}`);
  mkdirSync(walDir);
  const kernel = new Kernel();
  try {
    const walwriter = kernel.spawn({
      name: 'walwriter', behaviour: WALWRITER,
      args: { walDir, systemIdentifier: 1n, timeline: 1, segmentSize: SEG, insertLsn: SEG, prevLsn: 0, walWriterDelayMs: 200, walWriterFlushAfterBytes: 1024 * 1024 },
    });
    // Warm up: create and preallocate the first segments outside the timed part.
    const warm = kernel.inbox();
    kernel.spawn({ name: 'warmup', behaviour: COMMITTER, args: { walwriter, client: 999, firstSeq: 0, flush: true, ledger: warm.ref, maxThinkMs: 0, count: 50 } });
    for (let i = 0; i < 50; i++) await warm.next(30_000);
    const ledger = kernel.inbox();
    const perClient = Math.ceil(COMMITS / clients);
    const lastAt = new Map<number, number>();
    const latencies: number[] = [];
    const t0 = performance.now();
    for (let client = 0; client < clients; client++) {
      lastAt.set(client, performance.timeOrigin + performance.now());
      kernel.spawn({ name: `client${client}`, behaviour: COMMITTER, args: { walwriter, client, firstSeq: 0, flush, ledger: ledger.ref, maxThinkMs: 0, count: perClient } });
    }
    for (let i = 0; i < perClient * clients; i++) {
      const acked = await ledger.next<Acked>(60_000);
      latencies.push((acked.at - lastAt.get(acked.client)!) * 1000);
      lastAt.set(acked.client, acked.at);
    }
    return { latencies, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await kernel.shutdown();
    rmSync(walDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env['WALSHIP_BENCH_DIR'] ?? tmpdir(), 'walship-bench-'));
  try {
    const raw: number[] = [];
    const local: number[] = [];
    const ratios: number[] = [];
    const off: number[] = [];
    const tps1: number[] = [];
    const tps16: number[] = [];
    for (let pair = 0; pair < PAIRS; pair++) {
      const r = rawFdatasync(dir, COMMITS);
      const l = await walRun(dir, 1, true, pair);
      raw.push(quantile(r, 0.5));
      local.push(quantile(l.latencies, 0.5));
      ratios.push(quantile(l.latencies, 0.5) / quantile(r, 0.5));
      tps1.push(l.latencies.length / l.seconds);
      const o = await walRun(dir, 1, false, pair);
      off.push(quantile(o.latencies, 0.5));
      const g = await walRun(dir, 16, true, pair);
      tps16.push(g.latencies.length / g.seconds);
      if (pair === 0) {
        console.log(`first pair: raw p99 ${quantile(r, 0.99).toFixed(0)} µs, local p99 ${quantile(l.latencies, 0.99).toFixed(0)} µs, off p99 ${quantile(o.latencies, 0.99).toFixed(1)} µs, local-16 p50 ${quantile(g.latencies, 0.5).toFixed(0)} µs`);
      }
    }
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, dir ${dir}; ${COMMITS} commits per run, ${PAIRS} alternating pairs`);
    console.log(`raw 8 KiB write + fdatasync p50      ${quantile(raw, 0.5).toFixed(0)} µs`);
    console.log(`walwriter local, 1 client  p50      ${quantile(local, 0.5).toFixed(0)} µs   ratio ${quantile(ratios, 0.5).toFixed(2)}x (target <= 1.5x)`);
    console.log(`walwriter off, 1 client    p50      ${quantile(off, 0.5).toFixed(1)} µs`);
    console.log(`local throughput 1 client           ${quantile(tps1, 0.5).toFixed(0)} commits/s`);
    console.log(`local throughput 16 clients         ${quantile(tps16, 0.5).toFixed(0)} commits/s   ${(quantile(tps16, 0.5) / quantile(tps1, 0.5)).toFixed(1)}x (target >= 6x)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
