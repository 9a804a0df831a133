/*
 * standby-reads.ts — what a hot standby's own queries cost its replay, in one run on this
 * machine (issue 7's benchmark).
 *
 *   replay throughput   one primary session runs INSERT ... SELECT of --rows rows per
 *                       statement at synchronous_commit = off for --seconds; the standby
 *                       replays it with no sessions of its own (A) and with --readers
 *                       sessions each looping SELECT count(*), sum(x) over a 1000-row table
 *                       as fast as it answers (B), phases alternating A B A B. Measured per
 *                       phase: WAL generated and replayed per second while the load runs
 *                       (pg_current_wal_lsn() and pg_last_wal_replay_lsn() at the load's
 *                       start and end), the time the standby needs after the
 *                       load stops, and replay capacity: with the standby cut off from the
 *                       primary (Cluster.partition) the primary writes --backlog statements;
 *                       after the heal the standby reconnects (wal_retrieve_retry_interval =
 *                       50ms), streams and replays them, and the clock runs from the first
 *                       poll that sees pg_last_wal_replay_lsn() move to the one that sees it
 *                       past their end. Capacity is what the 20% target is about:
 *                       under the steady load replay keeps up, so its rate is the load's,
 *                       and the load's client shares this process with the readers' clients.
 *                       (Not pg_wal_replay_pause: walship's startup keeps reading and
 *                       decoding while paused, and resume applies the queue in one step.)
 *   replay delay        a standby with max_standby_streaming_delay = 100ms; the primary
 *                       inserts rows into t, deletes the oldest and runs VACUUM t every
 *                       --churn-ms, so its cleanup records conflict with snapshots on the
 *                       standby; readers there loop BEGIN ISOLATION LEVEL REPEATABLE READ;
 *                       SELECT count(*) FROM t; idle 50-500 ms; COMMIT (a FATAL ends a
 *                       session: it reconnects and goes on). A probe session inserts an id
 *                       into probe every 20 ms; a watcher session on the standby polls
 *                       max(id) and the delay of an id is from its INSERT's reply on the
 *                       primary to the poll that first sees it (both clocks are this
 *                       process's). Runs with readers alternate with runs without (baseline).
 *                       Conflicts come from the standby's pg_stat_database_conflicts.
 *
 * Each part has a cluster of its own (primary + one streaming standby), the first destroyed
 * before the second starts. Everything started is stopped and its directory removed on exit,
 * on error and on Ctrl-C (--keep leaves the directory, servers stopped, for the logs).
 * Usage: node dist/bench/standby-reads.js [--seconds S] [--pairs P] [--readers N] [--rows R]
 *   [--backlog STATEMENTS] [--delay-seconds S] [--churn-ms MS] [--placement thread|inline|process] [--keep]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup, cleanUpOnSignals } from '../scripts/bench/cleanup.js';
import { formatMillis, newHistogram, recordMicros, summarize } from '../scripts/bench/latency.js';
import { waitFor } from '../scripts/bench/wait.js';
import { Cluster, PgError, type Server, type ServerPlacement, type Session } from '../src/index.js';
import { parseLsn } from '../src/wal/lsn.js';
import { arg, numberArg } from './args.js';

const SECONDS = numberArg('seconds', 5);
const PAIRS = numberArg('pairs', 2);
const READERS = numberArg('readers', 16);
const ROWS = numberArg('rows', 1000);
const BACKLOG = numberArg('backlog', 200);
const DELAY_SECONDS = numberArg('delay-seconds', 12);
const CHURN_MS = numberArg('churn-ms', 100);
const PROBE_MS = 20;
const PLACEMENT = arg('placement', 'thread') as ServerPlacement;
const KEEP = process.argv.includes('--keep');
const CATCH_UP_TIMEOUT_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(2);

async function lsnOf(session: Server | Session, sql: string): Promise<number> {
  const value = Object.values((await session.query(sql)).rows[0]!)[0];
  return value === null ? 0 : parseLsn(value as string);
}

/** `count` sessions on `server`, each running `body` in a loop until stopped. */
function loop(server: Server, count: number, body: (session: Session) => Promise<void>): { stop: () => Promise<void> } {
  let stopping = false;
  const runs = Array.from({ length: count }, async () => {
    const session = await server.connect();
    while (!stopping) await body(session);
    session.close();
  });
  return { stop: async () => { stopping = true; await Promise.all(runs); } };
}

