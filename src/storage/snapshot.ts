/*
 * snapshot.ts — MVCC snapshots and tuple visibility, as PostgreSQL's
 * HeapTupleSatisfiesMVCC decides it.
 *
 * A snapshot is (xmin, xmax, xip): every xid below xmin had finished when it was taken,
 * every xid from xmax on had not started, and xip lists those in between still running.
 * A committed xid the snapshot does not consider running is visible. The transaction's own
 * changes are visible by command id: a row inserted by an earlier command of this
 * transaction is seen, one inserted by the current command is not (no Halloween problem),
 * and a row deleted by the current command still is. READ COMMITTED takes a snapshot per
 * statement, REPEATABLE READ one per transaction; that difference lives in the executor.
 */
import { InvalidXid, type Clog, type Xid } from './clog.js';

export interface Snapshot {
  readonly xmin: Xid;
  readonly xmax: Xid;
  readonly xip: ReadonlySet<Xid>;
}

/** What a transaction knows of itself: its xids (top and live subtransactions) and the current command. */
export interface OwnTransaction {
  readonly xids: ReadonlySet<Xid>;
  readonly commandId: number;
}

export const NO_OWN_TRANSACTION: OwnTransaction = { xids: new Set(), commandId: 0 };

export interface TupleHeader {
  readonly xmin: Xid;
  readonly cmin: number;
  readonly xmax: Xid;
  readonly cmax: number;
}

/** Takes a snapshot given the xids running now and the next xid to be assigned. */
export function takeSnapshot(running: Iterable<Xid>, nextXid: Xid): Snapshot {
  const xip = new Set(running);
  let xmin = nextXid;
  for (const xid of xip) if (xid < xmin) xmin = xid;
  return { xmin, xmax: nextXid, xip };
}

/** Did `xid` commit before the snapshot was taken? */
export function committedBefore(xid: Xid, snapshot: Snapshot, clog: Clog): boolean {
  if (xid >= snapshot.xmax) return false;
  if (xid >= snapshot.xmin && snapshot.xip.has(xid)) return false;
  return clog.isCommitted(xid);
}

export function isVisible(tuple: TupleHeader, snapshot: Snapshot, own: OwnTransaction, clog: Clog): boolean {
  if (own.xids.has(tuple.xmin)) {
    if (tuple.cmin >= own.commandId) return false;
  } else if (!committedBefore(tuple.xmin, snapshot, clog)) {
    return false;
  }
  if (tuple.xmax === InvalidXid) return true;
  if (own.xids.has(tuple.xmax)) return tuple.cmax >= own.commandId;
  if (clog.isAborted(tuple.xmax)) return true;
  return !committedBefore(tuple.xmax, snapshot, clog);
}

/**
 * Is the tuple dead to every snapshot that can still exist, given the oldest xmin among
 * them (`horizon`)? VACUUM removes exactly these: the inserter aborted, or the deleter
 * committed before every running snapshot began.
 */
export function isDeadToAll(tuple: TupleHeader, horizon: Xid, clog: Clog): boolean {
  if (clog.isAborted(tuple.xmin)) return true;
  if (tuple.xmax === InvalidXid || !clog.isCommitted(tuple.xmax)) return false;
  return tuple.xmax < horizon;
}
