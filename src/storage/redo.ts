/*
 * redo.ts — one function per WAL record kind, applying it to a DatabaseState.
 *
 * The primary applies its own changes through these functions as it logs them; crash
 * recovery and standbys replay the same records through the same functions. A redo
 * function must be deterministic and must not fail on a record the primary could have
 * written: a failure here is a bug or corruption, and is thrown (recovery stops with it).
 * Records that only matter to hot standby (locks, running transactions) update the clog's
 * xid horizon here and are interpreted further by startup.
 */
import type { WalRecord, WalRecordInput } from '../wal/record.js';
import { FrozenXid, InvalidXid } from './clog.js';
import { indexKey } from './unique-index.js';
import type {
  AlterRoleBody, CheckpointBody, CreateRoleBody, FreezeBody, CreateDatabaseBody, CreateSequenceBody, CreateTableBody, CreateTablespaceBody, DropObjectBody, DropTableBody, SequenceLogBody, HeapDeleteBody, HeapInsertBody, HeapUpdateBody, RunningXactsBody, VacuumBody, XactBody,
} from './records.js';
import { AuthidInfo, DatabaseInfo, HeapInfo, Heap2Info, Rmgr, RMGR_NAMES, SequenceInfo, StandbyInfo, StorageInfo, TablespaceInfo, XactInfo, XlogInfo } from './rmgr.js';
import type { DatabaseState } from './state.js';

type Redo = (state: DatabaseState, record: WalRecordInput) => void;

/** Checkpoints and running-xacts records carry the xid and OID counters: never go below them. */
const advanceCounters = (state: DatabaseState, body: RunningXactsBody): void => {
  state.clog.advancePast(body.nextXid - 1);
  if (body.nextOid > state.nextOid) state.nextOid = body.nextOid;
};

const noteXid = (state: DatabaseState, record: WalRecordInput): void => {
  if (record.xid !== InvalidXid) state.clog.advancePast(record.xid);
};

