/*
 * Storage as data: the commit log, MVCC visibility, heap pages, the control file, and the
 * property everything later relies on: replaying the WAL a primary wrote rebuilds exactly
 * the primary's state, whether from the beginning or from a checkpoint image.
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { seededRandom } from '../../src/runtime/prng.js';
import { DEFAULT_TABLESPACE, POSTGRES_DATABASE, type TableDef } from '../../src/storage/catalog.js';
import { Clog, FirstNormalXid, InvalidXid } from '../../src/storage/clog.js';
import { decodeControlFile, encodeControlFile, newSystemIdentifier, type ControlFile } from '../../src/storage/control.js';
import { Heap, TUPLES_PER_PAGE, type Ctid } from '../../src/storage/heap.js';
import * as rec from '../../src/storage/records.js';
import { redo } from '../../src/storage/redo.js';
import { isDeadToAll, isVisible, NO_OWN_TRANSACTION, takeSnapshot } from '../../src/storage/snapshot.js';
import { DatabaseState } from '../../src/storage/state.js';
import { indexKey } from '../../src/storage/unique-index.js';
import type { WalRecordInput } from '../../src/wal/record.js';
import { PgError } from '../../src/errors.js';

describe('commit log', () => {
  it('hands out xids in order and records outcomes', () => {
    const clog = new Clog();
    const [a, b, c] = [clog.assign(), clog.assign(), clog.assign()];
    expect([a, b, c]).to.deep.equal([FirstNormalXid, FirstNormalXid + 1, FirstNormalXid + 2]);
    clog.setCommitted([a]);
    clog.setAborted([b]);
    expect([a, b, c].map((x) => clog.status(x))).to.deep.equal(['committed', 'aborted', 'in progress']);
    expect(clog.status(2)).to.equal('committed'); // FrozenXid
    expect(() => clog.setAborted([a])).to.throw('cannot go from committed to another outcome');
    const copy = Clog.restore(clog.snapshot());
    expect([a, b, c].map((x) => copy.status(x))).to.deep.equal(['committed', 'aborted', 'in progress']);
    expect(copy.nextXid).to.equal(clog.nextXid);
  });

  it('grows past its first allocation', () => {
    const clog = new Clog();
    clog.advancePast(100_000);
    clog.setCommitted([99_999]);
    expect(clog.status(99_999)).to.equal('committed');
    expect(clog.nextXid).to.equal(100_001);
  });
});

describe('MVCC visibility', () => {
  const clog = new Clog();
  const committed = clog.assign();
  const aborted = clog.assign();
  const running = clog.assign();
  const mine = clog.assign();
  const later = clog.assign();
  clog.setCommitted([committed]);
  clog.setAborted([aborted]);
  const snapshot = takeSnapshot([running, mine, later], clog.nextXid);
  clog.setCommitted([later]); // commits after the snapshot was taken
  const own = { xids: new Set([mine]), commandId: 5 };
  const tuple = (xmin: number, xmax = InvalidXid, cmin = 0, cmax = 0) => ({ xmin, cmin, xmax, cmax });

  it('sees rows of transactions committed before the snapshot, and no others', () => {
    expect(isVisible(tuple(committed), snapshot, own, clog)).to.equal(true);
    expect(isVisible(tuple(aborted), snapshot, own, clog)).to.equal(false);
    expect(isVisible(tuple(running), snapshot, own, clog)).to.equal(false);
    expect(isVisible(tuple(later), snapshot, own, clog), 'committed after the snapshot').to.equal(false);
  });

  it('hides deletions unless the deleter committed before the snapshot', () => {
    expect(isVisible(tuple(committed, committed), snapshot, own, clog)).to.equal(false);
    expect(isVisible(tuple(committed, aborted), snapshot, own, clog)).to.equal(true);
    expect(isVisible(tuple(committed, running), snapshot, own, clog)).to.equal(true);
    expect(isVisible(tuple(committed, later), snapshot, own, clog)).to.equal(true);
  });

  it('sees its own changes by command id', () => {
    expect(isVisible(tuple(mine, InvalidXid, 4), snapshot, own, clog), 'inserted by an earlier command').to.equal(true);
    expect(isVisible(tuple(mine, InvalidXid, 5), snapshot, own, clog), 'inserted by this command').to.equal(false);
    expect(isVisible(tuple(committed, mine, 0, 4), snapshot, own, clog), 'deleted by an earlier command').to.equal(false);
    expect(isVisible(tuple(committed, mine, 0, 5), snapshot, own, clog), 'deleted by this command').to.equal(true);
    expect(isVisible(tuple(mine, InvalidXid, 4), snapshot, NO_OWN_TRANSACTION, clog), 'others do not see it').to.equal(false);
  });

  it('calls a version dead to all only below the oldest snapshot', () => {
    expect(isDeadToAll(tuple(aborted), running, clog)).to.equal(true);
    expect(isDeadToAll(tuple(committed, committed), running, clog)).to.equal(true);
    expect(isDeadToAll(tuple(committed, later), running, clog), 'deleted after the oldest snapshot').to.equal(false);
    expect(isDeadToAll(tuple(committed, running), later + 1, clog), 'deleter still running').to.equal(false);
  });
});

describe('heap pages', () => {
  it('fills pages in order and reuses slots VACUUM freed', () => {
    const heap = new Heap();
    const t = { xmin: 3, cmin: 0, xmax: 0, cmax: 0, values: [1], next: null };
    const placed: Ctid[] = [];
    for (let i = 0; i < TUPLES_PER_PAGE + 2; i++) {
      const ctid = heap.freeSlot();
      heap.put(ctid, t);
      placed.push(ctid);
    }
    expect(placed.at(-1)).to.deep.equal({ block: 1, offset: 1 });
    heap.remove([{ block: 0, offset: 7 }]);
    expect(heap.freeSlot()).to.deep.equal({ block: 0, offset: 7 });
    expect(heap.versionCount).to.equal(TUPLES_PER_PAGE + 1);
    expect(() => heap.put({ block: 0, offset: 8 }, t)).to.throw('slot (0,9) is already in use');
  });
});

describe('control file', () => {
  const control: ControlFile = {
    systemIdentifier: newSystemIdentifier(Date.UTC(2026, 10, 22), () => 0.5), walSegmentSize: 16 * 1024 * 1024, state: 'in production',
    time: 1, checkpointLsn: 0x1000028, redoLsn: 0x1000028, timeline: 1, nextXid: 740, nextOid: 16390, minRecoveryPoint: 0,
  };

  it('round-trips, system identifier included', () => {
    expect(decodeControlFile(encodeControlFile(control), 'global/pg_control')).to.deep.equal(control);
    expect(control.systemIdentifier > 2n ** 62n).to.equal(true);
  });

  it('is refused when damaged', () => {
    const bytes = encodeControlFile(control);
    bytes[20]! ^= 1;
    let error: unknown;
    try {
      decodeControlFile(bytes, 'global/pg_control');
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(PgError);
    expect((error as PgError).message).to.equal('incorrect checksum in control file');
    expect((error as PgError).severity).to.equal('FATAL');
  });
});

/** A tiny primary: random transactions on one table, every change made by logging and redoing it. */
function primaryWorkload(seed: number, transactions: number): { state: DatabaseState; wal: WalRecordInput[]; checkpointAt: number } {
  const random = seededRandom(seed);
  const state = new DatabaseState();
  const wal: WalRecordInput[] = [];
  const log = (record: WalRecordInput): void => {
    redo(state, record);
    wal.push(record);
  };
  const creator = state.clog.assign();
  const def: TableDef = {
    oid: state.assignOid(), name: 'kv', database: POSTGRES_DATABASE, tablespace: DEFAULT_TABLESPACE,
    columns: [{ name: 'id', type: 'int4', notNull: true, default: null }, { name: 'v', type: 'text', notNull: false, default: null }],
    primaryKey: [0], primaryKeyName: 'kv_pkey', xmin: creator, cmin: 0, xmax: InvalidXid, cmax: 0,
  };
  log(rec.createTable(creator, { def }));
  log(rec.commit(creator, { subxids: [], time: 0 }));
  let checkpointAt = 0;
  for (let t = 0; t < transactions; t++) {
    if (t === Math.floor(transactions / 2)) checkpointAt = wal.length;
    const xid = state.clog.assign();
    const snapshot = takeSnapshot([xid], state.clog.nextXid);
    const own = { xids: new Set([xid]), commandId: 0 };
    const heap = state.heap(def.oid);
    for (let cid = 0; cid < 1 + Math.floor(random() * 4); cid++) {
      const mine = { ...own, commandId: cid };
      const live = [...heap.scan()].filter(([, tuple]) => isVisible(tuple, snapshot, mine, state.clog));
      const roll = random();
      if (roll < 0.5 || live.length === 0) {
        log(rec.heapInsert(xid, { rel: def.oid, ctid: heap.freeSlot(), cid, values: [t * 10 + cid, `v${t}`] }));
      } else {
        const [ctid, tuple] = live[Math.floor(random() * live.length)]!;
        if (roll < 0.8) log(rec.heapUpdate(xid, { rel: def.oid, old: ctid, ctid: heap.freeSlot(), cid, values: [tuple.values[0]!, `u${t}`] }));
        else log(rec.heapDelete(xid, { rel: def.oid, ctid, cid }));
      }
    }
    log(random() < 0.8 ? rec.commit(xid, { subxids: [], time: t }) : rec.abort(xid, { subxids: [], time: t }));
    if (t % 10 === 9) {
      const dead = [...heap.scan()].filter(([, tuple]) => isDeadToAll(tuple, state.clog.nextXid, state.clog)).map(([ctid]) => ctid);
      if (dead.length > 0) log(rec.vacuum({ rel: def.oid, ctids: dead, latestRemovedXid: xid }));
    }
  }
  return { state, wal, checkpointAt };
}

