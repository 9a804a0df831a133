/*
 * heap.ts — a table's rows: pages of MVCC tuple versions, addressed by ctid (block, offset).
 *
 * A tuple version carries its inserter (xmin, cmin), its deleter or updater (xmax, cmax)
 * and, once updated, the ctid of its newer version (PostgreSQL's t_ctid chain, which READ
 * COMMITTED follows to re-check a row changed under it). Nothing is ever overwritten in
 * place except those header fields: an UPDATE is a delete mark plus a new version.
 *
 * Where a new version goes is chosen by the primary (`freeSlot`) and written in the WAL
 * record; redo puts it exactly there. That keeps the primary, crash recovery and every
 * standby byte-for-byte alike. VACUUM frees slots of versions dead to every snapshot; a freed
 * slot is reused by a later insert.
 */
import { assert } from '../assert.js';
import { InvalidXid, type Xid } from './clog.js';
import type { TupleHeader } from './snapshot.js';

export const TUPLES_PER_PAGE = 64;

export type Datum = null | boolean | number | string | Uint8Array;

export interface Ctid {
  readonly block: number;
  readonly offset: number;
}

export interface HeapTuple extends TupleHeader {
  readonly values: readonly Datum[];
  /** The newer version after an UPDATE, if any. */
  readonly next: Ctid | null;
}

export function ctidText(ctid: Ctid): string {
  return `(${ctid.block},${ctid.offset + 1})`;
}

export class Heap {
  private readonly pages: (HeapTuple | null)[][] = [];
  /** Lowest block that may have a free slot. */
  private freeHint = 0;
  private live = 0;

  /** Tuple versions stored (live or dead, not yet vacuumed). */
  get versionCount(): number {
    return this.live;
  }


  /** Where the next insert goes: the first free slot from the hint on, else a new page. */
  freeSlot(): Ctid {
    for (let block = this.freeHint; block < this.pages.length; block++) {
      const page = this.pages[block]!;
      const offset = page.length < TUPLES_PER_PAGE ? page.length : page.indexOf(null);
      if (offset >= 0) {
        this.freeHint = block;
        return { block, offset };
      }
    }
    this.freeHint = this.pages.length;
    return { block: this.pages.length, offset: 0 };
  }

  get(ctid: Ctid): HeapTuple | null {
    return this.pages[ctid.block]?.[ctid.offset] ?? null;
  }

  /** Redo of an insert (and the new half of an update). */
  put(ctid: Ctid, tuple: HeapTuple): void {
    assert(ctid.offset >= 0 && ctid.offset < TUPLES_PER_PAGE, `offset ${ctid.offset} outside a page`);
    while (this.pages.length <= ctid.block) this.pages.push([]);
    const page = this.pages[ctid.block]!;
    while (page.length < ctid.offset) page.push(null);
    assert((page[ctid.offset] ?? null) === null, `slot ${ctidText(ctid)} is already in use`);
    page[ctid.offset] = tuple;
    this.live++;
  }

  /** Redo of a delete, and the old half of an update: stamps xmax (and the newer version). */
  markDeleted(ctid: Ctid, xmax: Xid, cmax: number, next: Ctid | null): void {
    const tuple = this.get(ctid);
    assert(tuple !== null, `no tuple at ${ctidText(ctid)} to delete`);
    this.pages[ctid.block]![ctid.offset] = { ...tuple, xmax, cmax, next };
  }

  /** Undoes an xmax left by an aborted deleter, so the slot reads as undeleted again. */
  clearDeleted(ctid: Ctid): void {
    const tuple = this.get(ctid);
    assert(tuple !== null, `no tuple at ${ctidText(ctid)}`);
    this.pages[ctid.block]![ctid.offset] = { ...tuple, xmax: InvalidXid, cmax: 0, next: null };
  }

  /** Redo of VACUUM FREEZE: the version's inserter is marked frozen (committed for everyone, forever). */
  freeze(ctid: Ctid, frozenXid: Xid): void {
    const tuple = this.get(ctid);
    assert(tuple !== null, `no tuple at ${ctidText(ctid)} to freeze`);
    this.pages[ctid.block]![ctid.offset] = { ...tuple, xmin: frozenXid, cmin: 0 };
  }

  /** Redo of VACUUM: the versions at `ctids` are gone and their slots free. */
  remove(ctids: readonly Ctid[]): void {
    for (const ctid of ctids) {
      const page = this.pages[ctid.block];
      if (page?.[ctid.offset] == null) continue;
      page[ctid.offset] = null;
      this.live--;
      if (ctid.block < this.freeHint) this.freeHint = ctid.block;
    }
  }

  /** Every stored version in physical order (a sequential scan sees them this way). */
  *scan(): Generator<[Ctid, HeapTuple]> {
    for (let block = 0; block < this.pages.length; block++) {
      const page = this.pages[block]!;
      for (let offset = 0; offset < page.length; offset++) {
        const tuple = page[offset];
        if (tuple != null) yield [{ block, offset }, tuple];
      }
    }
  }

  /** The pages as plain data (checkpoint image). */
  image(): (HeapTuple | null)[][] {
    return this.pages;
  }

  static fromImage(pages: (HeapTuple | null)[][]): Heap {
    const heap = new Heap();
    pages.forEach((page, block) => page.forEach((tuple, offset) => {
      if (tuple !== null) heap.put({ block, offset }, tuple);
    }));
    // Keep every page's slot count, trailing free slots included, so that the next insert
    // lands where it would have on the primary.
    pages.forEach((page, block) => {
      while (heap.pages.length <= block) heap.pages.push([]);
      const copy = heap.pages[block]!;
      while (copy.length < page.length) copy.push(null);
    });
    heap.freeHint = 0;
    return heap;
  }
}
