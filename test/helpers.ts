/*
 * helpers.ts — waiting without sleeping blindly, reading lifecycle events, server logs and errors.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, PgError, type QueryResult, type Server, type ServerPlacement } from '../src/index.js';
import type { Kernel } from '../src/runtime/kernel.js';
import type { LifecycleEvent, RuntimeEvent } from '../src/runtime/events.js';

/** Polls `condition` until it holds, failing with `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Records a kernel's events; `lifecycle()` filters them to starts, restarts, crashes and stops. */
export function record(kernel: Kernel): { events: RuntimeEvent[]; lifecycle: (name?: string) => LifecycleEvent[]; stop: () => void } {
  const events: RuntimeEvent[] = [];
  const stop = kernel.onEvent((e) => events.push(e));
  return {
    events,
    stop,
    lifecycle: (name?: string) => events.filter((e): e is LifecycleEvent => e.kind !== 'log' && (name === undefined || e.name === name)),
  };
}

/** "name:kind" strings of lifecycle events, in order: easy to compare with an expected story. */
export function story(events: RuntimeEvent[], names?: readonly string[]): string[] {
  return events
    .filter((e): e is LifecycleEvent => e.kind !== 'log' && (names === undefined || names.includes(e.name)))
    .map((e) => `${e.name}:${e.kind}`);
}

/** A server's log file as it stands. */
export function log(server: Server): string {
  return readFileSync(join(server.dataDir, 'log', 'postgresql.log'), 'utf8');
}

/** The PgError `promise` rejects with (anything else fails the test). */
export async function pgError(promise: Promise<unknown>): Promise<PgError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof PgError) return err;
    throw err;
  }
  throw new Error('expected a PgError');
}

/** A failed scenario shows its servers' logs: the first thing anyone asks for. */
export function printLogs(dir: string): void {
  for (const name of readdirSync(dir)) {
    try {
      console.log(`--- ${name} ---\n${readFileSync(join(dir, name, 'log', 'postgresql.log'), 'utf8')}`);
    } catch {
      // not a server directory
    }
  }
}

/**
 * A fresh cluster in a temporary directory for each test, destroyed after it; a failed
 * test prints its servers' logs first, the first thing anyone asks for.
 */
export function clusterPerTest(placement: ServerPlacement): () => Cluster {
  let dir = '';
  let cluster: Cluster | null = null;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'walship-scenario-'));
    cluster = await Cluster.create({ dir, placement });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') printLogs(dir);
    await cluster?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => cluster!;
}


/** Polls a query until `check` holds for its result. */
export async function eventually(server: Server, sql: string, check: (r: QueryResult) => boolean, what: string, timeoutMs = 15_000): Promise<QueryResult> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const result = await server.query(sql);
    if (check(result)) return result;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}; last result: ${JSON.stringify(result.rows)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The primary's WAL insert position, as pg_current_wal_lsn() says it. */
export async function currentLsn(primary: Server): Promise<string> {
  return (await primary.query('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!['lsn'] as string;
}

/** Waits until the standby has replayed everything the primary has written so far; resolves to that position. */
export async function caughtUp(primary: Server, standby: Server): Promise<string> {
  const target = await currentLsn(primary);
  await eventually(standby, `SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '${target}') >= 0 AS done`, (r) => r.rows[0]!['done'] === true, `replay to reach ${target}`);
  return target;
}

/** Waits until the standby has received (not necessarily replayed) everything written so far. */
export async function received(primary: Server, standby: Server): Promise<void> {
  const target = await currentLsn(primary);
  await eventually(standby, `SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '${target}') >= 0 AS done`, (r) => r.rows[0]!['done'] === true, `the standby to receive ${target}`);
}
