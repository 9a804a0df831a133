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

export interface Transaction {
  /** Inside BEGIN ... COMMIT (false: the statement's own implicit transaction). */
  explicit: boolean;
  failed: boolean;
  xid: Xid;
  commandId: number;
  isolation: Isolation;
  snapshot: Snapshot | null;
  startedAt: number;
}

export function newTransaction(explicit: boolean, isolation: Isolation, now: number): Transaction {
  return { explicit, failed: false, xid: InvalidXid, commandId: 0, isolation, snapshot: null, startedAt: now };
}

export class ProcArray {
  private readonly running = new Set<Xid>();
  /** waiter xid -> the xid it waits for (deadlock detection). */
  private readonly waits = new Map<Xid, Xid>();

  add(xid: Xid): void {
    this.running.add(xid);
  }

  remove(xid: Xid): void {
    this.running.delete(xid);
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
    for (let at: Xid | undefined = blocker; at !== undefined; at = this.waits.get(at)) {
      if (at === waiter) return false;
    }
    this.waits.set(waiter, blocker);
    return true;
  }

  stopWaiting(waiter: Xid): void {
    this.waits.delete(waiter);
  }
}
