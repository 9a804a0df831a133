/*
 * warm-standby.ts — how long a warm standby takes to replay an archive of --wal-mb MB of
 * WAL, walship beside PostgreSQL 15, one after the other in one run on this machine.
 *
 * Both systems go through the same steps:
 *   1. a primary with 16 MB segments, archive_mode = on, archive_command = 'cp %p ARCHIVE/%f',
 *      and the orders table (bench/archive.ts's)
 *   2. a warm standby of it, not running: a base backup with standby.signal and
 *      restore_command = 'cp ARCHIVE/%f %p', no primary_conninfo (walship: addStandby with
 *      streaming: false, then stop(); PostgreSQL: pg_basebackup without -R, not started)
 *   3. --wal-mb MB of WAL on the primary (MB = 2^20 bytes): INSERT ... SELECT of 1000
 *      order-like rows per statement at synchronous_commit = off, the same SQL text on both,
 *      until pg_current_wal_insert_lsn() has moved that far; pg_switch_wal(); a wait until
 *      pg_stat_archiver.last_archived_wal is the switched segment
 *   4. the primary's count(*) and sum(id), and the primary stopped (fast): the standby needs
 *      nothing from it, and a checkpoint of the primary's would otherwise share the CPU with
 *      replay (walship's timed checkpoint after 1 GB of inserts takes ~1 minute here)
 *   5. the clock starts, the standby starts (walship: Server.start(); PostgreSQL: pg_ctl
 *      start -w), and every 50 ms one query compares the standby's pg_last_wal_replay_lsn() with pg_switch_wal()'s LSN; the clock stops once
 *      replay has passed it. Then the standby's count(*) and sum(id) must equal the
 *      primary's. The poll is the LSN and not the aggregate because the aggregate scans
 *      millions of rows: polled every 50 ms it would take the CPU replay needs (walship's
 *      standby answers queries on the thread that replays).
 * walship goes first and its cluster is stopped before PostgreSQL's servers start, so the two
 * never share the machine. Segments restored are the standby's `restored log file` log lines
 * since its start. Beside walship's figure: the same segments copied by `/bin/sh -c cp`, one
 * spawn each and one at a time, as restore_command runs them (runtime/shell.ts): the part of
 * the replay time that restoring alone costs.
 * Without PostgreSQL 15's programs (as-postgres.ts says which are missing) walship runs alone.
 * Usage: node dist/bench/warm-standby.js [--wal-mb MB] [--placement thread|inline|process] [--keep]
 */
import { spawn } from 'node:child_process';
import { appendFileSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPostgres, PostgresUnavailable, type PostgresRunner } from '../scripts/bench/as-postgres.js';
import { Cleanup, cleanUpOnSignals } from '../scripts/bench/cleanup.js';
import { freePorts, LOOPBACK } from '../scripts/bench/free-ports.js';
import { waitFor } from '../scripts/bench/wait.js';
import { Cluster, type Server, type ServerPlacement } from '../src/index.js';
import { parseLsn } from '../src/wal/lsn.js';
import { arg, numberArg } from './args.js';

const WAL_MB = numberArg('wal-mb', 1024);
const PLACEMENT = arg('placement', 'thread') as ServerPlacement;
const KEEP = process.argv.includes('--keep');

const MB = 1024 * 1024;
const SEGMENT_SIZE = 16 * MB;
const ROWS_PER_STATEMENT = 1000;
/** Statements between two looks at the WAL position (one psql run on PostgreSQL). */
const STATEMENTS_PER_BATCH = 25;
const POLL_INTERVAL_MS = 50;
const ARCHIVE_TIMEOUT_MS = 300_000;
/** Replay gets 1.5 s per MB of WAL, at least 5 minutes: far beyond either system's pace. */
const REPLAY_TIMEOUT_MS = Math.max(300_000, WAL_MB * 1500);
const CHECK_TIMEOUT_MS = 60_000;
const START_TIMEOUT_SECONDS = 120;
const RESTORED = /restored log file "[0-9A-F]{24}" from archive/g;
const SEGMENT_NAME = /^[0-9A-F]{24}$/;

