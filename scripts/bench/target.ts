/*
 * target.ts — what bench.ts asks of a system under test, walship or PostgreSQL.
 *
 * A target builds its topology (a primary and standbys s1..sN, the bench table) and adds
 * the steps that tear it down to the run's Cleanup as it goes (cleanup.ts). bench.ts sets synchronous_standby_names on it, then
 * asks it for one run per (clients, mode) combination; each run starts its sessions with
 * synchronous_commit = mode, and reports every committed transaction's latency in a
 * histogram. A target reports how far a run has got through `onProgress` (0..1), so the
 * progress bar can move during a run.
 */
import type { Histogram } from './latency.js';
import type { RunLength, SynchronousCommit } from './options.js';

export type SystemName = 'walship' | 'postgresql';

export interface RunRequest {
  readonly clients: number;
  readonly mode: SynchronousCommit;
  readonly length: RunLength;
  readonly onProgress: (fraction: number) => void;
}

export interface RunOutcome {
  /** Latency of every committed transaction, µs. */
  readonly histogram: Histogram;
  /** Committed transactions. */
  readonly transactions: number;
  /** From the first transaction's start to the last one's end (connections made before). */
  readonly seconds: number;
  /** Transactions per second as the system's tool measured it. */
  readonly tps: number;
}

export interface BenchTarget {
  readonly system: SystemName;
  /** ALTER SYSTEM SET synchronous_standby_names, pg_reload_conf(), and wait until it took. */
  setStandbyNames(value: string): Promise<void>;
  run(request: RunRequest): Promise<RunOutcome>;
}