// ---------------------------------------------------------------------------------------
// Part 1: replay throughput with and without standby readers

interface ThroughputPhase {
  readonly readers: number;
  readonly generatedBytesPerSecond: number;
  readonly replayedBytesPerSecond: number;
  readonly recordsPerSecond: number;
  readonly lagAtStopBytes: number;
  readonly catchUpMs: number;
  readonly backlogBytes: number;
  readonly backlogBytesPerSecond: number;
  readonly backlogRecordsPerSecond: number;
  readonly readerQueriesPerSecond: number;
  readonly reconnectMs: number;
}

async function waitForReplay(watcher: Session, lsn: number): Promise<void> {
  const deadline = performance.now() + CATCH_UP_TIMEOUT_MS;
  while (await lsnOf(watcher, 'SELECT pg_last_wal_replay_lsn()') < lsn) {
    if (performance.now() > deadline) throw new Error(`standby replay did not reach ${lsn.toString(16)} within ${CATCH_UP_TIMEOUT_MS} ms`);
    await sleep(2);
  }
}

/**
 * Replay of [start, end) after a heal: polls pg_last_wal_replay_lsn() and times from the
 * first poll that sees replay past `start` (the reconnection before it is reported apart).
 */
async function timeReplay(watcher: Session, start: number, end: number): Promise<{ bytes: number; seconds: number; reconnectMs: number }> {
  const t0 = performance.now();
  const deadline = t0 + CATCH_UP_TIMEOUT_MS;
  let first: { at: number; lsn: number } | null = null;
  for (;;) {
    const lsn = await lsnOf(watcher, 'SELECT pg_last_wal_replay_lsn()');
    const at = performance.now();
    if (first === null && lsn > start) first = { at, lsn };
    if (lsn >= end) {
      // Replay done by the first poll that saw it move: time it from the heal instead.
      if (first!.at === at) return { bytes: end - start, seconds: (at - t0) / 1000, reconnectMs: 0 };
      return { bytes: end - first!.lsn, seconds: (at - first!.at) / 1000, reconnectMs: first!.at - t0 };
    }
    if (at > deadline) throw new Error(`standby replay did not reach ${end.toString(16)} within ${CATCH_UP_TIMEOUT_MS} ms of the heal`);
    await sleep(1);
  }
}

