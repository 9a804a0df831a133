/*
 * records.ts — the WAL records storage writes, one constructor per kind.
 *
 * Each record says everything redo needs to repeat the change exactly: which table, which
 * ctid, which xid and command, which values. Constructors return WalRecordInput ready for
 * the walwriter; redo.ts has the one function that applies each kind.
 */
import type { WalRecordInput } from '../wal/record.js';
import type { Lsn } from '../wal/lsn.js';
import type { DatabaseDef, Oid, RoleDef, SequenceDef, TableDef, TablespaceDef } from './catalog.js';
import type { Xid } from './clog.js';
import type { Ctid, Datum } from './heap.js';
import { AuthidInfo, DatabaseInfo, HeapInfo, Heap2Info, Rmgr, SequenceInfo, StandbyInfo, StorageInfo, TablespaceInfo, XactInfo, XlogInfo } from './rmgr.js';

export interface HeapInsertBody { readonly rel: Oid; readonly ctid: Ctid; readonly cid: number; readonly values: readonly Datum[] }
export interface HeapDeleteBody { readonly rel: Oid; readonly ctid: Ctid; readonly cid: number }
export interface HeapUpdateBody { readonly rel: Oid; readonly old: Ctid; readonly ctid: Ctid; readonly cid: number; readonly values: readonly Datum[] }
/** VACUUM FREEZE: these versions' inserters are older than every snapshot; their xmin becomes FrozenXid. */
export interface FreezeBody { readonly rel: Oid; readonly ctids: readonly Ctid[]; readonly cutoffXid: Xid }
export interface VacuumBody { readonly rel: Oid; readonly ctids: readonly Ctid[]; readonly latestRemovedXid: Xid }
export interface XactBody { readonly subxids: readonly Xid[]; readonly time: number }
export interface CreateTableBody { readonly def: TableDef }
export interface DropTableBody { readonly oid: Oid; readonly cid: number }
export interface RunningXactsBody { readonly running: readonly Xid[]; readonly nextXid: Xid; readonly nextOid: Oid }
export interface CheckpointBody extends RunningXactsBody { readonly redo: Lsn; readonly timeline: number; readonly time: number }
export interface CreateDatabaseBody { readonly def: DatabaseDef }
export interface CreateTablespaceBody { readonly def: TablespaceDef }
export interface DropObjectBody { readonly oid: Oid; readonly cid: number }
export interface CreateSequenceBody { readonly def: SequenceDef }
/** A sequence's state as logged: PostgreSQL logs SEQ_LOG_VALS values ahead of what nextval handed out. */
export interface SequenceLogBody { readonly rel: Oid; readonly lastValue: number; readonly isCalled: boolean }
export interface CreateRoleBody { readonly def: RoleDef }
/** ALTER ROLE: the live version of role `oid` is deleted by the record's xid and `def` takes its place. */
export interface AlterRoleBody { readonly oid: Oid; readonly cid: number; readonly def: RoleDef }
export interface AccessExclusiveLocksBody { readonly locks: readonly { readonly xid: Xid; readonly database: Oid; readonly rel: Oid }[] }

export const heapInsert = (xid: Xid, body: HeapInsertBody): WalRecordInput => ({ rmgr: Rmgr.Heap, info: HeapInfo.Insert, xid, body });
export const heapDelete = (xid: Xid, body: HeapDeleteBody): WalRecordInput => ({ rmgr: Rmgr.Heap, info: HeapInfo.Delete, xid, body });
export const heapUpdate = (xid: Xid, body: HeapUpdateBody): WalRecordInput => ({ rmgr: Rmgr.Heap, info: HeapInfo.Update, xid, body });
export const vacuum = (body: VacuumBody): WalRecordInput => ({ rmgr: Rmgr.Heap2, info: Heap2Info.Vacuum, xid: 0, body });
export const freeze = (body: FreezeBody): WalRecordInput => ({ rmgr: Rmgr.Heap2, info: Heap2Info.Freeze, xid: 0, body });
export const commit = (xid: Xid, body: XactBody): WalRecordInput => ({ rmgr: Rmgr.Transaction, info: XactInfo.Commit, xid, body });
export const abort = (xid: Xid, body: XactBody): WalRecordInput => ({ rmgr: Rmgr.Transaction, info: XactInfo.Abort, xid, body });
export const createTable = (xid: Xid, body: CreateTableBody): WalRecordInput => ({ rmgr: Rmgr.Storage, info: StorageInfo.CreateTable, xid, body });
export const dropTable = (xid: Xid, body: DropTableBody): WalRecordInput => ({ rmgr: Rmgr.Storage, info: StorageInfo.DropTable, xid, body });
export const createDatabase = (xid: Xid, body: CreateDatabaseBody): WalRecordInput => ({ rmgr: Rmgr.Database, info: DatabaseInfo.Create, xid, body });
export const dropDatabase = (xid: Xid, body: DropObjectBody): WalRecordInput => ({ rmgr: Rmgr.Database, info: DatabaseInfo.Drop, xid, body });
export const createTablespace = (xid: Xid, body: CreateTablespaceBody): WalRecordInput => ({ rmgr: Rmgr.Tablespace, info: TablespaceInfo.Create, xid, body });
export const dropTablespace = (xid: Xid, body: DropObjectBody): WalRecordInput => ({ rmgr: Rmgr.Tablespace, info: TablespaceInfo.Drop, xid, body });
export const createSequence = (xid: Xid, body: CreateSequenceBody): WalRecordInput => ({ rmgr: Rmgr.Storage, info: StorageInfo.CreateSequence, xid, body });
export const createRole = (xid: Xid, body: CreateRoleBody): WalRecordInput => ({ rmgr: Rmgr.Authid, info: AuthidInfo.Create, xid, body });
export const alterRole = (xid: Xid, body: AlterRoleBody): WalRecordInput => ({ rmgr: Rmgr.Authid, info: AuthidInfo.Alter, xid, body });
export const dropRole = (xid: Xid, body: DropObjectBody): WalRecordInput => ({ rmgr: Rmgr.Authid, info: AuthidInfo.Drop, xid, body });
export const sequenceLog = (body: SequenceLogBody): WalRecordInput => ({ rmgr: Rmgr.Sequence, info: SequenceInfo.Log, xid: 0, body });
export const runningXacts = (body: RunningXactsBody): WalRecordInput => ({ rmgr: Rmgr.Standby, info: StandbyInfo.RunningXacts, xid: 0, body });
export const accessExclusiveLocks = (body: AccessExclusiveLocksBody): WalRecordInput => ({ rmgr: Rmgr.Standby, info: StandbyInfo.Lock, xid: 0, body });
/** pg_switch_wal(): the current segment ends here (the WAL layer pads it out). */
export const switchWal = (): WalRecordInput => ({ rmgr: Rmgr.XLOG, info: XlogInfo.Switch, xid: 0, body: {} });
export const checkpoint = (shutdown: boolean, body: CheckpointBody): WalRecordInput => ({
  rmgr: Rmgr.XLOG, info: shutdown ? XlogInfo.CheckpointShutdown : XlogInfo.CheckpointOnline, xid: 0, body,
});
