/*
 * walship-target.ts — the topology under test, built with walship's public API only.
 *
 * start(): Cluster.create (its destroy() joins the run's cleanup at once), initPrimary,
 * the bench table (and its preload), then standbys s1..sN by base backup, each through a
 * slot of its own name, and a wait until pg_stat_replication shows all of them streaming. A run connects its clients first (each
 * with synchronous_commit = the run's mode), then starts the clock; every client sends its
 * next transaction as soon as the last one is answered, and a transaction's latency is from
 * sending the statement to its reply, which is the commit at that mode.
 *
 * This file knows nothing of what a mode costs: a level walship does not distinguish yet is
 * measured like any other.
 */
import { Cluster, type Server, type ServerPlacement, type Session } from '../../src/index.js';
import type { Cleanup } from './cleanup.js';
import { newHistogram, recordMicros } from './latency.js';
import { sqlLiteral, standbyNamesOf, type Mix, type RunLength } from './options.js';
import type { BenchTarget, RunOutcome, RunRequest } from './target.js';
import { waitFor } from './wait.js';
import { setupStatements, walshipTransactions, type Transaction } from './workload.js';

const STARTUP_TIMEOUT_MS = 60_000;
const RELOAD_TIMEOUT_MS = 10_000;
const PROGRESS_INTERVAL_MS = 100;

export interface WalshipTopology {
  readonly dir: string;
  readonly placement: ServerPlacement;
  readonly standbys: number;
  readonly mix: Mix;
}

export class WalshipTarget implements BenchTarget {
  readonly system = 'walship';

  private constructor(
    private readonly primary: Server,
    private readonly transactions: { next: () => Transaction },
  ) {}

  static async start(topology: WalshipTopology, cleanup: Cleanup): Promise<WalshipTarget> {
    const cluster = await Cluster.create({ dir: topology.dir, placement: topology.placement });
    cleanup.add('stopping the walship cluster', () => cluster.destroy());
    const primary = await cluster.initPrimary('primary');
    for (const sql of setupStatements(topology.mix)) await primary.query(sql);
    const names = standbyNamesOf(topology.standbys);
    for (const name of names) await cluster.addStandby(name, { slot: name });
    await waitFor(`${names.length} standbys streaming from the walship primary`, async () => {
      const row = (await primary.query("SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'")).rows[0];
      return Number(row?.['n']) === names.length;
    }, STARTUP_TIMEOUT_MS);
    return new WalshipTarget(primary, walshipTransactions(topology.mix));
  }

  async setStandbyNames(value: string): Promise<void> {
    await this.primary.query(`ALTER SYSTEM SET synchronous_standby_names = ${sqlLiteral(value)}`);
    await this.primary.query('SELECT pg_reload_conf()');
    await waitFor(`synchronous_standby_names = '${value}' on the walship primary`, async () => {
      const session = await this.primary.connect();
      try {
        const row = (await session.query('SHOW synchronous_standby_names')).rows[0];
        return row?.['synchronous_standby_names'] === value;
      } finally {
        session.close();
      }
    }, RELOAD_TIMEOUT_MS);
  }

  async run(request: RunRequest): Promise<RunOutcome> {
    const sessions: Session[] = [];
    try {
      for (let i = 0; i < request.clients; i++) {
        sessions.push(await this.primary.connect({ settings: { synchronous_commit: request.mode } }));
      }
      return await this.drive(sessions, request);
    } finally {
      for (const session of sessions) session.close();
    }
  }

  private async drive(sessions: readonly Session[], request: RunRequest): Promise<RunOutcome> {
    const histogram = newHistogram();
    const length: RunLength = request.length;
    const started = performance.now();
    const deadline = length.kind === 'duration' ? started + length.seconds * 1000 : Infinity;
    const total = length.kind === 'transactions' ? length.perClient * sessions.length : 0;
    let committed = 0;
    let failed = false;
    const more = (sent: number): boolean =>
      !failed && (length.kind === 'transactions' ? sent < length.perClient : performance.now() < deadline);
    const ticker = setInterval(() => {
      request.onProgress(length.kind === 'transactions' ? committed / total : (performance.now() - started) / (deadline - started));
    }, PROGRESS_INTERVAL_MS);
    try {
      await Promise.all(sessions.map(async (session) => {
        try {
          for (let sent = 0; more(sent); sent++) {
            const transaction = this.transactions.next();
            const t0 = performance.now();
            await session.query(transaction.sql, transaction.params);
            recordMicros(histogram, (performance.now() - t0) * 1000);
            committed++;
          }
        } catch (err) {
          failed = true; // the other clients stop after their transaction in flight
          throw err;
        }
      }));
    } finally {
      clearInterval(ticker);
    }
    const seconds = (performance.now() - started) / 1000;
    request.onProgress(1);
    return { histogram, transactions: committed, seconds, tps: committed / seconds };
  }
}
