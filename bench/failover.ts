/*
 * failover.ts — issue 8's benchmark: how soon a promoted standby commits its first write, and
 * how far behind the end of a cascade runs, walship beside PostgreSQL 15 in one run.
 *
 * promotion   a primary and one standby (walship: Cluster, placement --placement; PostgreSQL:
 *             initdb, pg_basebackup -R), 200 rows written and seen on the standby, a session
 *             opened on the standby, the primary stopped (fast); then the clock:
 *               wait => true   pg_promote(true, 60) (walship: server.promote()), timed, then
 *                              the first INSERT on the session opened before the promotion
 *               wait => false  pg_promote(false), then that INSERT retried until it commits
 *                              (PostgreSQL's wait => true polls every 100 ms, so it cannot
 *                              return sooner: this is the fair figure for both)
 *             and after that a new connection and its first INSERT. A new pair each time,
 *             --runs times per mode, the two systems alternating (A B A B).
 * cascade     primary -> s1 -> ... -> sN for N in --depths (walship: addStandby with
 *             upstream; PostgreSQL at --pg-depths: pg_basebackup -R from the previous standby).
 *             --rate single-row commits/s for --seconds on the primary, ids counting up, while
 *             a second connection polls SELECT max(id) on sN about every 2 ms. A commit's lag:
 *             from its reply on the primary to the reply of the first poll that shows it (a
 *             poll's round trip is inside; its median is printed). walship runs each depth in
 *             --placement (thread: a worker thread per server, as deployed; depth 8 is 9
 *             threads on 2 vCPUs here) and again, at --inline-depths, in placement inline
 *             (all servers on the main thread), which leaves out the threads' fight for CPUs.
 *
 * PostgreSQL's clients are psql processes held open with their stdin (HeldPsql): each
 * statement is followed by \echo of a marker and :ERROR, so a statement costs a pipe round
 * trip and no process spawn, like a walship Session. Every cluster, server, psql and
 * directory joins the Cleanup as it starts, so an error or Ctrl-C leaves nothing behind.
 * Without PostgreSQL 15's programs walship runs alone.
 * Usage: node dist/bench/failover.js [--runs 5] [--rate 200] [--seconds 10] [--depths 1,2,4,8]
 *          [--inline-depths 1,2,4,8] [--pg-depths 1,2] [--placement thread] [--keep]
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPostgres, PostgresUnavailable, POSTGRES_BIN_DIR, type PostgresRunner } from '../scripts/bench/as-postgres.js';
import { Cleanup, cleanUpOnSignals } from '../scripts/bench/cleanup.js';
import { freePorts, LOOPBACK } from '../scripts/bench/free-ports.js';
import { formatMillis, newHistogram, recordMicros, summarize, type LatencySummary } from '../scripts/bench/latency.js';
import { Cluster, type Server, type ServerPlacement, type Session } from '../src/index.js';
import { quantile } from './raw.js';
import { arg, numberArg } from './args.js';

const RUNS = numberArg('runs', 5);
const RATE = numberArg('rate', 200);
const SECONDS = numberArg('seconds', 10);
const DEPTHS = listArg('depths', '1,2,4,8');
const PG_DEPTHS = listArg('pg-depths', '1,2');
const PLACEMENT = arg('placement', 'thread') as ServerPlacement;
const INLINE_DEPTHS = listArg('inline-depths', '1,2,4,8');
const KEEP = process.argv.includes('--keep');

const ROWS_BEFORE_FAILOVER = 200;
const POLL_INTERVAL_MS = 2;
const CATCH_UP_TIMEOUT_MS = 60_000;
const STATEMENT_TIMEOUT_MS = 90_000;
const START_TIMEOUT_SECONDS = 60;
const RTT_SAMPLES = 50;
const RETRY_PAUSE_MS = 1;
const CREATE_TABLE = 'CREATE TABLE t (id int PRIMARY KEY, v text)';

function listArg(name: string, fallback: string): number[] {
  const value = arg(name, fallback);
  return value === '' || value === 'none' ? [] : value.split(',').map(Number);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects naming `what` when `promise` has not settled within `ms`: a hang becomes a report. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s: ${what}`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** One client connection as both systems' steps see it: rows of text, or a rejection. */
interface Connection {
  query(sql: string): Promise<string[][]>;
  close(): void;
}