const REDO_BY_NAME: Readonly<Record<string, Redo>> = {
  [`${Rmgr.Heap}:${HeapInfo.Insert}`]: (state, record) => {
    const body = record.body as HeapInsertBody;
    noteXid(state, record);
    state.heap(body.rel).put(body.ctid, { xmin: record.xid, cmin: body.cid, xmax: InvalidXid, cmax: 0, values: body.values, next: null });
    const index = state.primaryKey(body.rel);
    index?.add(indexKey(body.values, index.columns), body.ctid);
  },
  [`${Rmgr.Heap}:${HeapInfo.Delete}`]: (state, record) => {
    const body = record.body as HeapDeleteBody;
    noteXid(state, record);
    state.heap(body.rel).markDeleted(body.ctid, record.xid, body.cid, null);
  },
  [`${Rmgr.Heap}:${HeapInfo.Update}`]: (state, record) => {
    const body = record.body as HeapUpdateBody;
    noteXid(state, record);
    const heap = state.heap(body.rel);
    heap.markDeleted(body.old, record.xid, body.cid, body.ctid);
    heap.put(body.ctid, { xmin: record.xid, cmin: body.cid, xmax: InvalidXid, cmax: 0, values: body.values, next: null });
    const index = state.primaryKey(body.rel);
    index?.add(indexKey(body.values, index.columns), body.ctid);
  },
  [`${Rmgr.Heap2}:${Heap2Info.Vacuum}`]: (state, record) => {
    const body = record.body as VacuumBody;
    const heap = state.heap(body.rel);
    const index = state.primaryKey(body.rel);
    if (index !== undefined) {
      for (const ctid of body.ctids) {
        const tuple = heap.get(ctid);
        if (tuple !== null) index.remove(indexKey(tuple.values, index.columns), ctid);
      }
    }
    heap.remove(body.ctids);
  },
  [`${Rmgr.Heap2}:${Heap2Info.Freeze}`]: (state, record) => {
    const body = record.body as FreezeBody;
    const heap = state.heap(body.rel);
    for (const ctid of body.ctids) heap.freeze(ctid, FrozenXid);
  },
  [`${Rmgr.Transaction}:${XactInfo.Commit}`]: (state, record) => {
    const body = record.body as XactBody;
    noteXid(state, record);
    state.clog.setCommitted([...body.subxids, record.xid]);
  },
  [`${Rmgr.Transaction}:${XactInfo.Abort}`]: (state, record) => {
    const body = record.body as XactBody;
    noteXid(state, record);
    state.clog.setAborted([...body.subxids, record.xid]);
  },
  [`${Rmgr.Storage}:${StorageInfo.CreateTable}`]: (state, record) => {
    const { def } = record.body as CreateTableBody;
    noteXid(state, record);
    state.catalog.addTable(def);
    state.createStorage(def);
    if (def.oid >= state.nextOid) state.nextOid = def.oid + 1;
  },
  [`${Rmgr.Storage}:${StorageInfo.DropTable}`]: (state, record) => {
    const body = record.body as DropTableBody;
    noteXid(state, record);
    state.catalog.dropObject('tables', body.oid, record.xid, body.cid, state.clog);
  },
  [`${Rmgr.Database}:${DatabaseInfo.Create}`]: (state, record) => {
    const { def } = record.body as CreateDatabaseBody;
    noteXid(state, record);
    state.catalog.databases.push(def);
    if (def.oid >= state.nextOid) state.nextOid = def.oid + 1;
  },
  [`${Rmgr.Database}:${DatabaseInfo.Drop}`]: (state, record) => {
    const body = record.body as DropObjectBody;
    noteXid(state, record);
    state.catalog.dropObject('databases', body.oid, record.xid, body.cid, state.clog);
  },
  [`${Rmgr.Tablespace}:${TablespaceInfo.Create}`]: (state, record) => {
    const { def } = record.body as CreateTablespaceBody;
    noteXid(state, record);
    state.catalog.tablespaces.push(def);
    if (def.oid >= state.nextOid) state.nextOid = def.oid + 1;
  },
  [`${Rmgr.Tablespace}:${TablespaceInfo.Drop}`]: (state, record) => {
    const body = record.body as DropObjectBody;
    noteXid(state, record);
    state.catalog.dropObject('tablespaces', body.oid, record.xid, body.cid, state.clog);
  },
  [`${Rmgr.Storage}:${StorageInfo.CreateSequence}`]: (state, record) => {
    const { def } = record.body as CreateSequenceBody;
    noteXid(state, record);
    state.catalog.sequences.push(def);
    state.sequences.set(def.oid, { lastValue: def.start, isCalled: false, logged: 0 });
    if (def.oid >= state.nextOid) state.nextOid = def.oid + 1;
  },
  [`${Rmgr.Sequence}:${SequenceInfo.Log}`]: (state, record) => {
    const body = record.body as SequenceLogBody;
    const q = state.sequences.get(body.rel);
    if (q === undefined) throw new Error(`sequence ${body.rel} does not exist`);
    q.lastValue = body.lastValue;
    q.isCalled = body.isCalled;
    q.logged = 0;
  },
  [`${Rmgr.Authid}:${AuthidInfo.Create}`]: (state, record) => {
    const { def } = record.body as CreateRoleBody;
    noteXid(state, record);
    state.catalog.roles.push(def);
    if (def.oid >= state.nextOid) state.nextOid = def.oid + 1;
  },
  [`${Rmgr.Authid}:${AuthidInfo.Alter}`]: (state, record) => {
    const body = record.body as AlterRoleBody;
    noteXid(state, record);
    state.catalog.dropObject('roles', body.oid, record.xid, body.cid, state.clog);
    state.catalog.roles.push(body.def);
  },
  [`${Rmgr.Authid}:${AuthidInfo.Drop}`]: (state, record) => {
    const body = record.body as DropObjectBody;
    noteXid(state, record);
    state.catalog.dropObject('roles', body.oid, record.xid, body.cid, state.clog);
  },
  [`${Rmgr.Standby}:${StandbyInfo.RunningXacts}`]: (state, record) => advanceCounters(state, record.body as RunningXactsBody),
  [`${Rmgr.Standby}:${StandbyInfo.Lock}`]: () => {},
  [`${Rmgr.XLOG}:${XlogInfo.CheckpointShutdown}`]: (state, record) => advanceCounters(state, record.body as CheckpointBody),
  [`${Rmgr.XLOG}:${XlogInfo.CheckpointOnline}`]: (state, record) => advanceCounters(state, record.body as CheckpointBody),
  // A segment switch changes nothing but where the next record lies (the reader knows).
  [`${Rmgr.XLOG}:${XlogInfo.Switch}`]: () => {},
};