const packr = new Packr({ useRecords: false });
const imageBytes = (state: DatabaseState): string => Buffer.from(packr.pack(state.image())).toString('base64');

function visibleRows(state: DatabaseState): unknown[] {
  const def = state.catalog.tables[0]!;
  const snapshot = takeSnapshot([], state.clog.nextXid);
  return [...state.heap(def.oid).scan()]
    .filter(([, t]) => isVisible(t, snapshot, NO_OWN_TRANSACTION, state.clog))
    .map(([, t]) => t.values)
    .sort((a, b) => (a[0] as number) - (b[0] as number));
}

describe('redo', () => {
  it('rebuilds the primary\'s exact state from its WAL', () => {
    for (const seed of [1, 2, 3]) {
      const { state, wal } = primaryWorkload(seed, 200);
      const replica = new DatabaseState();
      for (const record of wal) redo(replica, record);
      expect(imageBytes(replica), `seed ${seed}`).to.equal(imageBytes(state));
      expect(visibleRows(replica)).to.deep.equal(visibleRows(state));
      expect(visibleRows(state).length).to.be.greaterThan(10);
    }
  });

  it('gives the same state from a checkpoint image plus the WAL after it', () => {
    const { state, wal, checkpointAt } = primaryWorkload(7, 300);
    const upToCheckpoint = new DatabaseState();
    for (const record of wal.slice(0, checkpointAt)) redo(upToCheckpoint, record);
    const recovered = DatabaseState.fromImage(structuredClone(upToCheckpoint.image()));
    for (const record of wal.slice(checkpointAt)) redo(recovered, record);
    expect(visibleRows(recovered)).to.deep.equal(visibleRows(state));
    expect(recovered.clog.nextXid).to.equal(state.clog.nextXid);
    const def = state.catalog.tables[0]!;
    for (const [ctid, tuple] of state.heap(def.oid).scan()) {
      expect(recovered.heap(def.oid).get(ctid)).to.deep.equal(tuple);
      expect(recovered.primaryKey(def.oid)!.lookup(indexKey(tuple.values, [0]))).to.deep.include(ctid);
    }
  });

  it('refuses a record kind it does not know', () => {
    expect(() => redo(new DatabaseState(), { rmgr: 10, info: 0x70, xid: 0, body: {} })).to.throw('unknown WAL record: resource manager Heap, info 0x70');
  });
});