const CREATE_TABLE = 'CREATE TABLE orders (id int PRIMARY KEY, customer text, item text, quantity int, note text)';
const AGGREGATE = 'SELECT count(*), sum(id) FROM orders';

/** The n-th statement of the load: rows n*1000 .. n*1000+999, with literals only (psql -f runs it as it is). */
function insertStatement(n: number): string {
  const first = n * ROWS_PER_STATEMENT;
  const colour = ['red', 'green', 'blue', 'large', 'small'][n % 5]!;
  return `INSERT INTO orders SELECT g, 'customer ' || (g % 9973), 'item-' || (g % 311) || '-' || '${colour}', g % 17 + 1, ` +
    `'shipped to warehouse ' || (g % 23) || ' on route ' || (g % 101) FROM generate_series(${first}, ${first + ROWS_PER_STATEMENT - 1}) g`;
}

/** One server as the steps see it: a row of text values per query, statements run one by one. */
interface SqlServer {
  row(sql: string): Promise<string[]>;
  runEach(statements: readonly string[]): Promise<void>;
}

interface Outcome {
  readonly system: string;
  readonly walBytes: number;
  readonly segments: number;
  readonly generateSeconds: number;
  readonly replaySeconds: number;
  /** From the clock's stop until the standby's count(*), sum(id) answered equal to the primary's. */
  readonly checkSeconds: number;
  readonly rows: string;
  /** walship only: the same segments through `/bin/sh -c cp`, one at a time. */
  readonly restoreAloneSeconds?: number;
}

interface Generated {
  readonly walBytes: number;
  readonly switchLsn: string;
  readonly generateSeconds: number;
  readonly aggregate: string;
}

/** Steps 3 and 4, but for the stop. */
async function generateAndArchive(primary: SqlServer): Promise<Generated> {
  const t0 = performance.now();
  const [startLsn] = await primary.row('SELECT pg_current_wal_insert_lsn()');
  let statements = 0;
  while (parseLsn((await primary.row('SELECT pg_current_wal_insert_lsn()'))[0]!) - parseLsn(startLsn!) < WAL_MB * MB) {
    await primary.runEach(Array.from({ length: STATEMENTS_PER_BATCH }, (_, i) => insertStatement(statements + i)));
    statements += STATEMENTS_PER_BATCH;
  }
  const [switchLsn] = await primary.row('SELECT pg_switch_wal()');
  const generateSeconds = (performance.now() - t0) / 1000;
  const [segment] = await primary.row(`SELECT pg_walfile_name('${switchLsn}')`);
  let archiver: string[] = [];
  await waitFor(`${segment} archived`, async () => {
    archiver = await primary.row('SELECT last_archived_wal, archived_count, failed_count FROM pg_stat_archiver');
    return archiver[0] === segment;
  }, ARCHIVE_TIMEOUT_MS).catch((err: unknown) => {
    throw new Error(`${messageOf(err)} (pg_stat_archiver: last_archived_wal, archived_count, failed_count = ${archiver.join(', ')})`);
  });
  const aggregate = (await primary.row(AGGREGATE)).join(', ');
  return { walBytes: parseLsn(switchLsn!) - parseLsn(startLsn!), switchLsn: switchLsn!, generateSeconds, aggregate };
}