/** Redo functions indexed by rmgr * 256 + info: no string building per replayed record. */
const REDO: (Redo | undefined)[] = [];
for (const [key, apply] of Object.entries(REDO_BY_NAME)) {
  const [rmgr, info] = key.split(':').map(Number) as [number, number];
  REDO[rmgr * 256 + info] = apply;
}

/** Applies one record; throws for a record kind walship does not know. */
export function redo(state: DatabaseState, record: WalRecordInput | WalRecord): void {
  const apply = REDO[record.rmgr * 256 + record.info];
  if (apply === undefined) {
    throw new Error(`unknown WAL record: resource manager ${RMGR_NAMES[record.rmgr] ?? record.rmgr}, info 0x${record.info.toString(16).padStart(2, '0')}`);
  }
  apply(state, record);
}

/** "Heap/INSERT" and the like, for log lines and pg_waldump-style descriptions. */
export function describeRecord(record: WalRecordInput): string {
  const names: Record<number, Record<number, string>> = {
    [Rmgr.Heap]: { [HeapInfo.Insert]: 'INSERT', [HeapInfo.Delete]: 'DELETE', [HeapInfo.Update]: 'UPDATE' },
    [Rmgr.Heap2]: { [Heap2Info.Vacuum]: 'VACUUM', [Heap2Info.Freeze]: 'FREEZE_PAGE' },
    [Rmgr.Transaction]: { [XactInfo.Commit]: 'COMMIT', [XactInfo.Abort]: 'ABORT' },
    [Rmgr.Storage]: { [StorageInfo.CreateTable]: 'CREATE', [StorageInfo.DropTable]: 'DROP', [StorageInfo.CreateSequence]: 'CREATE_SEQUENCE' },
    [Rmgr.Sequence]: { [SequenceInfo.Log]: 'LOG' },
    [Rmgr.Database]: { [DatabaseInfo.Create]: 'CREATE', [DatabaseInfo.Drop]: 'DROP' },
    [Rmgr.Tablespace]: { [TablespaceInfo.Create]: 'CREATE', [TablespaceInfo.Drop]: 'DROP' },
    [Rmgr.Standby]: { [StandbyInfo.RunningXacts]: 'RUNNING_XACTS', [StandbyInfo.Lock]: 'LOCK' },
    [Rmgr.Authid]: { [AuthidInfo.Create]: 'CREATE', [AuthidInfo.Alter]: 'ALTER', [AuthidInfo.Drop]: 'DROP' },
    [Rmgr.XLOG]: { [XlogInfo.CheckpointShutdown]: 'CHECKPOINT_SHUTDOWN', [XlogInfo.CheckpointOnline]: 'CHECKPOINT_ONLINE', [XlogInfo.Switch]: 'SWITCH' },
  };
  return `${RMGR_NAMES[record.rmgr] ?? record.rmgr}/${names[record.rmgr]?.[record.info] ?? `0x${record.info.toString(16)}`}`;
}