function walshipConnection(session: Session): Connection {
  return {
    query: async (sql) => (await within(STATEMENT_TIMEOUT_MS, sql, session.query(sql))).rows.map((row) => Object.values(row).map((v) => (v === null ? '' : String(v)))),
    close: () => session.close(),
  };
}

/** A psql process kept open: statements go to its stdin, each followed by a marker line to wait for. */
class HeldPsql implements Connection {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = '';
  private stderr = '';
  private lines: string[] = [];
  private waiting: ((marker: string) => void) | null = null;

  constructor(port: number, cleanup: Cleanup) {
    this.child = spawn(join(POSTGRES_BIN_DIR, 'psql'), ['-X', '-q', '-A', '-t', '-h', LOOPBACK, '-p', String(port), '-U', 'postgres', '-d', 'postgres'], { stdio: 'pipe' });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => this.onOutput(chunk));
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.once('close', () => this.waiting?.('@@ closed'));
    cleanup.add(`ending psql (port ${port})`, () => this.close());
  }

  private onOutput(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 1);
      if (line.startsWith('@@ ')) this.waiting?.(line);
      else this.lines.push(line);
    }
  }

  /** `sql` may also be a backslash command (\c: a new connection with the same parameters). */
  async query(sql: string): Promise<string[][]> {
    if (this.waiting !== null) throw new Error('HeldPsql runs one statement at a time');
    this.lines = [];
    this.stderr = '';
    const marker = new Promise<string>((resolve) => (this.waiting = resolve));
    this.child.stdin.write(`${sql.startsWith('\\') ? sql : `${sql};`}\n\\echo @@ :ERROR :LAST_ERROR_SQLSTATE\n`);
    const line = await within(STATEMENT_TIMEOUT_MS, `psql: ${sql}`, marker).finally(() => (this.waiting = null));
    if (line === '@@ closed') throw new Error(`psql ended: ${this.stderr.trim()}`);
    if (line.startsWith('@@ true')) throw new Error(`${line.slice(8)}: ${this.stderr.trim()}`);
    return this.lines.map((l) => l.split('|'));
  }

  close(): void {
    if (this.child.exitCode === null) this.child.stdin.end();
  }
}

/** One primary-and-standby pair of either system, ready for the promotion clock. */
interface FailoverPair {
  readonly system: string;
  readonly primary: Connection;
  connectStandby(): Promise<Connection>;
  /** A new connection to the standby once `held` is done with (PostgreSQL: psql's \c, no new process). */
  reconnect(held: Connection): Promise<Connection>;
  stopPrimary(): Promise<void>;
  promote(wait: boolean): Promise<boolean>;
  logTail(): string;
  /** The standby's whole server log. */
  log(): string;
  destroy(): Promise<void>;
}

interface FailoverSample {
  readonly promoteMs: number;
  readonly firstCommitMs: number;
  readonly failedInserts: number;
  readonly newConnectionMs: number;
  readonly roundTripMs: number;
  /** The standby log's promotion steps, ms after `received promote request`. */
  readonly phases: string;
}

const LOG_LINE = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+ \[[^\]]+\] LOG:  (.*)$/;
const PHASES: readonly [string, string][] = [
  ['selected new timeline ID', 'timeline'], ['archive recovery complete', 'recovery complete'],
  ['database system is ready to accept connections', 'read-write'], ['checkpoint starting', 'checkpoint'], ['checkpoint complete', 'done'],
];

/** Both systems log these lines in PostgreSQL's words, with millisecond timestamps. */
function promotionPhases(log: string): string {
  const lines = log.split('\n').map((l) => LOG_LINE.exec(l)).filter((m) => m !== null);
  const at = (m: RegExpExecArray): number => Date.parse(m[1]!.replace(' ', 'T') + 'Z');
  const request = lines.findIndex((m) => m[2] === 'received promote request');
  if (request < 0) return 'no "received promote request" in the log';
  const t = at(lines[request]!);
  return PHASES.map(([text, label]) => {
    const line = lines.slice(request).find((m) => m[2]!.startsWith(text));
    return `${label} ${line === undefined ? 'not yet' : at(line) - t}`;
  }).join(', ');
}

async function maxId(connection: Connection): Promise<number> {
  const rows = await connection.query('SELECT max(id) FROM t').catch(() => [['']]);
  return Number(rows[0]?.[0] || 0);
}