/** Step 5: starts the standby on the clock, and stops the clock when it has replayed the switch. */
async function timeReplay(standby: SqlServer, start: () => Promise<void>, generated: Generated, logTail: () => string): Promise<{ replaySeconds: number; checkSeconds: number }> {
  const t0 = performance.now();
  await start();
  const target = parseLsn(generated.switchLsn);
  let replayed = '';
  const deadline = t0 + REPLAY_TIMEOUT_MS;
  for (;;) {
    // A standby that cannot answer yet is one that has not replayed yet.
    replayed = (await standby.row('SELECT pg_last_wal_replay_lsn()').catch(() => ['']))[0] ?? '';
    if (replayed !== '' && parseLsn(replayed) >= target) break;
    if (performance.now() > deadline) {
      throw new Error(`the warm standby did not replay up to ${generated.switchLsn} in ${REPLAY_TIMEOUT_MS / 1000} s ` +
        `(pg_last_wal_replay_lsn() = ${replayed || 'no answer'}); the end of its log:\n${logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  const stopped = performance.now();
  let seen = '';
  await waitFor(`the warm standby's ${AGGREGATE} to be the primary's (${generated.aggregate})`, async () => {
    seen = (await standby.row(AGGREGATE)).join(', ');
    return seen === generated.aggregate;
  }, CHECK_TIMEOUT_MS).catch((err: unknown) => {
    throw new Error(`${messageOf(err)}: it is ${seen}; the end of its log:\n${logTail()}`);
  });
  return { replaySeconds: (stopped - t0) / 1000, checkSeconds: (performance.now() - stopped) / 1000 };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function restoredSince(log: string, from: number): number {
  return log.slice(from).match(RESTORED)?.length ?? 0;
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines - 1).join('\n');
}

/** `/bin/sh -c 'cp ARCHIVE/f DIR/f'` for every archived segment, one at a time, as restore_command runs. */
async function restoreAlone(archive: string, into: string): Promise<number> {
  mkdirSync(into);
  const names = readdirSync(archive).filter((n) => SEGMENT_NAME.test(n)).sort();
  const t0 = performance.now();
  for (const name of names) {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', `cp ${archive}/${name} ${into}/${name}`], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`cp ${name} exited with ${code}`))));
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  rmSync(into, { recursive: true, force: true });
  return seconds;
}

async function runWalship(root: string, cleanup: Cleanup): Promise<Outcome> {
  const dir = join(root, 'walship');
  const archive = join(dir, 'archive');
  mkdirSync(archive, { recursive: true });
  const cluster = await Cluster.create({ dir: join(dir, 'cluster'), placement: PLACEMENT });
  let stopped = false;
  cleanup.add('stopping the walship cluster', () => (stopped ? undefined : cluster.destroy()));
  const primary = await cluster.initPrimary('primary', { walSegmentSize: SEGMENT_SIZE, settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` } });
  await primary.query(CREATE_TABLE);
  const warm = await cluster.addStandby('warm', { streaming: false, settings: { restore_command: `cp ${archive}/%f %p`, wal_retrieve_retry_interval: '100ms' } });
  await warm.stop();

  const session = await primary.connect({ settings: { synchronous_commit: 'off' } });
  const sqlOf = (server: Pick<Server, 'query'>): SqlServer => ({
    row: async (sql) => Object.values((await server.query(sql)).rows[0] ?? {}).map((v) => (v === null ? '' : String(v))),
    runEach: async (statements) => {
      for (const sql of statements) await server.query(sql);
    },
  });
  const generated = await generateAndArchive(sqlOf(session));
  session.close();
  await primary.stop();
  console.log(`walship: ${(generated.walBytes / MB).toFixed(0)} MB of WAL generated in ${generated.generateSeconds.toFixed(0)} s and archived; replaying`);

  const logPath = join(warm.dataDir, 'log', 'postgresql.log');
  const logFrom = readFileSync(logPath, 'utf8').length;
  const timed = await timeReplay(sqlOf(warm), () => warm.start(), generated, () => tail(readFileSync(logPath, 'utf8').slice(logFrom)));
  await cluster.destroy();
  stopped = true;
  const restoreAloneSeconds = await restoreAlone(archive, join(dir, 'restore-alone'));
  return {
    system: 'walship', walBytes: generated.walBytes, segments: restoredSince(readFileSync(logPath, 'utf8'), logFrom),
    generateSeconds: generated.generateSeconds, ...timed, rows: generated.aggregate, restoreAloneSeconds,
  };
}

