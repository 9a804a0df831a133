/*
 * state.ts — everything PostgreSQL keeps in shared memory and data files for one cluster:
 * the catalog, each table's heap and primary key index, the commit log, the OID counter.
 *
 * One actor owns it (on a primary, the one that executes statements; on a standby, startup,
 * which replays into it). It changes only through redo (redo.ts), so applying the same WAL
 * to the same image gives the same state. A checkpoint writes `image()` to disk; recovery
 * starts from `fromImage()` and replays WAL after the checkpoint's redo point.
 */
import { Catalog, FirstNormalObjectId, type CatalogImage, type Oid, type TableDef } from './catalog.js';
import { Clog, type Xid } from './clog.js';
import { Heap, type HeapTuple } from './heap.js';
import { indexKey, UniqueIndex } from './unique-index.js';

/** A sequence's current state (non-transactional, as in PostgreSQL). */
export interface SequenceState {
  lastValue: number;
  isCalled: boolean;
  /** Values nextval may still hand out before it must log ahead again (0: log now). */
  logged: number;
  /** The value the last WAL record logged ahead to: what a checkpoint image keeps. */
  loggedUpTo?: number;
}

export interface StateImage {
  readonly catalog: CatalogImage;
  readonly sequences?: readonly { readonly oid: Oid; readonly lastValue: number; readonly isCalled: boolean }[];
  readonly heaps: readonly { readonly oid: Oid; readonly pages: (HeapTuple | null)[][] }[];
  readonly clog: { readonly nextXid: Xid; readonly statuses: Uint8Array };
  readonly nextOid: Oid;
}

export class DatabaseState {
  catalog = new Catalog();
  clog = new Clog();
  nextOid: Oid = FirstNormalObjectId;
  private readonly heaps = new Map<Oid, Heap>();
  private readonly indexes = new Map<Oid, UniqueIndex>();
  readonly sequences = new Map<Oid, SequenceState>();

  heap(rel: Oid): Heap {
    let heap = this.heaps.get(rel);
    if (heap === undefined) {
      heap = new Heap();
      this.heaps.set(rel, heap);
    }
    return heap;
  }

  /** The primary key index of a table, or undefined if it has none. */
  primaryKey(rel: Oid): UniqueIndex | undefined {
    return this.indexes.get(rel);
  }

  /** Redo and creation: storage for a new table (its heap and its primary key index). */
  createStorage(def: TableDef): void {
    this.heaps.set(def.oid, new Heap());
    if (def.primaryKey !== null) this.indexes.set(def.oid, new UniqueIndex(def.primaryKey));
  }

  assignOid(): Oid {
    return this.nextOid++;
  }

  image(): StateImage {
    return {
      catalog: this.catalog.image(),
      heaps: [...this.heaps].map(([oid, heap]) => ({ oid, pages: heap.image() })),
      clog: this.clog.snapshot(),
      nextOid: this.nextOid,
      // The image keeps the logged-ahead value: after a crash the sequence skips, never repeats.
      sequences: [...this.sequences].map(([oid, q]) => ({ oid, lastValue: q.loggedUpTo ?? q.lastValue, isCalled: q.isCalled })),
    };
  }

  static fromImage(image: StateImage): DatabaseState {
    const state = new DatabaseState();
    state.catalog = Catalog.fromImage(image.catalog);
    state.clog = Clog.restore(image.clog);
    state.nextOid = image.nextOid;
    // A sequence restarts from what was logged: values handed out after that may be reused
    // never, because the log was ahead of them (PostgreSQL's nextval skips, never repeats).
    for (const q of image.sequences ?? []) state.sequences.set(q.oid, { lastValue: q.lastValue, isCalled: q.isCalled, logged: 0 });
    for (const { oid, pages } of image.heaps) {
      const heap = Heap.fromImage(pages);
      state.heaps.set(oid, heap);
      const def = state.catalog.tableByOid(oid);
      if (def?.primaryKey != null) {
        const index = new UniqueIndex(def.primaryKey);
        for (const [ctid, tuple] of heap.scan()) index.add(indexKey(tuple.values, def.primaryKey), ctid);
        state.indexes.set(oid, index);
      }
    }
    return state;
  }
}
