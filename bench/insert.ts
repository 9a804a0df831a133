/*
 * insert.ts — what a committed single-row INSERT costs through the public API, against the
 * raw mechanism, in one run on the same disk; and how fast crash recovery replays.
 *
 *   raw        8 KiB pwrite + fdatasync into a preallocated file
 *   local 1    one session, synchronous_commit = local, INSERT INTO kv VALUES ($1, $2)
 *              with parameters, as a driver sends it (the session keeps it parsed)
 *   off 1      one session, synchronous_commit = off
 *   local 16   sixteen sessions at once (group commit): throughput against 1 session
 *   replay     rows inserted without a checkpoint, the server killed, the restart timed
 *
 * Placement inline (the setting for the `off` target); pass --placement thread to
 * measure a server in its own worker thread. Raw and walship runs alternate.
 * Usage: node dist/bench/insert.js [--commits N] [--pairs P] [--placement inline|thread] [--replay-rows R]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ServerPlacement } from '../src/index.js';
import { parseLsn } from '../src/wal/lsn.js';
import { quantile, rawFdatasync } from './raw.js';
import { arg } from './args.js';

const COMMITS = Number(arg('commits', '2000'));
const PAIRS = Number(arg('pairs', '3'));
const PLACEMENT = arg('placement', 'inline') as ServerPlacement;
const REPLAY_ROWS = Number(arg('replay-rows', '100000'));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env['WALSHIP_BENCH_DIR'] ?? tmpdir(), 'walship-insert-'));
  const cluster = await Cluster.create({ dir, placement: PLACEMENT });
  try {
    const primary = await cluster.initPrimary('primary');
    await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
    let nextId = 0;
    const timed = async (settings: Record<string, string>, count: number): Promise<number[]> => {
      const session = await primary.connect({ settings });
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        await session.query('INSERT INTO kv VALUES ($1, $2)', [nextId++, 'x']);
        times.push((performance.now() - t0) * 1000);
      }
      session.close();
      return times;
    };
    const concurrent = async (clients: number, total: number): Promise<number> => {
      const sessions = await Promise.all(Array.from({ length: clients }, () => primary.connect({ settings: { synchronous_commit: 'local' } })));
      const t0 = performance.now();
      await Promise.all(sessions.map(async (session) => {
        for (let i = 0; i < total / clients; i++) await session.query('INSERT INTO kv VALUES ($1, $2)', [nextId++, 'x']);
      }));
      const seconds = (performance.now() - t0) / 1000;
      for (const s of sessions) s.close();
      return total / seconds;
    };
    await timed({ synchronous_commit: 'local' }, 1000); // warm up (JIT, first segments)
    await timed({ synchronous_commit: 'off' }, 3000);
    const raw: number[] = [];
    const local: number[] = [];
    const localP99: number[] = [];
    const off: number[] = [];
    const offP99: number[] = [];
    const ratios: number[] = [];
    const tps1: number[] = [];
    const tps16: number[] = [];
    for (let pair = 0; pair < PAIRS; pair++) {
      const r = rawFdatasync(dir, COMMITS);
      const l = await timed({ synchronous_commit: 'local' }, COMMITS);
      const o = await timed({ synchronous_commit: 'off' }, COMMITS);
      raw.push(quantile(r, 0.5));
      local.push(quantile(l, 0.5));
      localP99.push(quantile(l, 0.99));
      off.push(quantile(o, 0.5));
      offP99.push(quantile(o, 0.99));
      ratios.push(quantile(l, 0.5) / quantile(r, 0.5));
      tps1.push(await concurrent(1, COMMITS));
      tps16.push(await concurrent(16, COMMITS * 4));
    }
    // Replay: rows without a checkpoint since, then a kill and a timed restart.
    await primary.query('CHECKPOINT');
    const before = parseLsn(String((await primary.query('SELECT pg_current_wal_lsn()')).rows[0]!['pg_current_wal_lsn']));
    const loader = await primary.connect({ settings: { synchronous_commit: 'off' } });
    for (let i = 0; i < REPLAY_ROWS; i++) await loader.query(`INSERT INTO kv VALUES (${nextId++}, 'replay row ${i}')`);
    // One local commit flushes everything before it, so the kill loses nothing of the load.
    await loader.query('SET synchronous_commit = local');
    await loader.query(`INSERT INTO kv VALUES (${nextId++}, 'last')`);
    const after = parseLsn(String((await primary.query('SELECT pg_current_wal_lsn()')).rows[0]!['pg_current_wal_lsn']));
    await primary.stop('immediate');
    const t0 = performance.now();
    await primary.start();
    const seconds = (performance.now() - t0) / 1000;
    const records = (REPLAY_ROWS + 1) * 2;
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, placement ${PLACEMENT}, dir ${dir}`);
    console.log(`${COMMITS} commits per run, ${PAIRS} alternating pairs`);
    console.log(`raw 8 KiB write + fdatasync     p50 ${quantile(raw, 0.5).toFixed(0)} µs`);
    console.log(`INSERT local, 1 session         p50 ${quantile(local, 0.5).toFixed(0)} µs  p99 ${quantile(localP99, 0.5).toFixed(0)} µs  ratio ${quantile(ratios, 0.5).toFixed(2)}x (target <= 1.5x)`);
    console.log(`INSERT off, 1 session           p50 ${quantile(off, 0.5).toFixed(1)} µs  p99 ${quantile(offP99, 0.5).toFixed(1)} µs (target p50 < 50 µs inline)`);
    console.log(`local throughput, 1 session     ${quantile(tps1, 0.5).toFixed(0)} commits/s`);
    console.log(`local throughput, 16 sessions   ${quantile(tps16, 0.5).toFixed(0)} commits/s  ${(quantile(tps16, 0.5) / quantile(tps1, 0.5)).toFixed(1)}x (target >= 6x)`);
    console.log(`crash recovery: ${records} records, ${((after - before) / 1e6).toFixed(1)} MB of WAL replayed in ${seconds.toFixed(2)} s (restart included): ${(records / seconds / 1e3).toFixed(0)} k records/s, ${((after - before) / 1e6 / seconds).toFixed(1)} MB/s`);
  } finally {
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