interface PostgresServer {
  readonly name: string;
  readonly dataDir: string;
  readonly port: number;
  readonly log: string;
}

/** pg_ctl start -w, its `stop -m immediate` in the cleanup first (postgres-target.ts does the same). */
async function startPostgres(postgres: PostgresRunner, server: PostgresServer, cleanup: Cleanup): Promise<void> {
  const starting = postgres.run('pg_ctl', ['-D', server.dataDir, '-l', server.log, '-w', '-t', String(START_TIMEOUT_SECONDS), 'start'], {
    detached: true, timeoutMs: (START_TIMEOUT_SECONDS + 10) * 1000,
  });
  cleanup.add(`pg_ctl stop -m immediate (${server.name})`, async () => {
    await starting.catch(() => undefined);
    if (!readdirSync(server.dataDir).includes('postmaster.pid')) return;
    await postgres.run('pg_ctl', ['-D', server.dataDir, '-m', 'immediate', '-w', 'stop']);
  });
  await starting;
}

function psqlOf(postgres: PostgresRunner, port: number, scriptDir: string): SqlServer {
  const connection = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', LOOPBACK, '-p', String(port), '-U', 'postgres', '-d', 'postgres'];
  const script = join(scriptDir, 'batch.sql');
  return {
    row: async (sql) => (await postgres.run('psql', [...connection, '-c', sql])).stdout.trim().split('|'),
    runEach: async (statements) => {
      // psql -f sends each statement on its own: one transaction each, as on walship.
      writeFileSync(script, statements.map((s) => `${s};\n`).join(''));
      await postgres.run('psql', [...connection, '-f', script], { env: { PGOPTIONS: '-c synchronous_commit=off' } });
    },
  };
}

