/*
 * workload.ts — the one-statement transactions both systems run, written once.
 *
 *   insert   INSERT INTO bench_kv VALUES ($1, $2): walship's clients take unique ids from
 *            one counter; pgbench has no such counter, so its script draws a random id from
 *            a range above the preloaded rows and skips the rare repeat (ON CONFLICT DO
 *            NOTHING): one row, one commit record either way.
 *   update   UPDATE bench_kv SET v = $2 WHERE id = $1 for a random id of PRELOADED_ROWS
 *            rows loaded before the runs.
 *
 * The table and its preload are the same SQL on both systems; walship-target.ts and
 * postgres-target.ts run it, pgbench.ts writes the script.
 */
import type { Mix } from './options.js';

export const TABLE = 'bench_kv';
export const CREATE_TABLE = `CREATE TABLE ${TABLE} (id int PRIMARY KEY, v text NOT NULL)`;
/** Rows loaded before an update mix, ids 1..PRELOADED_ROWS. */
export const PRELOADED_ROWS = 10_000;
/** The largest id pgbench's insert script draws (int4 holds up to 2147483647). */
export const PGBENCH_MAX_ID = 2_000_000_000;
/** The value written: the same few bytes on both systems. */
export const PAYLOAD = 'walship-bench-payload';

/** Statements run once, before any measured run. */
export function setupStatements(mix: Mix): string[] {
  if (mix === 'insert') return [CREATE_TABLE];
  return [CREATE_TABLE, `INSERT INTO ${TABLE} SELECT g, '${PAYLOAD}' FROM generate_series(1, ${PRELOADED_ROWS}) g`];
}

export interface Transaction {
  readonly sql: string;
  readonly params: readonly unknown[];
}

/**
 * The transactions one walship target sends, in any number of concurrent clients: `next()`
 * is called once per transaction, and insert ids never repeat for the target's lifetime.
 */
export function walshipTransactions(mix: Mix, random: () => number = Math.random): { next: () => Transaction } {
  let nextId = PRELOADED_ROWS + 1;
  if (mix === 'insert') {
    const sql = `INSERT INTO ${TABLE} VALUES ($1, $2)`;
    return { next: () => ({ sql, params: [nextId++, PAYLOAD] }) };
  }
  const sql = `UPDATE ${TABLE} SET v = $2 WHERE id = $1`;
  return { next: () => ({ sql, params: [1 + Math.floor(random() * PRELOADED_ROWS), PAYLOAD] }) };
}

/** The pgbench script (-f) for the same transaction. */
export function pgbenchScript(mix: Mix): string {
  if (mix === 'insert') {
    return [
      `\\set id random(${PRELOADED_ROWS + 1}, ${PGBENCH_MAX_ID})`,
      `INSERT INTO ${TABLE} VALUES (:id, '${PAYLOAD}') ON CONFLICT DO NOTHING;`,
      '',
    ].join('\n');
  }
  return [
    `\\set id random(1, ${PRELOADED_ROWS})`,
    `UPDATE ${TABLE} SET v = '${PAYLOAD}' WHERE id = :id;`,
    '',
  ].join('\n');
}
