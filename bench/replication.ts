/*
 * replication.ts — what streaming replication costs the primary, and whether a standby's
 * replay keeps up, in one run on this machine.
 *
 *   commit overhead   single-row INSERTs at synchronous_commit = local, one session, on a
 *                     primary alone and on a primary with two async standbys attached
 *                     (two clusters side by side, runs alternating A B A B); the ratio of
 *                     medians is the overhead (target: under 10%)
 *   replay            the heaviest load one client makes (back-to-back single-row INSERTs
 *                     at synchronous_commit = off, then multi-row INSERT ... SELECT), with
 *                     the standby's replay lag sampled from pg_stat_replication as it runs:
 *                     bounded (not growing) means replay keeps up; records/s generated
 *                     against records/s replayed (until the standby has caught up)
 *
 * Default placement `thread`: each server in its own worker thread, as deployed.
 * Usage: node dist/bench/replication.js [--commits N] [--pairs P] [--seconds S] [--placement thread|inline]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Server, type ServerPlacement } from '../src/index.js';
import { parseLsn } from '../src/wal/lsn.js';
import { quantile } from './raw.js';
import { arg, numberArg } from './args.js';

const COMMITS = numberArg('commits', 2000);
const PAIRS = numberArg('pairs', 3);
const SECONDS = numberArg('seconds', 4);
const PLACEMENT = arg('placement', 'thread') as ServerPlacement;

async function commitLatencies(primary: Server, count: number, firstId: number): Promise<number[]> {
  const session = await primary.connect({ settings: { synchronous_commit: 'local' } });
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await session.query('INSERT INTO kv VALUES ($1, $2)', [firstId + i, 'x']);
    times.push((performance.now() - t0) * 1000);
  }
  session.close();
  return times;
}

async function lsnOf(server: Server, sql: string): Promise<number> {
  const value = Object.values((await server.query(sql)).rows[0]!)[0];
  return value === null ? 0 : parseLsn(value as string);
}

/** Drives `load` for SECONDS while sampling the replay lag; then waits for the standby to catch up. */
async function replayRun(primary: Server, standby: Server, label: string, load: (stop: () => boolean) => Promise<number>): Promise<void> {
  const startLsn = await lsnOf(primary, 'SELECT pg_current_wal_lsn()');
  const startReplay = await lsnOf(standby, 'SELECT pg_last_wal_replay_lsn()');
  const sampler = await primary.connect();
  const lags: number[] = [];
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  const loading = load(() => performance.now() > deadline);
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const row = (await sampler.query('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS lag FROM pg_stat_replication')).rows[0];
    if (row !== undefined && row['lag'] !== null) lags.push(row['lag'] as number);
  }
  const records = await loading;
  const loadSeconds = (performance.now() - t0) / 1000;
  const endLsn = await lsnOf(primary, 'SELECT pg_current_wal_lsn()');
  while (await lsnOf(standby, 'SELECT pg_last_wal_replay_lsn()') < endLsn) await new Promise((resolve) => setTimeout(resolve, 2));
  const caughtUpSeconds = (performance.now() - t0) / 1000;
  sampler.close();
  const half = Math.floor(lags.length / 2);
  const kb = (bytes: number): string => `${(bytes / 1024).toFixed(0)} kB`;
  console.log(`${label}`);
  console.log(`  generated ${records} records (${((endLsn - startLsn) / 1024 / 1024).toFixed(1)} MB WAL) in ${loadSeconds.toFixed(2)} s: ${(records / loadSeconds).toFixed(0)} records/s`);
  console.log(`  standby replayed them ${(caughtUpSeconds - loadSeconds) * 1000 < 1 ? 'at once' : `${((caughtUpSeconds - loadSeconds) * 1000).toFixed(0)} ms after the load stopped`}: ${(records / caughtUpSeconds).toFixed(0)} records/s (${((endLsn - startReplay) / 1024 / 1024 / caughtUpSeconds).toFixed(1)} MB/s)`);
  console.log(`  replay lag samples: ${lags.length}; first half p50 ${kb(quantile(lags.slice(0, half), 0.5))} max ${kb(Math.max(...lags.slice(0, half)))}; second half p50 ${kb(quantile(lags.slice(half), 0.5))} max ${kb(Math.max(...lags.slice(half)))}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env['WALSHIP_BENCH_DIR'] ?? tmpdir(), 'walship-repl-bench-'));
  const alone = await Cluster.create({ dir: join(dir, 'alone'), placement: PLACEMENT });
  const replicated = await Cluster.create({ dir: join(dir, 'replicated'), placement: PLACEMENT });
  try {
    const lone = await alone.initPrimary('primary');
    const primary = await replicated.initPrimary('primary');
    for (const p of [lone, primary]) await p.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
    const s1 = await replicated.addStandby('s1');
    await replicated.addStandby('s2');
    // Warm up both (JIT, first segments); then the measured runs alternate.
    await commitLatencies(lone, 500, 0);
    await commitLatencies(primary, 500, 0);
    const none: number[] = [];
    const two: number[] = [];
    const ratios: number[] = [];
    for (let pair = 0; pair < PAIRS; pair++) {
      const firstId = 500 + pair * COMMITS;
      const a = quantile(await commitLatencies(lone, COMMITS, firstId), 0.5);
      const b = quantile(await commitLatencies(primary, COMMITS, firstId), 0.5);
      none.push(a);
      two.push(b);
      ratios.push(b / a);
    }
    const streaming = (await primary.query("SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'")).rows[0]!['n'];
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, placement ${PLACEMENT}, dir ${dir}`);
    console.log(`commit (INSERT, synchronous_commit = local), ${COMMITS} per run, ${PAIRS} alternating pairs`);
    console.log(`  primary alone                      p50 ${quantile(none, 0.5).toFixed(0)} µs`);
    console.log(`  primary + ${streaming} async standbys streaming  p50 ${quantile(two, 0.5).toFixed(0)} µs   overhead ${((quantile(ratios, 0.5) - 1) * 100).toFixed(1)}% (target < 10%)`);

    await primary.query('CREATE TABLE load (id int, v text)');
    let id = 0;
    await replayRun(primary, s1, `replay under single-row INSERTs, synchronous_commit = off, ${SECONDS} s`, async (stop) => {
      const session = await primary.connect({ settings: { synchronous_commit: 'off' } });
      let records = 0;
      while (!stop()) {
        await session.query('INSERT INTO load VALUES ($1, $2)', [id++, 'payload']);
        records += 2; // the heap insert and the commit
      }
      session.close();
      return records;
    });
    await replayRun(primary, s1, `replay under INSERT ... SELECT of 1000 rows per statement, ${SECONDS} s`, async (stop) => {
      const session = await primary.connect({ settings: { synchronous_commit: 'off' } });
      let records = 0;
      while (!stop()) {
        await session.query('INSERT INTO load SELECT g, $1 FROM generate_series(1, 1000) g', ['payload']);
        records += 1001;
      }
      session.close();
      return records;
    });
  } finally {
    await alone.destroy();
    await replicated.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