async function runPostgres(postgres: PostgresRunner, root: string, cleanup: Cleanup): Promise<Outcome> {
  const dir = postgres.makeDir({ path: join(root, 'postgresql') });
  const archive = postgres.makeDir({ path: join(dir, 'archive') });
  const logDir = postgres.makeDir({ path: join(dir, 'log') });
  const [primaryPort, standbyPort] = await freePorts(2);
  const primary: PostgresServer = { name: 'primary', dataDir: join(dir, 'primary'), port: primaryPort!, log: join(logDir, 'primary.log') };
  const warm: PostgresServer = { name: 'warm', dataDir: join(dir, 'warm'), port: standbyPort!, log: join(logDir, 'warm.log') };

  await postgres.run('initdb', ['-D', primary.dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--wal-segsize', String(SEGMENT_SIZE / MB), '--no-instructions']);
  appendFileSync(join(primary.dataDir, 'postgresql.conf'), [
    '', '# walship bench: warm standby',
    `listen_addresses = '${LOOPBACK}'`, `port = ${primary.port}`, "unix_socket_directories = ''",
    'wal_level = replica', 'archive_mode = on', `archive_command = 'cp %p ${archive}/%f'`, '',
  ].join('\n'));
  await startPostgres(postgres, primary, cleanup);
  const primarySql = psqlOf(postgres, primary.port, dir);
  await primarySql.row(CREATE_TABLE);

  await postgres.run('pg_basebackup', ['-D', warm.dataDir, '-X', 'stream', '-c', 'fast', '-d', `host=${LOOPBACK} port=${primary.port} user=postgres`]);
  // The copied postgresql.conf names the primary's port; the later line wins.
  appendFileSync(join(warm.dataDir, 'postgresql.conf'), [
    `port = ${warm.port}`, `restore_command = 'cp ${archive}/%f %p'`, "wal_retrieve_retry_interval = '100ms'", 'hot_standby = on', '',
  ].join('\n'));
  const signal = join(warm.dataDir, 'standby.signal');
  writeFileSync(signal, '');
  const owner = statSync(warm.dataDir);
  chownSync(signal, owner.uid, owner.gid);

  const generated = await generateAndArchive(primarySql);
  await postgres.run('pg_ctl', ['-D', primary.dataDir, '-m', 'fast', '-w', '-t', String(START_TIMEOUT_SECONDS), 'stop'], { timeoutMs: (START_TIMEOUT_SECONDS + 10) * 1000 });
  console.log(`PostgreSQL: ${(generated.walBytes / MB).toFixed(0)} MB of WAL generated in ${generated.generateSeconds.toFixed(0)} s and archived; replaying`);
  const timed = await timeReplay(psqlOf(postgres, warm.port, dir), () => startPostgres(postgres, warm, cleanup), generated, () => tail(readFileSync(warm.log, 'utf8')));
  return {
    system: 'PostgreSQL 15', walBytes: generated.walBytes, segments: restoredSince(readFileSync(warm.log, 'utf8'), 0),
    generateSeconds: generated.generateSeconds, ...timed, rows: generated.aggregate,
  };
}

function report(outcomes: readonly Outcome[]): void {
  const rate = (o: Outcome) => o.walBytes / MB / o.replaySeconds;
  const rows = [
    ['system', 'WAL MB', 'segments', 'replay s', 'MB/s', 'generated in', 'check', 'count, sum(id)'],
    ...outcomes.map((o) => [o.system, (o.walBytes / MB).toFixed(0), String(o.segments), o.replaySeconds.toFixed(2), rate(o).toFixed(1),
      `${o.generateSeconds.toFixed(0)} s`, `${(o.checkSeconds * 1000).toFixed(0)} ms`, o.rows]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, walship placement ${PLACEMENT}`);
  for (const r of rows) console.log(r.map((cell, i) => (i === 0 || i === 7 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  const [walship, postgresql] = outcomes;
  if (walship?.restoreAloneSeconds !== undefined) {
    console.log(`walship: the same ${walship.segments} segments through /bin/sh -c cp one at a time: ${walship.restoreAloneSeconds.toFixed(2)} s ` +
      `(${((walship.restoreAloneSeconds / walship.replaySeconds) * 100).toFixed(0)}% of its replay time)`);
  }
  if (walship !== undefined && postgresql !== undefined) {
    console.log(`ratio walship / PostgreSQL: replay time ${(walship.replaySeconds / postgresql.replaySeconds).toFixed(2)}x, ` +
      `MB/s ${(rate(walship) / rate(postgresql)).toFixed(2)}x`);
  }
}

async function main(): Promise<void> {
  let postgres: PostgresRunner | null = null;
  try {
    postgres = findPostgres();
  } catch (err) {
    // `npm run bench` runs where PostgreSQL 15 may not be installed: walship's half still means something.
    if (!(err instanceof PostgresUnavailable)) throw err;
    console.log(`PostgreSQL 15 left out: ${err.message}`);
  }
  const cleanup = new Cleanup();
  const stopListening = cleanUpOnSignals(cleanup, (line) => console.error(line));
  try {
    const parent = process.env['WALSHIP_BENCH_DIR'] ?? tmpdir();
    const prefix = 'walship-warm-bench-';
    const root = postgres === null ? mkdtempSync(join(parent, prefix)) : postgres.makeDir({ parent, prefix });
    if (KEEP) console.log(`--keep: the data directories stay in ${root}`);
    else cleanup.add(`removing ${root}`, () => rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
    // Before the directories go: no PostgreSQL program may still be writing in them.
    const runner = postgres;
    if (runner !== null) cleanup.add('ending PostgreSQL programs still running', () => runner.endAll());
    const outcomes = [await runWalship(root, cleanup)];
    if (runner !== null) outcomes.push(await runPostgres(runner, root, cleanup));
    report(outcomes);
  } finally {
    for (const failure of await cleanup.run()) console.error(`warm-standby bench: cleanup: ${failure}`);
    stopListening();
  }
}

await main();