async function waitForId(connection: Connection, id: number, what: string): Promise<void> {
  const deadline = performance.now() + CATCH_UP_TIMEOUT_MS;
  while ((await maxId(connection)) < id) {
    if (performance.now() > deadline) throw new Error(`${what} did not see id ${id} within ${CATCH_UP_TIMEOUT_MS / 1000} s`);
    await sleep(POLL_INTERVAL_MS);
  }
}

async function timeFailover(pair: FailoverPair, wait: boolean): Promise<FailoverSample> {
  for (let id = 1; id <= ROWS_BEFORE_FAILOVER; id++) await pair.primary.query(`INSERT INTO t VALUES (${id}, 'before')`);
  const held = await pair.connectStandby();
  await waitForId(held, ROWS_BEFORE_FAILOVER, 'the standby');
  await pair.stopPrimary();
  const trips: number[] = [];
  for (let i = 0; i < RTT_SAMPLES; i++) {
    const t = performance.now();
    await held.query('SELECT 1');
    trips.push(performance.now() - t);
  }
  const t0 = performance.now();
  const promoted = await pair.promote(wait);
  const t1 = performance.now();
  if (wait && !promoted) throw new Error(`pg_promote(true, 60) returned false; the end of the standby's log:\n${pair.logTail()}`);
  let failedInserts = 0;
  for (;;) {
    try {
      await held.query(`INSERT INTO t VALUES (${ROWS_BEFORE_FAILOVER + 1}, 'after')`);
      break;
    } catch (err) {
      failedInserts++;
      // A pause between tries: a tight loop of refused INSERTs takes CPU the promotion needs (2 vCPUs here).
      await sleep(RETRY_PAUSE_MS);
      if (performance.now() - t0 > CATCH_UP_TIMEOUT_MS) throw new Error(`no INSERT committed within ${CATCH_UP_TIMEOUT_MS / 1000} s of pg_promote(): ${String(err)}\n${pair.logTail()}`);
    }
  }
  const t2 = performance.now();
  const fresh = await pair.reconnect(held);
  await fresh.query(`INSERT INTO t VALUES (${ROWS_BEFORE_FAILOVER + 2}, 'new connection')`);
  const t3 = performance.now();
  held.close();
  fresh.close();
  const sample = { promoteMs: t1 - t0, firstCommitMs: t2 - t0, failedInserts, newConnectionMs: t3 - t2, roundTripMs: quantile(trips, 0.5), phases: promotionPhases(pair.log()) };
  console.log(`    ${pair.system} wait => ${wait}: promote ${ms(sample.promoteMs)}, first commit ${ms(sample.firstCommitMs)} (${failedInserts} failed), ` +
    `new connection + INSERT ${ms(sample.newConnectionMs)}, SELECT 1 ${ms(sample.roundTripMs)} ms; log, ms after the request: ${sample.phases}`);
  return sample;
}

function walshipLogTail(server: Server, lines = 25): string {
  const path = join(server.dataDir, 'log', 'postgresql.log');
  return existsSync(path) ? `${path}:\n${readFileSync(path, 'utf8').split('\n').slice(-lines - 1).join('\n')}` : `(no ${path})`;
}

/** A walship cluster that the cleanup destroys unless destroy() already has. */
async function walshipCluster(dir: string, placement: ServerPlacement, cleanup: Cleanup): Promise<{ cluster: Cluster; destroy: () => Promise<void> }> {
  const cluster = await Cluster.create({ dir, placement });
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    await cluster.destroy();
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  };
  cleanup.add(`destroying the walship cluster in ${dir}`, destroy);
  return { cluster, destroy };
}

async function walshipPair(dir: string, cleanup: Cleanup): Promise<FailoverPair> {
  const { cluster, destroy } = await walshipCluster(dir, PLACEMENT, cleanup);
  const primary = await cluster.initPrimary('primary');
  await primary.query(CREATE_TABLE);
  const standby = await cluster.addStandby('s1');
  await standby.query('SELECT 1'); // server.promote() then runs on a session already open
  return {
    system: 'walship',
    primary: walshipConnection(await primary.connect()),
    connectStandby: async () => walshipConnection(await standby.connect()),
    reconnect: async () => walshipConnection(await standby.connect()),
    stopPrimary: () => primary.stop('fast'),
    promote: (wait) => within(STATEMENT_TIMEOUT_MS, 'server.promote()', standby.promote({ wait })),
    logTail: () => walshipLogTail(standby),
    log: () => readFileSync(join(standby.dataDir, 'log', 'postgresql.log'), 'utf8'),
    destroy,
  };
}

