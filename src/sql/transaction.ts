/*
 * transaction.ts — a session's transaction state and the procarray of running xids.
 *
 * A transaction gets an xid only when it first writes (as in PostgreSQL); until then it is
 * "virtual" and commits without WAL. READ COMMITTED takes a snapshot per statement,
 * REPEATABLE READ (and SERIALIZABLE, which walship runs as REPEATABLE READ) keeps the first
 * one. After an error inside BEGIN the transaction is failed: everything but ROLLBACK is
 * refused. A read-only transaction (BEGIN READ ONLY, default_transaction_read_only, or any
 * transaction on a hot standby) stays read-only to its end. The procarray lists xids that other snapshots must treat as running; a committing
 * xid stays in it until its commit record is flushed as synchronous_commit asks, so nobody
 * sees a commit that a crash could still take back.
 */
import { InvalidXid, type Xid } from '../storage/clog.js';
import type { Snapshot } from '../storage/snapshot.js';
import type { QueryResult } from './result.js';

export type Isolation = 'read committed' | 'repeatable read' | 'serializable';

/** A savepoint: a subtransaction with its own xid once it writes. */
export interface Subtransaction {
  readonly name: string;
  xid: Xid;
  /** Xids of subtransactions released into this one (they commit or abort with it). */
  readonly merged: Xid[];
}

export interface Cursor {
  /** The table it reads (null: none, or a system view): a cursor on it pins it, for hot standby conflicts. */
  readonly rel: number | null;
  readonly columns: QueryResult['columns'];
  readonly rows: readonly Record<string, unknown>[];
  position: number;
}

export interface Transaction {
  readonly session: string;
  /** Inside BEGIN ... COMMIT (false: the statement's own implicit transaction). */
  explicit: boolean;
  failed: boolean;
  xid: Xid;
  /** Open savepoints, innermost last. */
  readonly savepoints: Subtransaction[];
  /** Xids of released subtransactions merged into the top level (committed with it). */
  readonly subxids: Xid[];
  /** Open cursors: rows materialized at DECLARE with its snapshot, and how far FETCH got. */
  readonly cursors: Map<string, Cursor>;
  commandId: number;
  isolation: Isolation;
  /** transaction_read_only: fixed when the transaction starts. */
  readonly readOnly: boolean;
  snapshot: Snapshot | null;
  startedAt: number;
}

export function newTransaction(session: string, explicit: boolean, isolation: Isolation, readOnly: boolean, now: number): Transaction {
  return { session, explicit, failed: false, xid: InvalidXid, savepoints: [], subxids: [], cursors: new Map(), commandId: 0, isolation, readOnly, snapshot: null, startedAt: now };
}

export class ProcArray {
  private readonly running = new Set<Xid>();

  add(xid: Xid): void {
    this.running.add(xid);
  }

  remove(xid: Xid): void {
    this.running.delete(xid);
  }

  has(xid: Xid): boolean {
    return this.running.has(xid);
  }

  xids(): Iterable<Xid> {
    return this.running;
  }
}

/** Every xid of the transaction that may still commit: the top one and those of live subtransactions. */
export function liveXids(txn: Transaction): Xid[] {
  const xids: Xid[] = [];
  if (txn.xid !== InvalidXid) xids.push(txn.xid);
  xids.push(...txn.subxids);
  for (const sp of txn.savepoints) {
    if (sp.xid !== InvalidXid) xids.push(sp.xid);
    xids.push(...sp.merged);
  }
  return xids;
}