async function throughputPhase(cluster: Cluster, primary: Server, standby: Server, readers: number): Promise<ThroughputPhase> {
  let readerQueries = 0;
  const reading = loop(standby, readers, async (s) => {
    await s.query('SELECT count(*), sum(x) FROM r WHERE id % 7 <> 3');
    readerQueries++;
  });
  const writer = await primary.connect({ settings: { synchronous_commit: 'off' } });
  const watcher = await standby.connect();
  const insert = `INSERT INTO t SELECT g, g % 1000 FROM generate_series(1, ${ROWS}) g`;
  try {
    // Steady load: generation and replay over the same window.
    const startLsn = await lsnOf(primary, 'SELECT pg_current_wal_lsn()');
    const t0 = performance.now();
    const r0 = readerQueries;
    let statements = 0;
    while (performance.now() - t0 < SECONDS * 1000) {
      await writer.query(insert);
      statements++;
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    const endLsn = await lsnOf(primary, 'SELECT pg_current_wal_lsn()');
    const replayedAtStop = await lsnOf(watcher, 'SELECT pg_last_wal_replay_lsn()');
    const readerQueriesPerSecond = (readerQueries - r0) / loadSeconds;
    const stopped = performance.now();
    await waitForReplay(watcher, endLsn);
    const catchUpMs = performance.now() - stopped;

    // Capacity: a backlog written while the standby is cut off, streamed and replayed as
    // fast as the standby goes once the network is back (timed from replay's first move).
    cluster.partition('primary', standby.name);
    const backlogStart = endLsn;
    for (let i = 0; i < BACKLOG; i++) await writer.query(insert);
    const backlogEnd = await lsnOf(primary, 'SELECT pg_current_wal_lsn()');
    cluster.heal('primary', standby.name);
    const backlog = await timeReplay(watcher, backlogStart, backlogEnd);
    return {
      readers,
      generatedBytesPerSecond: (endLsn - startLsn) / loadSeconds,
      replayedBytesPerSecond: (replayedAtStop - startLsn) / loadSeconds,
      recordsPerSecond: (statements * (ROWS + 1)) / loadSeconds, // a heap insert per row and the commit
      lagAtStopBytes: endLsn - replayedAtStop,
      catchUpMs,
      backlogBytes: backlogEnd - backlogStart,
      backlogBytesPerSecond: backlog.bytes / backlog.seconds,
      backlogRecordsPerSecond: (BACKLOG * (ROWS + 1) * backlog.bytes) / (backlogEnd - backlogStart) / backlog.seconds,
      reconnectMs: backlog.reconnectMs,
      readerQueriesPerSecond,
    };
  } finally {
    writer.close();
    watcher.close();
    await reading.stop();
  }
}

function printThroughput(phases: readonly ThroughputPhase[]): void {
  console.log(`replay throughput: INSERT ... SELECT of ${ROWS} rows per statement, synchronous_commit = off, ${SECONDS} s per phase; backlog ${BACKLOG} statements`);
  console.log('  phase  readers  reader q/s  generated MB/s  replayed MB/s  records/s  lag at stop  caught up  backlog MB  reconnect  backlog MB/s  backlog records/s');
  for (const [i, p] of phases.entries()) {
    console.log(`  ${String(i + 1).padStart(5)}  ${String(p.readers).padStart(7)}  ${p.readerQueriesPerSecond.toFixed(0).padStart(10)}  ${mb(p.generatedBytesPerSecond).padStart(14)}  ${mb(p.replayedBytesPerSecond).padStart(13)}  ${p.recordsPerSecond.toFixed(0).padStart(9)}  ${(p.lagAtStopBytes / 1024).toFixed(0).padStart(8)} kB  ${p.catchUpMs.toFixed(0).padStart(6)} ms  ${mb(p.backlogBytes).padStart(10)}  ${p.reconnectMs.toFixed(0).padStart(6)} ms  ${mb(p.backlogBytesPerSecond).padStart(12)}  ${p.backlogRecordsPerSecond.toFixed(0).padStart(17)}`);
  }
  const pairs: { steady: number; capacity: number }[] = [];
  for (let i = 0; i + 1 < phases.length; i += 2) {
    const [a, b] = [phases[i]!, phases[i + 1]!];
    pairs.push({ steady: b.replayedBytesPerSecond / a.replayedBytesPerSecond, capacity: b.backlogBytesPerSecond / a.backlogBytesPerSecond });
  }
  const median = (xs: number[]): number => { const s = [...xs].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
  console.log(`  B/A replayed under load, per pair: ${pairs.map((p) => p.steady.toFixed(2)).join(', ')} (median ${median(pairs.map((p) => p.steady)).toFixed(2)})`);
  console.log(`  B/A replay capacity (backlog), per pair: ${pairs.map((p) => p.capacity.toFixed(2)).join(', ')} (median ${median(pairs.map((p) => p.capacity)).toFixed(2)}; target >= 0.80)`);
}

async function measureThroughput(dir: string, cleanup: Cleanup): Promise<void> {
  const cluster = await Cluster.create({ dir: join(dir, 'throughput'), placement: PLACEMENT });
  let destroyed = false;
  cleanup.add('throughput cluster', async () => { if (!destroyed) await cluster.destroy(); });
  const primary = await cluster.initPrimary('primary');
  await primary.query('CREATE TABLE t (id int, x int)');
  await primary.query('CREATE TABLE r (id int, x int)');
  await primary.query('INSERT INTO r SELECT g, g % 100 FROM generate_series(1, 1000) g');
  const standby = await cluster.addStandby('s1', { slot: 's1', settings: { wal_retrieve_retry_interval: '50ms' } });
  const rEnd = await lsnOf(primary, 'SELECT pg_current_wal_lsn()');
  const watcher = await standby.connect();
  await waitForReplay(watcher, rEnd);
  watcher.close();
  // Warm-up (JIT, the first segments), not measured.
  const warm = await primary.connect({ settings: { synchronous_commit: 'off' } });
  for (let i = 0; i < 20; i++) await warm.query(`INSERT INTO t SELECT g, g FROM generate_series(1, ${ROWS}) g`);
  warm.close();
  const phases: ThroughputPhase[] = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    phases.push(await throughputPhase(cluster, primary, standby, 0));
    phases.push(await throughputPhase(cluster, primary, standby, READERS));
  }
  printThroughput(phases);
  await cluster.destroy();
  destroyed = true;
}

// ---------------------------------------------------------------------------------------
// Part 2: replay delay while conflicts are resolved at max_standby_streaming_delay = 100ms

type Conflicts = Record<string, number>;

async function conflictCounters(standby: Server): Promise<Conflicts> {
  const row = (await standby.query("SELECT * FROM pg_stat_database_conflicts WHERE datname = 'postgres'")).rows[0] ?? {};
  return Object.fromEntries(Object.entries(row).filter(([k]) => k.startsWith('confl_')).map(([k, v]) => [k, Number(v)]));
}

interface ReaderCounts { transactions: number; terminated: number; cancelled: number; other: Map<string, number> }

/** The readers of part 2: snapshot transactions that stay open a while, reconnecting after a FATAL. */
function snapshotReaders(standby: Server, count: number, counts: ReaderCounts): { stop: () => Promise<void> } {
  let stopping = false;
  const runs = Array.from({ length: count }, async () => {
    let session = await standby.connect();
    while (!stopping) {
      try {
        await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t');
        await sleep(50 + Math.random() * 450);
        await session.query('COMMIT');
        counts.transactions++;
      } catch (err) {
        if (!(err instanceof PgError)) throw err;
        if (err.severity === 'FATAL' && /conflict with recovery/.test(err.message)) counts.terminated++;
        else if (err.code === '40001' && /conflict with recovery/.test(err.message)) counts.cancelled++;
        else counts.other.set(`${err.severity} ${err.code} ${err.message}`, (counts.other.get(`${err.severity} ${err.code} ${err.message}`) ?? 0) + 1);
        if (session.ended) session = await standby.connect();
        else await session.query('ROLLBACK');
      }
    }
    session.close();
  });
  return { stop: async () => { stopping = true; await Promise.all(runs); } };
}

interface DelayRun {
  readonly readers: number;
  readonly delays: ReturnType<typeof summarize>;
  readonly probes: number;
  readonly conflicts: Conflicts;
  readonly reader: ReaderCounts;
  readonly churns: number;
}

async function delayRun(primary: Server, standby: Server, readers: number, firstProbe: number): Promise<DelayRun> {
  const before = await conflictCounters(standby);
  const counts: ReaderCounts = { transactions: 0, terminated: 0, cancelled: 0, other: new Map() };
  const reading = snapshotReaders(standby, readers, counts);
  const ackAt = new Map<number, number>();
  const seenAt = new Map<number, number>();
  let nextId = firstProbe;
  let churns = 0;
  let newest = 100_000 + firstProbe * 10;
  const churn = loop(primary, 1, async (s) => {
    const t = performance.now();
    await s.query('INSERT INTO t SELECT g, g % 1000 FROM generate_series($1::int, $2::int) g', [newest + 1, newest + 200]);
    newest += 200;
    await s.query('DELETE FROM t WHERE id <= $1', [newest - 2000]);
    await s.query('VACUUM t');
    churns++;
    await sleep(Math.max(0, CHURN_MS - (performance.now() - t)));
  });
  const probe = loop(primary, 1, async (s) => {
    const id = nextId++;
    await s.query('INSERT INTO probe VALUES ($1)', [id]);
    ackAt.set(id, performance.now());
    await sleep(PROBE_MS);
  });
  const watcher = await standby.connect();
  const watch = async (): Promise<void> => {
    const seen = Number((await watcher.query('SELECT max(id) AS m FROM probe')).rows[0]!['m'] ?? 0);
    const now = performance.now();
    for (let id = firstProbe; id <= seen; id++) if (!seenAt.has(id)) seenAt.set(id, now);
  };
  const t0 = performance.now();
  while (performance.now() - t0 < DELAY_SECONDS * 1000) { await watch(); await sleep(1); }
  await probe.stop();
  await churn.stop();
  const deadline = performance.now() + CATCH_UP_TIMEOUT_MS;
  while (seenAt.size < ackAt.size && performance.now() < deadline) { await watch(); await sleep(1); }
  watcher.close();
  await reading.stop();
  const after = await conflictCounters(standby);
  const histogram = newHistogram();
  for (const [id, ack] of ackAt) {
    const seen = seenAt.get(id);
    if (seen === undefined) throw new Error(`probe ${id} never reached the standby within ${CATCH_UP_TIMEOUT_MS} ms`);
    recordMicros(histogram, Math.max(0, seen - ack) * 1000);
  }
  const conflicts = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
  return { readers, delays: summarize(histogram), probes: ackAt.size, conflicts, reader: counts, churns };
}

function printDelays(runs: readonly DelayRun[]): void {
  console.log(`replay delay at max_standby_streaming_delay = 100ms: ${DELAY_SECONDS} s per run, churn (INSERT 200 rows, DELETE the oldest, VACUUM t) every ${CHURN_MS} ms, a probe every ${PROBE_MS} ms`);
  console.log('  run  readers  probes  delay p50 / p95 / p99 / max ms      churns  reader xacts  terminated  cancelled  conflicts (pg_stat_database_conflicts)');
  for (const [i, r] of runs.entries()) {
    const d = r.delays;
    const delays = `${formatMillis(d.p50Us)} / ${formatMillis(d.p95Us)} / ${formatMillis(d.p99Us)} / ${formatMillis(d.maxUs)}`;
    const conflicts = Object.entries(r.conflicts).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    console.log(`  ${String(i + 1).padStart(3)}  ${String(r.readers).padStart(7)}  ${String(r.probes).padStart(6)}  ${delays.padEnd(34)}  ${String(r.churns).padStart(6)}  ${String(r.reader.transactions).padStart(12)}  ${String(r.reader.terminated).padStart(10)}  ${String(r.reader.cancelled).padStart(9)}  ${conflicts}`);
    for (const [what, n] of r.reader.other) console.log(`       other reader errors: ${n} x ${what}`);
  }
}

/** The standby log's lines about conflicts, counted, to set beside what the clients saw. */
function logCounts(standby: Server): string {
  const log = readFileSync(join(standby.dataDir, 'log', 'postgresql.log'), 'utf8');
  const count = (re: RegExp): number => log.split('\n').filter((line) => re.test(line)).length;
  return `terminating connection due to conflict with recovery: ${count(/terminating connection due to conflict with recovery/)}, ` +
    `canceling statement due to conflict with recovery: ${count(/canceling statement due to conflict with recovery/)}`;
}

async function measureDelays(dir: string, cleanup: Cleanup): Promise<void> {
  const cluster = await Cluster.create({ dir: join(dir, 'delay'), placement: PLACEMENT });
  let destroyed = false;
  cleanup.add('delay cluster', async () => { if (!destroyed) await cluster.destroy(); });
  const primary = await cluster.initPrimary('primary');
  await primary.query('CREATE TABLE t (id int, x int)');
  await primary.query('CREATE TABLE probe (id int)');
  await primary.query('INSERT INTO t SELECT g, g % 1000 FROM generate_series(1, 2000) g');
  const standby = await cluster.addStandby('s1', { settings: { max_standby_streaming_delay: '100ms' } });
  const setting = (await standby.query('SHOW max_standby_streaming_delay')).rows[0];
  console.log(`standby s1: max_standby_streaming_delay = ${Object.values(setting ?? {})[0]}`);
  const runs: DelayRun[] = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    runs.push(await delayRun(primary, standby, 0, runs.length * 100_000 + 1));
    runs.push(await delayRun(primary, standby, READERS, runs.length * 100_000 + 1));
  }
  printDelays(runs);
  const total = runs.reduce((n, r) => n + r.reader.terminated, 0);
  const cancelled = runs.reduce((n, r) => n + r.reader.cancelled, 0);
  console.log(`  clients saw ${total} FATAL and ${cancelled} ERROR 40001; the standby's log: ${logCounts(standby)}`);
  const counted = (await standby.query("SELECT conflicts FROM pg_stat_database WHERE datname = 'postgres'")).rows[0];
  console.log(`  pg_stat_database.conflicts = ${Object.values(counted ?? {})[0]}`);
  await cluster.destroy();
  destroyed = true;
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  const release = cleanUpOnSignals(cleanup, (line) => console.error(line));
  const dir = mkdtempSync(join(process.env['WALSHIP_BENCH_DIR'] ?? tmpdir(), 'walship-standby-reads-'));
  cleanup.add(`directory ${dir}`, () => { if (!KEEP) rmSync(dir, { recursive: true, force: true }); });
  let failed = false;
  try {
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, placement ${PLACEMENT}, dir ${dir}`);
    await measureThroughput(dir, cleanup);
    await measureDelays(dir, cleanup);
  } catch (err) {
    failed = true;
    console.error(err);
  } finally {
    for (const failure of await cleanup.run()) console.error(`cleanup: ${failure}`);
    release();
  }
  if (failed) process.exitCode = 1;
}

await main();