/** PostgreSQL 15 servers, all cut from one initdb (copied, not re-run: initdb costs seconds). */
class PostgresServers {
  private template: string | null = null;
  private made = 0;

  constructor(private readonly postgres: PostgresRunner, private readonly root: string, private readonly cleanup: Cleanup) {}

  private async fromTemplate(dataDir: string): Promise<void> {
    if (this.template === null) {
      this.template = join(this.root, 'pg-template');
      await this.postgres.run('initdb', ['-D', this.template, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-instructions']);
      appendFileSync(join(this.template, 'postgresql.conf'), `\n# walship bench: failover\nlisten_addresses = '${LOOPBACK}'\nunix_socket_directories = ''\n`);
    }
    const copied = spawnSync('cp', ['-a', this.template, dataDir], { encoding: 'utf8' });
    if (copied.status !== 0) throw new Error(`cp -a ${this.template} ${dataDir}: ${copied.stderr}`);
  }

  /** A new server: a primary (from the template) or a standby of the server on `upstreamPort`. */
  async start(upstreamPort: number | null): Promise<{ port: number; dataDir: string; log: string; stop: (mode: 'fast' | 'immediate') => Promise<void> }> {
    const name = `pg-${++this.made}`;
    const dataDir = join(this.root, name);
    const log = join(this.root, `${name}.log`);
    const [port] = await freePorts(1);
    if (upstreamPort === null) await this.fromTemplate(dataDir);
    else {
      await this.postgres.run('pg_basebackup', ['-D', dataDir, '-R', '-X', 'stream', '-c', 'fast', '-d', `host=${LOOPBACK} port=${upstreamPort} user=postgres application_name=${name}`]);
    }
    // A standby's copied postgresql.conf names its upstream's port; the later line wins.
    appendFileSync(join(dataDir, 'postgresql.conf'), `port = ${port}\n`);
    const stop = async (mode: 'fast' | 'immediate'): Promise<void> => {
      if (existsSync(join(dataDir, 'postmaster.pid'))) await this.postgres.run('pg_ctl', ['-D', dataDir, '-m', mode, '-w', 'stop']);
    };
    const starting = this.postgres.run('pg_ctl', ['-D', dataDir, '-l', log, '-w', '-t', String(START_TIMEOUT_SECONDS), 'start'], { detached: true, timeoutMs: (START_TIMEOUT_SECONDS + 10) * 1000 });
    this.cleanup.add(`pg_ctl stop -m immediate (${name})`, async () => {
      await starting.catch(() => undefined);
      await stop('immediate');
    });
    await starting;
    return { port: port!, dataDir, log, stop };
  }
}

async function postgresPair(servers: PostgresServers, cleanup: Cleanup): Promise<FailoverPair> {
  const primary = await servers.start(null);
  const primaryConnection = new HeldPsql(primary.port, cleanup);
  await primaryConnection.query(CREATE_TABLE);
  const standby = await servers.start(primary.port);
  const control = new HeldPsql(standby.port, cleanup);
  await control.query('SELECT 1');
  return {
    system: 'PostgreSQL 15',
    primary: primaryConnection,
    connectStandby: async () => new HeldPsql(standby.port, cleanup),
    reconnect: async (held) => {
      await held.query('\\c');
      return held;
    },
    stopPrimary: async () => {
      primaryConnection.close();
      await primary.stop('fast');
    },
    promote: async (wait) => ['t', 'true'].includes((await control.query(`SELECT pg_promote(${wait}, 60)`))[0]?.[0] ?? ''),
    logTail: () => readFileSync(standby.log, 'utf8').split('\n').slice(-26).join('\n'),
    log: () => readFileSync(standby.log, 'utf8'),
    destroy: async () => {
      control.close();
      await standby.stop('immediate');
      if (!KEEP) rmSync(join(standby.dataDir), { recursive: true, force: true });
      if (!KEEP) rmSync(join(primary.dataDir), { recursive: true, force: true });
    },
  };
}

interface LagResult {
  readonly lag: LatencySummary;
  readonly commits: number;
  readonly commitsPerSecond: number;
  readonly pollRoundTripMs: number;
  /** Commits the last standby showed before the primary's reply reached the client (lag counted 0). */
  readonly seenBeforeReply: number;
}

/** --rate commits/s for --seconds on `primary`; `last` polled for max(id). Ids from `firstId`. */
async function cascadeLag(primary: Connection, last: Connection, firstId: number, describe: () => string): Promise<LagResult> {
  const total = RATE * SECONDS;
  const committedAt = new Float64Array(total);
  const seenAt = new Float64Array(total);
  let written = 0;
  const t0 = performance.now();
  const writing = (async () => {
    for (; written < total; written++) {
      const due = t0 + (written * 1000) / RATE;
      if (performance.now() < due) await sleep(due - performance.now());
      await primary.query(`INSERT INTO t VALUES (${firstId + written}, 'cascade')`);
      committedAt[written] = performance.now();
    }
  })();
  const trips: number[] = [];
  let seen = 0;
  let failure: unknown = null;
  writing.catch((err: unknown) => (failure = err));
  while (seen < total && failure === null) {
    const asked = performance.now();
    const upTo = Number((await last.query('SELECT max(id) FROM t'))[0]?.[0] || 0) - firstId + 1;
    const answered = performance.now();
    trips.push(answered - asked);
    for (; seen < Math.min(upTo, total); seen++) seenAt[seen] = answered;
    if (written === total && answered - committedAt[total - 1]! > CATCH_UP_TIMEOUT_MS) {
      throw new Error(`the end of the cascade saw ${seen} of ${total} commits ${CATCH_UP_TIMEOUT_MS / 1000} s after the last one\n${describe()}`);
    }
    const next = asked + POLL_INTERVAL_MS - performance.now();
    if (next > 0) await sleep(next);
  }
  await writing;
  const histogram = newHistogram();
  let seenBeforeReply = 0;
  for (let i = 0; i < total; i++) {
    if (seenAt[i]! < committedAt[i]!) seenBeforeReply++;
    recordMicros(histogram, Math.max(0, seenAt[i]! - committedAt[i]!) * 1000);
  }
  const commitSeconds = (committedAt[total - 1]! - t0) / 1000;
  return { lag: summarize(histogram), commits: total, commitsPerSecond: total / commitSeconds, pollRoundTripMs: quantile(trips, 0.5), seenBeforeReply };
}

const WARM_UP_ROWS = 100;

async function walshipCascade(depth: number, placement: ServerPlacement, dir: string, cleanup: Cleanup): Promise<LagResult> {
  const { cluster, destroy } = await walshipCluster(dir, placement, cleanup);
  const primary = await cluster.initPrimary('primary');
  await primary.query(CREATE_TABLE);
  const chain: Server[] = [];
  for (let k = 1; k <= depth; k++) chain.push(await cluster.addStandby(`s${k}`, { upstream: k === 1 ? 'primary' : `s${k - 1}` }));
  const writer = walshipConnection(await primary.connect());
  const reader = walshipConnection(await chain[depth - 1]!.connect());
  const describe = (): string => chain.map((s) => walshipLogTail(s, 10)).join('\n');
  for (let id = 1; id <= WARM_UP_ROWS; id++) await writer.query(`INSERT INTO t VALUES (${id}, 'warm-up')`);
  await waitForId(reader, WARM_UP_ROWS, `s${depth}`).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${describe()}`);
  });
  const result = await cascadeLag(writer, reader, WARM_UP_ROWS + 1, describe);
  writer.close();
  reader.close();
  await destroy();
  return result;
}

async function postgresCascade(depth: number, servers: PostgresServers, cleanup: Cleanup): Promise<LagResult> {
  const primary = await servers.start(null);
  const writer = new HeldPsql(primary.port, cleanup);
  await writer.query(CREATE_TABLE);
  const chain = [primary];
  for (let k = 1; k <= depth; k++) chain.push(await servers.start(chain[k - 1]!.port));
  const reader = new HeldPsql(chain[depth]!.port, cleanup);
  const describe = (): string => chain.map((s) => `${s.log}:\n${readFileSync(s.log, 'utf8').split('\n').slice(-10).join('\n')}`).join('\n');
  for (let id = 1; id <= WARM_UP_ROWS; id++) await writer.query(`INSERT INTO t VALUES (${id}, 'warm-up')`);
  await waitForId(reader, WARM_UP_ROWS, `standby ${depth} of the PostgreSQL cascade`);
  const result = await cascadeLag(writer, reader, WARM_UP_ROWS + 1, describe);
  writer.close();
  reader.close();
  for (const server of [...chain].reverse()) await server.stop('immediate');
  return result;
}

const ms = (value: number): string => value.toFixed(1);
const summaryOf = (values: number[]): string => `${ms(quantile(values, 0.5))} (${ms(Math.min(...values))}-${ms(Math.max(...values))})`;

function reportFailover(system: string, wait: boolean, samples: FailoverSample[]): void {
  const of = (pick: (s: FailoverSample) => number): number[] => samples.map(pick);
  console.log(`  ${system.padEnd(13)} wait => ${String(wait).padEnd(5)}  promote ${summaryOf(of((s) => s.promoteMs)).padEnd(22)} ` +
    `promote -> first commit ${summaryOf(of((s) => s.firstCommitMs)).padEnd(22)} failed INSERTs ${quantile(of((s) => s.failedInserts), 0.5)}  ` +
    `new connection + INSERT ${summaryOf(of((s) => s.newConnectionMs))}  SELECT 1 round trip ${summaryOf(of((s) => s.roundTripMs))}`);
}

function reportLag(system: string, depth: number, placement: string, r: LagResult): void {
  console.log(`  ${system.padEnd(13)} depth ${depth} (${placement})  p50 ${formatMillis(r.lag.p50Us)}  p95 ${formatMillis(r.lag.p95Us)}  ` +
    `p99 ${formatMillis(r.lag.p99Us)}  max ${formatMillis(r.lag.maxUs)} ms  (${r.commits} commits at ${r.commitsPerSecond.toFixed(0)}/s; ` +
    `poll round trip p50 ${formatMillis(r.pollRoundTripMs * 1000)} ms; seen before the reply: ${r.seenBeforeReply})`);
}

async function main(): Promise<void> {
  let postgres: PostgresRunner | null = null;
  try {
    postgres = findPostgres();
  } catch (err) {
    if (!(err instanceof PostgresUnavailable)) throw err;
    console.log(`PostgreSQL 15 left out: ${err.message}`);
  }
  const cleanup = new Cleanup();
  const stopListening = cleanUpOnSignals(cleanup, (line) => console.error(line));
  try {
    const parent = process.env['WALSHIP_BENCH_DIR'] ?? tmpdir();
    const root = postgres === null ? mkdtempSync(join(parent, 'walship-failover-bench-')) : postgres.makeDir({ parent, prefix: 'walship-failover-bench-' });
    if (KEEP) console.log(`--keep: the data directories stay in ${root}`);
    else cleanup.add(`removing ${root}`, () => rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
    const runner = postgres;
    if (runner !== null) cleanup.add('ending PostgreSQL programs still running', () => runner.endAll());
    const servers = runner === null ? null : new PostgresServers(runner, root, cleanup);
    const version = runner === null ? '' : (await runner.run('pg_ctl', ['--version'])).stdout.trim();
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, Linux ${release()}, node ${process.version}, ${version || 'no PostgreSQL'}`);

    console.log(`promotion: median (min-max) ms over ${RUNS} runs, a new pair each run, walship placement ${PLACEMENT}`);
    let made = 0;
    for (const wait of [true, false]) {
      const samples: Record<string, FailoverSample[]> = { walship: [], 'PostgreSQL 15': [] };
      for (let run = 0; run < RUNS; run++) {
        const walship = await walshipPair(join(root, `walship-${++made}`), cleanup);
        samples['walship']!.push(await timeFailover(walship, wait));
        await walship.destroy();
        if (servers === null) continue;
        const pg = await postgresPair(servers, cleanup);
        samples['PostgreSQL 15']!.push(await timeFailover(pg, wait));
        await pg.destroy();
      }
      for (const [system, list] of Object.entries(samples)) if (list.length > 0) reportFailover(system, wait, list);
    }

    console.log(`cascade lag: ${RATE} single-row commits/s for ${SECONDS} s, the last standby polled every ~${POLL_INTERVAL_MS} ms; ms from the commit's reply to the first poll that shows it`);
    for (const depth of DEPTHS) reportLag('walship', depth, PLACEMENT, await walshipCascade(depth, PLACEMENT, join(root, `walship-cascade-${depth}`), cleanup));
    for (const depth of INLINE_DEPTHS) reportLag('walship', depth, 'inline', await walshipCascade(depth, 'inline', join(root, `walship-cascade-inline-${depth}`), cleanup));
    if (servers !== null) for (const depth of PG_DEPTHS) reportLag('PostgreSQL 15', depth, 'processes', await postgresCascade(depth, servers, cleanup));
  } finally {
    for (const failure of await cleanup.run()) console.error(`failover bench: cleanup: ${failure}`);
    stopListening();
  }
}

await main();
