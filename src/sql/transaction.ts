/*
 * transaction.ts — a session's transaction state and the procarray of running xids.
 *
 * A transaction gets an xid only when it first writes (as in PostgreSQL); until then it is
 * "virtual" and commits without WAL. READ COMMITTED takes a snapshot per statement,
 * REPEATABLE READ (and SERIALIZABLE, which walship runs as REPEATABLE READ) keeps the first
 * one. After an error inside BEGIN the transaction is failed: everything but ROLLBACK is
 * refused. The procarray lists xids that other snapshots must treat as running; a committing
 * xid stays in it until its commit record is flushed as synchronous_commit asks, so nobody
 * sees a commit that a crash could still take back.
 */
import { InvalidXid, type Xid } from '../storage/clog.js';
import type { Snapshot } from '../storage/snapshot.js';

export type Isolation = 'read committed' | 'repeatable read' | 'serializable';

/** A savepoint: a subtransaction with its own xid once it writes. */
export interface Subtransaction {
  readonly name: string;
  xid: Xid;
  /** Xids of subtransactions released into this one (they commit or abort with it). */
  readonly merged: Xid[];
}

export interface Transaction {
  /** Inside BEGIN ... COMMIT (false: the statement's own implicit transaction). */
  explicit: boolean;
  failed: boolean;
  xid: Xid;
  /** Open savepoints, innermost last. */
  readonly savepoints: Subtransaction[];
  /** Xids of released subtransactions merged into the top level (committed with it). */
  readonly subxids: Xid[];
  commandId: number;
  isolation: Isolation;
  snapshot: Snapshot | null;
  startedAt: number;
}

export function newTransaction(explicit: boolean, isolation: Isolation, now: number): Transaction {
  return { explicit, failed: false, xid: InvalidXid, savepoints: [], subxids: [], commandId: 0, isolation, snapshot: null, startedAt: now };
}

export class ProcArray {
  private readonly running = new Set<Xid>();
  /** subtransaction xid -> its top-level xid (a wait on a subtransaction is a wait on its transaction). */
  private readonly tops = new Map<Xid, Xid>();
  /** waiter xid -> the xid it waits for (deadlock detection). */
  private readonly waits = new Map<Xid, Xid>();

  add(xid: Xid, top: Xid = xid): void {
    this.running.add(xid);
    if (top !== xid) this.tops.set(xid, top);
  }

  remove(xid: Xid): void {
    this.running.delete(xid);
    this.tops.delete(xid);
    this.waits.delete(xid);
  }

  has(xid: Xid): boolean {
    return this.running.has(xid);
  }

  xids(): Iterable<Xid> {
    return this.running;
  }

  /** Records that `waiter` waits for `blocker`; false if that closes a cycle (a deadlock). */
  wait(waiter: Xid, blocker: Xid): boolean {
    if (waiter === InvalidXid) return true;
    const self = this.top(waiter);
    for (let at: Xid | undefined = this.top(blocker); at !== undefined;) {
      if (at === self) return false;
      const next = this.waits.get(at);
      at = next === undefined ? undefined : this.top(next);
    }
    this.waits.set(self, blocker);
    return true;
  }

  private top(xid: Xid): Xid {
    return this.tops.get(xid) ?? xid;
  }

  stopWaiting(waiter: Xid): void {
    this.waits.delete(waiter);
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
