/*
 * clog.ts — transaction ids and the commit log: whether each transaction committed.
 *
 * Xids are handed out in order from FirstNormalXid (1 and 2 are PostgreSQL's bootstrap and
 * frozen xids, both "committed" forever). The status of every xid below nextXid is
 * in progress, committed or aborted; one byte each, in a growing array (PostgreSQL packs
 * two bits per xid in pg_xact pages). A subtransaction commits or aborts with its parent,
 * in the same commit record, so one call sets them all. Xid wraparound is not handled:
 * 2^32 transactions are far beyond what a walship cluster lives through.
 */
import { assert } from '../assert.js';

export type Xid = number;
export const InvalidXid: Xid = 0;
export const BootstrapXid: Xid = 1;
export const FrozenXid: Xid = 2;
export const FirstNormalXid: Xid = 3;

export type XidStatus = 'in progress' | 'committed' | 'aborted';

const IN_PROGRESS = 0;
const COMMITTED = 1;
const ABORTED = 2;

export class Clog {
  private statuses = new Uint8Array(1024);
  private next: Xid = FirstNormalXid;

  get nextXid(): Xid {
    return this.next;
  }

  /** Hands out the next xid (the primary, when a transaction first writes). */
  assign(): Xid {
    const xid = this.next;
    this.advancePast(xid);
    return xid;
  }

  /** Redo and recovery: an xid seen in WAL is at least allocated. */
  advancePast(xid: Xid): void {
    if (xid < this.next) return;
    this.next = xid + 1;
    if (this.next > this.statuses.length) {
      let size = this.statuses.length;
      while (size < this.next) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.statuses);
      this.statuses = grown;
    }
  }

  status(xid: Xid): XidStatus {
    if (xid === BootstrapXid || xid === FrozenXid) return 'committed';
    if (xid === InvalidXid || xid >= this.next) return 'in progress';
    const s = this.statuses[xid];
    return s === COMMITTED ? 'committed' : s === ABORTED ? 'aborted' : 'in progress';
  }

  isCommitted(xid: Xid): boolean {
    return this.status(xid) === 'committed';
  }

  isAborted(xid: Xid): boolean {
    return this.status(xid) === 'aborted';
  }

  setCommitted(xids: readonly Xid[]): void {
    for (const xid of xids) this.set(xid, COMMITTED);
  }

  setAborted(xids: readonly Xid[]): void {
    for (const xid of xids) this.set(xid, ABORTED);
  }

  /**
   * End of crash recovery: every xid still "in progress" belonged to a transaction that died
   * with the server, and is aborted (PostgreSQL treats such xids as aborted the same way).
   */
  abortUnfinished(): number {
    let count = 0;
    for (let xid = FirstNormalXid; xid < this.next; xid++) {
      if (this.statuses[xid] === IN_PROGRESS) {
        this.statuses[xid] = ABORTED;
        count++;
      }
    }
    return count;
  }

  /** Everything needed to rebuild it after a checkpoint: next xid and the statuses below it. */
  snapshot(): { nextXid: Xid; statuses: Uint8Array } {
    return { nextXid: this.next, statuses: this.statuses.slice(0, this.next) };
  }

  static restore(saved: { nextXid: Xid; statuses: Uint8Array }): Clog {
    const clog = new Clog();
    clog.advancePast(saved.nextXid - 1);
    clog.statuses.set(saved.statuses.subarray(0, saved.nextXid));
    return clog;
  }

  private set(xid: Xid, status: number): void {
    assert(xid >= FirstNormalXid, `cannot set the status of special xid ${xid}`);
    this.advancePast(xid);
    const before = this.statuses[xid];
    assert(before === IN_PROGRESS || before === status, `xid ${xid} cannot go from ${before === COMMITTED ? 'committed' : 'aborted'} to another outcome`);
    this.statuses[xid] = status;
  }
}
