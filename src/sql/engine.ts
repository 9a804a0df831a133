/*
 * engine.ts — executing statements against the cluster's state, for many sessions.
 *
 * The engine owns the DatabaseState and the procarray; the actor that holds it (shmem.ts)
 * calls `execute` for one statement at a time, so each statement runs atomically. Every
 * change is logged: a WAL record is built, applied through redo and handed back to be
 * inserted into WAL, in order. A statement either completes, fails, or finds a row or key
 * held by a transaction still running and answers `wait`: it has changed nothing yet, and
 * the actor runs it again once that transaction ends (READ COMMITTED then sees the new row
 * version; REPEATABLE READ fails with a serialization error if the row changed).
 *
 * Commits come back as `commit: xid`; the xid stays in the procarray until the actor calls
 * `finishCommit`, after the flush synchronous_commit asks for.
 *
 * On a hot standby (`inRecovery`) the same engine serves read-only sessions: every
 * transaction is read-only (readonly.ts says what is refused), no xid is ever assigned, and
 * the procarray holds the xids the replaying side knows to be running, owned by no session
 * here, so that snapshots see the primary's transactions as the primary's own would.
 *
 * Elsewhere on purpose: what read-only transactions refuse (readonly.ts), roles
 * (roles.ts), functions in FROM (range-function.ts), and the views and functions the server
 * serves from outside the engine (system.ts, reached through ExecuteOptions.system).
 */
import { assert } from '../assert.js';
import { PgError, SqlState } from '../errors.js';
import { DEFAULT_TABLESPACE, POSTGRES_DATABASE, type ColumnDef, type Oid, type SequenceDef, type TableDef, type TypeName } from '../storage/catalog.js';
import { FirstNormalXid, InvalidXid, type Xid } from '../storage/clog.js';
import type { Ctid, Datum } from '../storage/heap.js';
import * as rec from '../storage/records.js';
import { redo } from '../storage/redo.js';
import { isDeadToAll, isVisible, takeSnapshot, type OwnTransaction, type Snapshot } from '../storage/snapshot.js';
import type { DatabaseState, SequenceState } from '../storage/state.js';
import { LockManager, LockMode } from '../storage/locks.js';
import type { WalRecordInput } from '../wal/record.js';
import { formatLsn, type Lsn } from '../wal/lsn.js';
import { constValue, unwrap, type ExprContext, type Node, type ScalarFunctions } from './expr.js';
import { executeDelete, executeInsert, executeUpdate, nameHeld, RowConflict, type DmlContext } from './modify.js';
import type { ParsedStatement } from './parse.js';
import { checkQuery, checkUtility, duringRecoveryError, readOnlyOption, readOnlyTransactionError, readWriteDuringRecoveryError } from './readonly.js';
import { rangeFunction } from './range-function.js';
import { commandOnly, type QueryResult } from './result.js';
import { alterRole, committedRole, createRole, dropRoles, PG_ROLES_COLUMNS, pgRolesRows, type RoleContext, type RoleInfo } from './roles.js';
import { executeSelect, selectValues } from './select.js';
import { SystemCalls, type SystemHooks } from './system.js';
import { liveXids, newTransaction, ProcArray, type Isolation, type Transaction } from './transaction.js';
import { coerce, typeFromName } from './types.js';
import { virtualTable } from './virtual-table.js';
import type { StandbySession } from '../conflicts/detect.js';

export interface ExecuteOptions {
  readonly params: readonly Datum[];
  readonly defaultIsolation: Isolation;
  readonly now: number;
  /** The WAL insert position (as a number: formatted only if a statement asks for it). */
  readonly currentWalLsn: Lsn;
  /** A hot standby: every transaction is read-only, and none gets an xid. */
  readonly inRecovery: boolean;
  /** The database the session is connected to. */
  readonly database?: string;
  /** default_transaction_read_only: transactions start read-only unless BEGIN READ WRITE says otherwise. */
  readonly defaultReadOnly?: boolean;
  /** Uniform in [0, 1): salts for password verifiers (node:crypto's randomness when absent). */
  readonly random?: () => number;
  /** Views and functions the server serves (pg_stat_replication, pg_last_wal_receive_lsn(), ...). */
  readonly system?: SystemHooks;
  /**
   * The server is fenced (a former primary whose timeline was superseded): every transaction
   * is read-only, and a refused write says why with this DETAIL and HINT.
   */
  readonly fenced?: { readonly detail: string; readonly hint: string };
}

export type { SystemHooks } from './system.js';

export type Outcome =
  /** `sleepMs`: pg_sleep() asked the reply to wait that long, the statement still running (its transaction's locks and snapshot held). */
  | { readonly kind: 'done'; readonly result: QueryResult; readonly records: readonly WalRecordInput[]; readonly commit: Xid | null; readonly sleepMs?: number }
  | { readonly kind: 'error'; readonly error: PgError; readonly records: readonly WalRecordInput[] }
  /** Blocked by `blocker`: nothing transactional was done; `records` (sequence logs) must still be written. */
  | { readonly kind: 'wait'; readonly blocker: WaitKey; readonly records: readonly WalRecordInput[] };

/** What a statement waits for: a transaction's end (`x:<xid>`) or a session's locks (`s:<session>`). */
export type WaitKey = string;

/** Thrown when a table lock is held by another session in a conflicting mode. */
class LockConflict extends Error {
  constructor(readonly holder: string) {
    super(`waiting for the locks of session ${holder}`);
  }
}

/** Values nextval hands out per WAL record (PostgreSQL's SEQ_LOG_VALS). */
const SEQ_LOG_VALS = 32;

const notSupported = (what: string): PgError => new PgError({ code: SqlState.FeatureNotSupported, message: `${what} is not supported by walship yet` });

export class Engine {
  readonly procarray = new ProcArray();
  private readonly sessions = new Map<string, Transaction>();
  private records: WalRecordInput[] = [];
  /** Each session's currval per sequence. */
  private readonly currvals = new Map<string, Map<number, number>>();
  /** Commits waiting for their flush: their subtransaction xids and their session (whose locks they hold). */
  private readonly committing = new Map<Xid, { subxids: Xid[]; session: string }>();
  /** The database of the statement being executed (statements run one at a time). */
  private db: Oid = POSTGRES_DATABASE;
  /** Whether the statement being executed runs during recovery (then nothing may assign an xid). */
  private inRecovery = false;
  /** The server's views and functions, as the statement being executed has asked for them. */
  private system = new SystemCalls(undefined);
  /** Which session each running xid belongs to (deadlock detection). */
  private readonly xidOwner = new Map<Xid, string>();
  /** session -> the session it waits for. */
  private readonly waitsFor = new Map<string, string>();
  readonly locks = new LockManager();
  /** The database each session last ran a statement in (hot standby conflicts). */
  private readonly sessionDatabase = new Map<string, Oid>();

  constructor(readonly state: DatabaseState) {}

  /** What hot standby conflict detection needs of each session (src/conflicts/detect.ts). */
  standbySessions(): StandbySession[] {
    const locked = new Map<string, Set<Oid>>();
    for (const row of this.locks.rows()) {
      const set = locked.get(row.session) ?? new Set<Oid>();
      set.add(row.rel);
      locked.set(row.session, set);
    }
    const out: StandbySession[] = [];
    for (const [session, database] of this.sessionDatabase) {
      const txn = this.sessions.get(session);
      const cursorRelations = new Set<Oid>();
      for (const cursor of txn?.cursors.values() ?? []) if (cursor.rel !== null && cursor.position < cursor.rows.length) cursorRelations.add(cursor.rel);
      out.push({
        session, database, inTransaction: txn !== undefined, snapshotXmin: txn?.snapshot?.xmin ?? null,
        lockedRelations: locked.get(session) ?? new Set(), cursorRelations,
      });
    }
    return out;
  }

  /**
   * Replay cannot wait longer for this session: its transaction goes now, with its locks,
   * snapshot and cursors. Cancelled, an explicit transaction stays open but failed (the next
   * statement learns it must ROLLBACK, as after any ERROR); terminated, the session ends.
   */
  resolveRecoveryConflict(session: string, terminate: boolean): void {
    if (terminate) {
      this.endSession(session);
      this.sessionDatabase.delete(session);
      return;
    }
    const txn = this.sessions.get(session);
    this.locks.releaseAll(session);
    this.waitsFor.delete(session);
    if (txn === undefined) return;
    if (!txn.explicit) {
      this.sessions.delete(session);
      return;
    }
    txn.failed = true;
    txn.snapshot = null;
    txn.cursors.clear();
  }

  /** Replay of an ACCESS EXCLUSIVE lock: held for transaction `xid` until its commit or abort is replayed. */
  takeRecoveryLock(xid: Xid, rel: Oid): void {
    this.locks.acquire(rel, LockMode.AccessExclusive, recoveryLockHolder(xid));
  }

  /** The transactions ended (replayed commit or abort, or no longer running): their replayed locks go. */
  releaseRecoveryLocks(xids: Iterable<Xid>): void {
    for (const xid of xids) this.locks.releaseAll(recoveryLockHolder(xid));
  }

  /** Replayed locks still held, by xid. */
  recoveryLockXids(): Xid[] {
    const xids = new Set<Xid>();
    for (const row of this.locks.rows()) if (row.session.startsWith(RECOVERY_LOCK_PREFIX)) xids.add(Number(row.session.slice(RECOVERY_LOCK_PREFIX.length)));
    return [...xids];
  }

  /** The latest committed version of a role (pg_authid), for authentication; undefined if there is none. */
  role(name: string): RoleInfo | undefined {
    return committedRole(this.state, this.procarray, name);
  }

  /** Whether the session is inside BEGIN ... (PostgreSQL's transaction status: 'T' or 'E'). */
  transactionStatus(session: string): 'idle' | 'in transaction' | 'failed' {
    const txn = this.sessions.get(session);
    return txn === undefined ? 'idle' : txn.failed ? 'failed' : 'in transaction';
  }

  /** pg_sleep() time asked for by the statement being executed. */
  private sleepMs = 0;

  execute(session: string, stmt: ParsedStatement, options: ExecuteOptions): Outcome {
    this.records = [];
    this.sleepMs = 0;
    this.waitsFor.delete(session);
    this.inRecovery = options.inRecovery;
    const existing = this.sessions.get(session);
    const txn = existing ?? newTransaction(session, false, options.defaultIsolation, options.inRecovery || options.fenced !== undefined || options.defaultReadOnly === true, options.now);
    if (txn.failed && !(stmt.kind === 'TransactionStmt' && ['TRANS_STMT_ROLLBACK', 'TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK_TO'].includes(stmt.node['kind'] as string))) {
      return this.fail(new PgError({ code: SqlState.InFailedSqlTransaction, message: 'current transaction is aborted, commands ignored until end of transaction block' }));
    }
    try {
      if (stmt.kind === 'TransactionStmt') return this.transactionStatement(session, txn, stmt.node, options);
      const result = this.statement(session, txn, stmt, options);
      txn.commandId++;
      const sleep = this.sleepMs > 0 ? { sleepMs: this.sleepMs } : {};
      if (txn.explicit) {
        this.sessions.set(session, txn);
        return { kind: 'done', result, records: this.records, commit: null, ...sleep };
      }
      return { kind: 'done', result, records: this.records, commit: this.commit(session, txn), ...sleep };
    } catch (err) {
      if (err instanceof RowConflict || err instanceof LockConflict) {
        const holder = err instanceof RowConflict ? this.xidOwner.get(err.blocker) : err.holder;
        const key = err instanceof RowConflict ? `x:${err.blocker}` : `s:${err.holder}`;
        if (holder !== undefined && this.closesCycle(session, holder)) {
          const what = err instanceof RowConflict ? `transaction ${err.blocker}` : `the locks of another session`;
          return this.failTransaction(session, txn, new PgError({ code: SqlState.DeadlockDetected, message: 'deadlock detected', detail: `Process waits for ${what}, which waits for this process.` }));
        }
        this.discardIfImplicit(session, txn);
        if (holder !== undefined) this.waitsFor.set(session, holder);
        return { kind: 'wait', blocker: key, records: this.records };
      }
      if (!(err instanceof PgError)) throw err;
      const fence = options.fenced;
      // A fenced server says why it refuses the write.
      if (fence !== undefined && err.code === SqlState.ReadOnlySqlTransaction) return this.failTransaction(session, txn, new PgError({ ...err.toFields(), detail: fence.detail, hint: fence.hint }));
      return this.failTransaction(session, txn, err);
    }
  }

  /** After the commit record is flushed as asked: the commit becomes visible to others, and its locks go. */
  finishCommit(xid: Xid): void {
    const committing = this.committing.get(xid);
    this.committing.delete(xid);
    this.forgetXids([xid, ...(committing?.subxids ?? [])]);
    if (committing !== undefined) this.locks.releaseAll(committing.session);
  }

  /** These xids ended (committed and flushed, or aborted): no longer running, owned or waited for. */
  private forgetXids(xids: readonly Xid[]): void {
    for (const xid of xids) {
      this.procarray.remove(xid);
      this.xidOwner.delete(xid);
    }
  }

  /** Is what `key` names over (the transaction ended, or the session holds no locks)? */
  waitOver(key: WaitKey): boolean {
    return key.startsWith('x:') ? !this.procarray.has(Number(key.slice(2))) : !this.locks.holdsAny(key.slice(2));
  }

  /** Would `session` waiting for `holder` close a cycle of waits (a deadlock)? */
  private closesCycle(session: string, holder: string): boolean {
    const seen = new Set<string>();
    for (let at: string | undefined = holder; at !== undefined && !seen.has(at); at = this.waitsFor.get(at)) {
      if (at === session) return true;
      seen.add(at);
    }
    return false;
  }

  /** A session ended: its open transaction, if any, aborts. */
  endSession(session: string): readonly WalRecordInput[] {
    this.records = [];
    this.currvals.delete(session);
    this.waitsFor.delete(session);
    const txn = this.sessions.get(session);
    this.sessions.delete(session);
    this.sessionDatabase.delete(session);
    if (txn !== undefined) this.abort(session, txn);
    // A commit still finishing (waiting for its flush or its standbys) keeps its locks until finishCommit.
    if (![...this.committing.values()].some((c) => c.session === session)) this.locks.releaseAll(session);
    return this.records;
  }

  snapshotFor(txn: Transaction): Snapshot {
    if (txn.isolation === 'read committed') return takeSnapshot(this.procarray.xids(), this.state.clog.nextXid);
    txn.snapshot ??= takeSnapshot(this.procarray.xids(), this.state.clog.nextXid);
    return txn.snapshot;
  }

  private transactionStatement(session: string, txn: Transaction, node: Node, options: ExecuteOptions): Outcome {
    switch (node['kind']) {
      case 'TRANS_STMT_BEGIN':
      case 'TRANS_STMT_START': {
        if (txn.explicit) {
          return { kind: 'done', result: commandOnly('BEGIN'), records: [], commit: null };
        }
        const readOnly = readOnlyOption(node);
        const fresh = newTransaction(session, true, isolationOption(node) ?? options.defaultIsolation, options.inRecovery || options.fenced !== undefined || (readOnly ?? options.defaultReadOnly === true), options.now);
        this.sessions.set(session, fresh);
        // As in PostgreSQL, the block has begun when its READ WRITE option is refused: it is failed.
        if (readOnly === false && options.inRecovery) return this.failTransaction(session, fresh, readWriteDuringRecoveryError());
        return { kind: 'done', result: commandOnly('BEGIN'), records: [], commit: null };
      }
      case 'TRANS_STMT_COMMIT': {
        this.sessions.delete(session);
        if (txn.failed) {
          this.abort(session, txn);
          return { kind: 'done', result: commandOnly('ROLLBACK'), records: this.records, commit: null };
        }
        return { kind: 'done', result: commandOnly('COMMIT'), records: this.records, commit: this.commit(session, txn) };
      }
      case 'TRANS_STMT_ROLLBACK':
        this.sessions.delete(session);
        this.abort(session, txn);
        return { kind: 'done', result: commandOnly('ROLLBACK'), records: this.records, commit: null };
      case 'TRANS_STMT_SAVEPOINT':
      case 'TRANS_STMT_RELEASE':
      case 'TRANS_STMT_ROLLBACK_TO':
        return this.savepoint(session, txn, node);
      default:
        throw notSupported(`${String(node['kind']).replace('TRANS_STMT_', '')}`);
    }
  }

  /** SAVEPOINT, RELEASE SAVEPOINT, ROLLBACK TO SAVEPOINT: subtransactions, as PostgreSQL has them. */
  private savepoint(session: string, txn: Transaction, node: Node): Outcome {
    const kind = node['kind'] as string;
    const name = node['savepoint_name'] as string;
    const verb = kind === 'TRANS_STMT_SAVEPOINT' ? 'SAVEPOINT' : kind === 'TRANS_STMT_RELEASE' ? 'RELEASE SAVEPOINT' : 'ROLLBACK TO SAVEPOINT';
    if (!txn.explicit) {
      throw new PgError({ code: SqlState.NoActiveSqlTransaction, message: `${verb} can only be used in transaction blocks` });
    }
    this.sessions.set(session, txn);
    if (kind === 'TRANS_STMT_SAVEPOINT') {
      txn.savepoints.push({ name, xid: InvalidXid, merged: [] });
      return { kind: 'done', result: commandOnly('SAVEPOINT'), records: [], commit: null };
    }
    const index = txn.savepoints.map((sp) => sp.name).lastIndexOf(name);
    if (index < 0) throw new PgError({ code: SqlState.InvalidSavepointSpecification, message: `savepoint "${name}" does not exist` });
    const undone = txn.savepoints.splice(index);
    const xids = undone.flatMap((sp) => (sp.xid === InvalidXid ? sp.merged : [sp.xid, ...sp.merged]));
    if (kind === 'TRANS_STMT_RELEASE') {
      const parent = txn.savepoints.at(-1);
      (parent === undefined ? txn.subxids : parent.merged).push(...xids);
      return { kind: 'done', result: commandOnly('RELEASE'), records: [], commit: null };
    }
    // ROLLBACK TO: what the subtransactions wrote is aborted; the savepoint itself stays.
    if (xids.length > 0) {
      this.log(rec.abort(xids[0]!, { subxids: xids.slice(1), time: txn.startedAt }));
      this.forgetXids(xids);
    }
    txn.savepoints.push({ name, xid: InvalidXid, merged: [] });
    txn.failed = false;
    return { kind: 'done', result: commandOnly('ROLLBACK'), records: this.records, commit: null };
  }

  private statement(session: string, txn: Transaction, stmt: ParsedStatement, options: ExecuteOptions): QueryResult {
    const snapshot = this.snapshotFor(txn);
    const own: OwnTransaction = { xids: new Set(liveXids(txn)), commandId: txn.commandId };
    const database = this.state.catalog.database(options.database ?? 'postgres', snapshot, own, this.state.clog);
    if (database === undefined) {
      throw new PgError({ code: SqlState.InvalidCatalogName, severity: 'FATAL', message: `database "${options.database}" does not exist` });
    }
    this.db = database.oid;
    this.sessionDatabase.set(session, database.oid);
    this.system = new SystemCalls(options.system);
    const readOnly = txn.readOnly || options.inRecovery;
    checkUtility(stmt.kind, stmt.node, readOnly, options.inRecovery);
    const functions: ScalarFunctions = {
      ...this.sequenceFunctions(session, snapshot, own, readOnly),
      now: () => txn.startedAt,
      currentWalLsn: () => {
        if (options.inRecovery) throw recoveryInProgress();
        return formatLsn(options.currentWalLsn);
      },
      txidCurrent: () => {
        // txid_current() is pg_current_xact_id() underneath, and says so.
        if (options.inRecovery) throw duringRecoveryError('pg_current_xact_id()');
        return this.assignXid(txn);
      },
      inRecovery: () => options.inRecovery,
      sleep: (seconds) => {
        if (Number.isFinite(seconds) && seconds > 0) this.sleepMs += seconds * 1000;
      },
      server: (name, args) => this.system.call(name, args),
    };
    const lookup = (relation: Node, mode: number = LockMode.AccessShare): TableDef => {
      const name = relation['relname'] as string;
      const def = this.state.catalog.table(name, this.db, snapshot, own, this.state.clog);
      if (def === undefined) throw new PgError({ code: SqlState.UndefinedTable, message: `relation "${name}" does not exist` });
      this.lock(session, txn, def, mode, false);
      return def;
    };
    const exprContext = (table: TableDef | null): ExprContext => ({ table, params: options.params, functions });
    const dml = (table: TableDef): DmlContext => ({
      state: this.state, table, snapshot, own, procarray: this.procarray, isolation: txn.isolation,
      expr: exprContext(table), xid: () => this.assignXid(txn), log: (r) => this.log(r), commandId: txn.commandId,
      select: (query: Node) => {
        const [source, rows] = this.source(query, lookup, snapshot, own, exprContext(null));
        return selectValues(query, source, rows, exprContext(source));
      },
    });
    const roles = (): RoleContext => ({
      state: this.state, snapshot, own, procarray: this.procarray, commandId: txn.commandId, random: options.random,
      xid: () => this.assignXid(txn), log: (r) => this.log(r),
    });
    /** The table an INSERT, UPDATE or DELETE writes, once the executor's read-only check passed. */
    const target = (): TableDef => {
      const table = lookup(stmt.node['relation'] as Node, LockMode.RowExclusive);
      checkQuery(stmt.kind, stmt.node, readOnly);
      return table;
    };
    const node = stmt.node;
    switch (stmt.kind) {
      case 'SelectStmt': {
        if (node['intoClause'] !== undefined) {
          // SELECT ... INTO t is CREATE TABLE t AS SELECT ..., as PostgreSQL's analysis rewrites it.
          const query = { SelectStmt: { ...node, intoClause: undefined } };
          return this.createTableAs(txn, { into: node['intoClause'], query }, lookup, snapshot, own, exprContext);
        }
        const [table, rows] = this.source(node, lookup, snapshot, own, exprContext(null));
        checkQuery(stmt.kind, node, readOnly);
        return executeSelect(node, table, rows, exprContext(table));
      }
      case 'CreateTableAsStmt':
        return this.createTableAs(txn, node, lookup, snapshot, own, exprContext);
      case 'InsertStmt':
        return executeInsert(node, dml(target()));
      case 'UpdateStmt':
        return executeUpdate(node, dml(target()));
      case 'DeleteStmt':
        return executeDelete(node, dml(target()));
      case 'DeclareCursorStmt': {
        if (!txn.explicit) throw new PgError({ code: SqlState.NoActiveSqlTransaction, message: 'DECLARE CURSOR can only be used in transaction blocks' });
        const name = node['portalname'] as string;
        if (txn.cursors.has(name)) throw new PgError({ code: SqlState.DuplicateCursor, message: `cursor "${name}" already exists` });
        const [kind, query] = unwrap(node['query'] as Node);
        if (kind !== 'SelectStmt') throw notSupported(`a cursor for ${kind}`);
        const [table, rows] = this.source(query, lookup, snapshot, own, exprContext(null));
        checkQuery(kind, query, readOnly);
        const result = executeSelect(query, table, rows, exprContext(table));
        txn.cursors.set(name, { rel: table !== null && this.state.catalog.tableByOid(table.oid) !== undefined ? table.oid : null, columns: result.columns, rows: result.rows, position: 0 });
        return commandOnly('DECLARE CURSOR');
      }
      case 'FetchStmt': {
        const name = node['portalname'] as string;
        const cursor = txn.cursors.get(name);
        if (cursor === undefined) throw new PgError({ code: SqlState.InvalidCursorName, message: `cursor "${name}" does not exist` });
        if ((node['direction'] ?? 'FETCH_FORWARD') !== 'FETCH_FORWARD') throw notSupported('FETCH in that direction');
        const howMany = (node['howMany'] as number | undefined) ?? 1;
        const rows = cursor.rows.slice(cursor.position, cursor.position + howMany);
        cursor.position += rows.length;
        if (node['ismove'] === true) return { command: 'MOVE', rowCount: rows.length, columns: [], rows: [] };
        return { command: 'FETCH', rowCount: rows.length, columns: cursor.columns, rows };
      }
      case 'ClosePortalStmt': {
        const name = node['portalname'] as string | undefined;
        if (name === undefined) txn.cursors.clear();
        else if (!txn.cursors.delete(name)) throw new PgError({ code: SqlState.InvalidCursorName, message: `cursor "${name}" does not exist` });
        return commandOnly('CLOSE CURSOR');
      }
      case 'LockStmt': {
        if (!txn.explicit) throw new PgError({ code: SqlState.NoActiveSqlTransaction, message: 'LOCK TABLE can only be used in transaction blocks' });
        const mode = (node['mode'] as number | undefined) ?? LockMode.AccessExclusive;
        for (const relation of (node['relations'] as Node[]) ?? []) {
          const body = unwrap(relation)[1];
          const def = this.state.catalog.table(body['relname'] as string, this.db, snapshot, own, this.state.clog);
          if (def === undefined) throw new PgError({ code: SqlState.UndefinedTable, message: `relation "${String(body['relname'])}" does not exist` });
          this.lock(session, txn, def, mode, node['nowait'] === true);
        }
        return commandOnly('LOCK TABLE');
      }
      case 'CreateStmt':
        return this.createTable(txn, node, own);
      case 'DropStmt':
        return this.dropTables(txn, node, snapshot, own);
      case 'VacuumStmt':
        return this.vacuum(txn, node, snapshot, own);
      case 'CreateSeqStmt':
        return this.createSequence(txn, node, own);
      case 'CreatedbStmt':
      case 'DropdbStmt':
      case 'CreateTableSpaceStmt':
      case 'DropTableSpaceStmt':
        return this.databaseOrTablespace(txn, stmt.kind, node, snapshot, own);
      case 'CreateRoleStmt':
        return createRole(node, roles());
      case 'AlterRoleStmt':
        return alterRole(node, roles());
      case 'DropRoleStmt':
        return dropRoles(node, roles());
      default:
        throw notSupported(stmt.kind.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase());
    }
  }

  /** What a SELECT reads: nothing, one table's visible rows, or generate_series(). */
  private source(node: Node, lookup: (relation: Node) => TableDef, snapshot: Snapshot, own: OwnTransaction, ctx: ExprContext): [TableDef | null, () => (readonly Datum[])[]] {
    const from = (node['fromClause'] as Node[] | undefined) ?? [];
    if (from.length > 1) throw notSupported('a FROM clause with more than one table');
    if (node['valuesLists'] !== undefined) throw notSupported('VALUES as a query');
    if (from.length === 0) return [null, () => [[]]];
    const [kind, body] = unwrap(from[0]!);
    if (kind === 'RangeVar') {
      const view = this.catalogView(body, snapshot, own);
      if (view !== null) return view;
      const table = lookup(body);
      return [table, () => {
        const rows: (readonly Datum[])[] = [];
        for (const [, tuple] of this.state.heap(table.oid).scan()) if (isVisible(tuple, snapshot, own, this.state.clog)) rows.push(tuple.values);
        return rows;
      }];
    }
    if (kind === 'RangeFunction') return rangeFunction(body, ctx);
    throw notSupported(`FROM ${kind}`);
  }

  /**
   * A system view — pg_roles, or one the server serves — found before any table, as
   * PostgreSQL searches pg_catalog first. Every system view's name starts with pg_, so the
   * server is asked for no other name.
   */
  private catalogView(relation: Node, snapshot: Snapshot, own: OwnTransaction): [TableDef, () => (readonly Datum[])[]] | null {
    const schema = relation['schemaname'] as string | undefined;
    const name = relation['relname'] as string;
    if ((schema !== undefined && schema !== 'pg_catalog') || !name.startsWith('pg_')) return null;
    if (name === 'pg_roles') return [virtualTable(name, PG_ROLES_COLUMNS), () => pgRolesRows(this.state, snapshot, own)];
    if (name === 'pg_stat_user_tables') return [virtualTable(name, PG_STAT_USER_TABLES_COLUMNS), () => this.userTableStats(snapshot, own)];
    const view = this.system.view(name);
    if (view === undefined) return null;
    return [virtualTable(name, view.columns), () => [...view.rows]];
  }

  /**
   * pg_stat_user_tables, in part: live and dead row versions of each table of this database,
   * counted exactly (PostgreSQL's are estimates). Dead: deleted or updated by a committed
   * transaction, or inserted by an aborted one, and not yet removed by VACUUM.
   */
  private userTableStats(snapshot: Snapshot, own: OwnTransaction): Datum[][] {
    const clog = this.state.clog;
    return this.state.catalog.tables
      .filter((t) => t.database === this.db && isVisible(t, snapshot, own, clog))
      .map((t) => {
        let live = 0;
        let dead = 0;
        for (const [, tuple] of this.state.heap(t.oid).scan()) {
          if (clog.isAborted(tuple.xmin) || (tuple.xmax !== InvalidXid && clog.isCommitted(tuple.xmax))) dead++;
          else if (isVisible(tuple, snapshot, own, clog)) live++;
        }
        return [t.oid, 'public', t.name, live, dead];
      });
  }

  /** CREATE TABLE ... AS SELECT: a new table with the query's columns, filled with its rows. */
  private createTableAs(
    txn: Transaction, node: Node, lookup: (relation: Node) => TableDef, snapshot: Snapshot, own: OwnTransaction,
    exprContext: (table: TableDef | null) => ExprContext,
  ): QueryResult {
    const into = node['into'] as Node;
    const name = (into['rel'] as Node)['relname'] as string;
    if (this.nameTaken(name, own)) {
      throw new PgError({ code: SqlState.DuplicateTable, message: `relation "${name}" already exists` });
    }
    const query = unwrap(node['query'] as Node)[1];
    const [source, rows] = this.source(query, lookup, snapshot, own, exprContext(null));
    const { columns, values } = selectValues(query, source, rows, exprContext(source));
    const names = ((into['colNames'] as Node[] | undefined) ?? []).map((n) => unwrap(n)[1]['sval'] as string);
    const xid = this.assignXid(txn);
    const def: TableDef = {
      oid: this.state.assignOid(), name, database: this.db, tablespace: DEFAULT_TABLESPACE,
      columns: columns.map((c, i) => ({ name: names[i] ?? c.name, type: c.type === 'unknown' ? 'text' : c.type, notNull: false, default: null })),
      primaryKey: null, primaryKeyName: null, xmin: xid, cmin: txn.commandId, xmax: InvalidXid, cmax: 0,
    };
    this.log(rec.createTable(xid, { def }));
    const heap = this.state.heap(def.oid);
    for (const row of values) {
      this.log(rec.heapInsert(xid, { rel: def.oid, ctid: heap.freeSlot(), cid: txn.commandId, values: row.map((v, i) => coerce(v, def.columns[i]!.type)) }));
    }
    return { command: 'SELECT', rowCount: values.length, columns: [], rows: [] };
  }

  /** Is a relation name taken in this database (tables and sequences share one namespace)? */
  private nameTaken(name: string, own: OwnTransaction): boolean {
    const versions = [...this.state.catalog.tables, ...this.state.catalog.sequences].filter((v) => v.name === name && v.database === this.db);
    return nameHeld(versions, own, this.state.clog, this.procarray);
  }

  private createTable(txn: Transaction, node: Node, own: OwnTransaction): QueryResult {
    const relation = node['relation'] as Node;
    const name = relation['relname'] as string;
    if (this.nameTaken(name, own)) {
      if (node['if_not_exists'] === true) return commandOnly('CREATE TABLE');
      throw new PgError({ code: SqlState.DuplicateTable, message: `relation "${name}" already exists` });
    }
    const columns: ColumnDef[] = [];
    const serials: string[] = [];
    let primaryKey: number[] | null = null;
    for (const element of (node['tableElts'] as Node[] | undefined) ?? []) {
      const [kind, body] = unwrap(element);
      if (kind === 'Constraint' && body['contype'] === 'CONSTR_PRIMARY') {
        primaryKey = ((body['keys'] as Node[]) ?? []).map((k) => {
          const key = unwrap(k)[1]['sval'] as string;
          const index = columns.findIndex((c) => c.name === key);
          if (index < 0) throw new PgError({ code: SqlState.UndefinedColumn, message: `column "${key}" named in key does not exist` });
          return index;
        });
        continue;
      }
      if (kind !== 'ColumnDef') throw notSupported(`table element ${kind}`);
      const colname = body['colname'] as string;
      if (columns.some((c) => c.name === colname)) throw new PgError({ code: SqlState.DuplicateColumn, message: `column "${colname}" specified more than once` });
      const typeNames = ((body['typeName'] as Node)['names'] as Node[]).map((n) => unwrap(n)[1]['sval'] as string);
      const typeName = typeNames.at(-1)!;
      const type = typeFromName(typeName);
      if (type === null) throw new PgError({ code: SqlState.UndefinedObject, message: `type "${typeNames.at(-1)}" does not exist` });
      let notNull = false;
      let defaultValue: ColumnDef['default'] = null;
      for (const c of (body['constraints'] as Node[] | undefined) ?? []) {
        const constraint = unwrap(c)[1];
        switch (constraint['contype']) {
          case 'CONSTR_NOTNULL': notNull = true; break;
          case 'CONSTR_NULL': break;
          case 'CONSTR_PRIMARY': primaryKey = [columns.length]; notNull = true; break;
          case 'CONSTR_DEFAULT': {
            const [ekind, ebody] = unwrap(constraint['raw_expr'] as Node);
            if (ekind !== 'A_Const') throw notSupported('a DEFAULT that is not a constant');
            defaultValue = { kind: 'const', value: constValue(ebody) };
            break;
          }
          default: throw notSupported(`column constraint ${String(constraint['contype'])}`);
        }
      }
      if (['serial', 'serial4', 'bigserial', 'serial8'].includes(typeName)) {
        // serial: an owned sequence, named as PostgreSQL names it, feeds the default.
        serials.push(colname);
        notNull = true;
        defaultValue = { kind: 'nextval', sequence: `${name}_${colname}_seq` };
      }
      columns.push({ name: colname, type, notNull, default: defaultValue });
    }
    if (primaryKey !== null) for (const i of primaryKey) columns[i] = { ...columns[i]!, notNull: true };
    let tablespace = DEFAULT_TABLESPACE;
    if (node['tablespacename'] !== undefined) {
      const ts = this.state.catalog.tablespace(node['tablespacename'] as string, takeSnapshot(this.procarray.xids(), this.state.clog.nextXid), own, this.state.clog);
      if (ts === undefined) throw new PgError({ code: SqlState.UndefinedObject, message: `tablespace "${String(node['tablespacename'])}" does not exist` });
      tablespace = ts.oid;
    }
    const xid = this.assignXid(txn);
    const def: TableDef = {
      oid: this.state.assignOid(), name, database: this.db, tablespace, columns,
      primaryKey, primaryKeyName: primaryKey === null ? null : `${name}_pkey`, xmin: xid, cmin: txn.commandId, xmax: InvalidXid, cmax: 0,
    };
    this.log(rec.createTable(xid, { def }));
    for (const column of serials) {
      const seq = `${name}_${column}_seq`;
      if (this.nameTaken(seq, own)) throw new PgError({ code: SqlState.DuplicateTable, message: `relation "${seq}" already exists` });
      this.log(rec.createSequence(xid, {
        def: { oid: this.state.assignOid(), name: seq, database: this.db, increment: 1, minValue: 1, maxValue: Number.MAX_SAFE_INTEGER, start: 1, xmin: xid, cmin: txn.commandId, xmax: InvalidXid, cmax: 0 },
      }));
    }
    return commandOnly('CREATE TABLE');
  }

  private dropTables(txn: Transaction, node: Node, snapshot: Snapshot, own: OwnTransaction): QueryResult {
    if (node['removeType'] !== 'OBJECT_TABLE') throw notSupported(`DROP ${String(node['removeType']).replace('OBJECT_', '')}`);
    for (const object of (node['objects'] as Node[]) ?? []) {
      const names = ((unwrap(object)[1]['items'] as Node[]) ?? []).map((n) => unwrap(n)[1]['sval'] as string);
      const name = names.at(-1)!;
      const def = this.state.catalog.table(name, this.db, snapshot, own, this.state.clog);
      if (def === undefined) {
        if (node['missing_ok'] === true) continue;
        throw new PgError({ code: SqlState.UndefinedTable, message: `table "${name}" does not exist` });
      }
      this.lock(txn.session, txn, def, LockMode.AccessExclusive, false);
      if (def.xmax !== InvalidXid && !own.xids.has(def.xmax) && this.procarray.has(def.xmax)) throw new RowConflict(def.xmax);
      this.log(rec.dropTable(this.assignXid(txn), { oid: def.oid, cid: txn.commandId }));
    }
    return commandOnly('DROP TABLE');
  }

  /**
   * VACUUM: removes row versions dead to every snapshot that may still look at them and logs
   * the newest xid it removed (a standby replaying it cancels queries that might still need
   * those rows). Not inside a transaction block, as in PostgreSQL.
   */
  private vacuum(txn: Transaction, node: Node, snapshot: Snapshot, own: OwnTransaction): QueryResult {
    if (txn.explicit) throw new PgError({ code: SqlState.ActiveSqlTransaction, message: 'VACUUM cannot run inside a transaction block' });
    if (node['is_vacuumcmd'] !== true) return commandOnly('ANALYZE');
    const named = ((node['rels'] as Node[] | undefined) ?? []).map((r) => {
      const relation = unwrap(r)[1]['relation'] as Node;
      const name = relation['relname'] as string;
      const def = this.state.catalog.table(name, this.db, snapshot, own, this.state.clog);
      if (def === undefined) throw new PgError({ code: SqlState.UndefinedTable, message: `relation "${name}" does not exist` });
      return def;
    });
    const tables = named.length > 0 ? named : this.state.catalog.tables.filter((t) => isVisible(t, snapshot, own, this.state.clog));
    for (const table of tables) this.lock(txn.session, txn, table, LockMode.ShareUpdateExclusive, false);
    const horizon = this.oldestXmin();
    const freeze = ((node['options'] as Node[] | undefined) ?? []).some((o) => unwrap(o)[1]['defname'] === 'freeze');
    for (const table of tables) {
      const dead: Ctid[] = [];
      let latestRemovedXid: Xid = InvalidXid;
      for (const [ctid, tuple] of this.state.heap(table.oid).scan()) {
        if (!isDeadToAll(tuple, horizon, this.state.clog)) continue;
        dead.push(ctid);
        const removed = this.state.clog.isAborted(tuple.xmin) ? tuple.xmin : tuple.xmax;
        if (removed > latestRemovedXid) latestRemovedXid = removed;
      }
      if (dead.length > 0) this.log(rec.vacuum({ rel: table.oid, ctids: dead, latestRemovedXid }));
      if (freeze) {
        // FREEZE: versions whose inserter committed before every snapshot need no clog lookup again.
        const frozen: Ctid[] = [];
        for (const [ctid, tuple] of this.state.heap(table.oid).scan()) {
          if (tuple.xmin >= FirstNormalXid && tuple.xmin < horizon && this.state.clog.isCommitted(tuple.xmin)) frozen.push(ctid);
        }
        if (frozen.length > 0) this.log(rec.freeze({ rel: table.oid, ctids: frozen, cutoffXid: horizon }));
      }
    }
    return commandOnly('VACUUM');
  }

  private createSequence(txn: Transaction, node: Node, own: OwnTransaction): QueryResult {
    const name = (node['sequence'] as Node)['relname'] as string;
    if (this.nameTaken(name, own)) {
      if (node['if_not_exists'] === true) return commandOnly('CREATE SEQUENCE');
      throw new PgError({ code: SqlState.DuplicateTable, message: `relation "${name}" already exists` });
    }
    const option = (wanted: string): number | undefined => {
      for (const o of (node['options'] as Node[] | undefined) ?? []) {
        const def = unwrap(o)[1];
        if (def['defname'] !== wanted) continue;
        const [kind, body] = unwrap(def['arg'] as Node);
        if (kind === 'Integer') return (body['ival'] as number | undefined) ?? 0;
        if (kind === 'Float') return Number(body['fval']);
        return Number(constValue(body));
      }
      return undefined;
    };
    const increment = option('increment') ?? 1;
    if (increment === 0) throw new PgError({ code: SqlState.InvalidParameterValue, message: 'INCREMENT must not be zero' });
    const minValue = option('minvalue') ?? (increment > 0 ? 1 : -Number.MAX_SAFE_INTEGER);
    const maxValue = option('maxvalue') ?? (increment > 0 ? Number.MAX_SAFE_INTEGER : -1);
    const start = option('start') ?? (increment > 0 ? minValue : maxValue);
    const xid = this.assignXid(txn);
    this.log(rec.createSequence(xid, {
      def: { oid: this.state.assignOid(), name, database: this.db, increment, minValue, maxValue, start, xmin: xid, cmin: txn.commandId, xmax: InvalidXid, cmax: 0 },
    }));
    return commandOnly('CREATE SEQUENCE');
  }

  /**
   * nextval / currval / setval. Sequences are not transactional: a value handed out stays
   * handed out whatever happens to the transaction. nextval logs SEQ_LOG_VALS values ahead
   * of what it hands out (one WAL record per 32 calls), so after a crash a sequence skips
   * values but never repeats one.
   */
  private sequenceFunctions(session: string, snapshot: Snapshot, own: OwnTransaction, readOnly: boolean): Pick<ScalarFunctions, 'nextval' | 'currval' | 'setval'> {
    const find = (name: string): { def: SequenceDef; q: SequenceState } => {
      const def = this.state.catalog.sequence(name, this.db, snapshot, own, this.state.clog);
      if (def === undefined) throw new PgError({ code: SqlState.UndefinedTable, message: `relation "${name}" does not exist` });
      return { def, q: this.state.sequences.get(def.oid)! };
    };
    /** The sequence, if this transaction may change it. */
    const findWritable = (name: string, fn: 'nextval()' | 'setval()'): { def: SequenceDef; q: SequenceState } => {
      const found = find(name);
      if (readOnly) throw readOnlyTransactionError(fn);
      return found;
    };
    const remember = (oid: number, value: number): void => {
      const mine = this.currvals.get(session) ?? new Map<number, number>();
      mine.set(oid, value);
      this.currvals.set(session, mine);
    };
    return {
      nextval: (name) => {
        const { def, q } = findWritable(name, 'nextval()');
        const next = q.isCalled ? q.lastValue + def.increment : q.lastValue;
        if (next > def.maxValue || next < def.minValue) {
          const which = def.increment > 0 ? `maximum value of sequence "${name}" (${def.maxValue})` : `minimum value of sequence "${name}" (${def.minValue})`;
          throw new PgError({ code: SqlState.SequenceGeneratorLimitExceeded, message: `nextval: reached ${which}` });
        }
        if (q.logged === 0) {
          const ahead = Math.max(def.minValue, Math.min(def.maxValue, next + def.increment * SEQ_LOG_VALS));
          // Logged, not replayed here: WAL says "ahead", memory says "next" (PostgreSQL does the same).
          this.records.push(rec.sequenceLog({ rel: def.oid, lastValue: ahead, isCalled: true }));
          q.logged = SEQ_LOG_VALS;
          q.loggedUpTo = ahead;
        }
        q.logged--;
        q.lastValue = next;
        q.isCalled = true;
        remember(def.oid, next);
        return next;
      },
      currval: (name) => {
        const { def } = find(name);
        const value = this.currvals.get(session)?.get(def.oid);
        if (value === undefined) throw new PgError({ code: SqlState.ObjectNotInPrerequisiteState, message: `currval of sequence "${name}" is not yet defined in this session` });
        return value;
      },
      setval: (name, value, isCalled) => {
        const { def } = findWritable(name, 'setval()');
        if (value < def.minValue || value > def.maxValue) {
          throw new PgError({ code: SqlState.NumericValueOutOfRange, message: `setval: value ${value} is out of bounds for sequence "${name}" (${def.minValue}..${def.maxValue})` });
        }
        this.log(rec.sequenceLog({ rel: def.oid, lastValue: value, isCalled }));
        this.state.sequences.get(def.oid)!.loggedUpTo = value;
        if (isCalled) remember(def.oid, value);
        return value;
      },
    };
  }

  /**
   * Takes a table lock for the session's transaction, or throws LockConflict (wait) / 55P03
   * (NOWAIT). A new ACCESS EXCLUSIVE lock is WAL-logged with the transaction's xid, for hot
   * standbys to take while they replay.
   */
  private lock(session: string, txn: Transaction, def: TableDef, mode: number, nowait: boolean): void {
    const already = this.locks.holds(def.oid, mode, session);
    const holder = this.locks.acquire(def.oid, mode, session);
    if (holder !== null) {
      if (nowait) throw new PgError({ code: SqlState.LockNotAvailable, message: `could not obtain lock on relation "${def.name}"` });
      throw new LockConflict(holder);
    }
    if (mode === LockMode.AccessExclusive && !already) {
      this.log(rec.accessExclusiveLocks({ locks: [{ xid: this.assignXid(txn), database: def.database, rel: def.oid }] }));
    }
  }

  /** CREATE / DROP DATABASE and TABLESPACE: catalog entries, WAL-logged, never inside BEGIN. */
  private databaseOrTablespace(txn: Transaction, kind: string, node: Node, snapshot: Snapshot, own: OwnTransaction): QueryResult {
    const command = { CreatedbStmt: 'CREATE DATABASE', DropdbStmt: 'DROP DATABASE', CreateTableSpaceStmt: 'CREATE TABLESPACE', DropTableSpaceStmt: 'DROP TABLESPACE' }[kind]!;
    if (txn.explicit) throw new PgError({ code: SqlState.ActiveSqlTransaction, message: `${command} cannot run inside a transaction block` });
    const clog = this.state.clog;
    if (kind === 'CreatedbStmt') {
      const name = node['dbname'] as string;
      if (this.state.catalog.databases.some((d) => d.name === name && !clog.isAborted(d.xmin) && (d.xmax === InvalidXid || clog.isAborted(d.xmax)))) {
        throw new PgError({ code: SqlState.DuplicateDatabase, message: `database "${name}" already exists` });
      }
      const xid = this.assignXid(txn);
      this.log(rec.createDatabase(xid, { def: { oid: this.state.assignOid(), name, xmin: xid, cmin: txn.commandId, xmax: InvalidXid, cmax: 0 } }));
    } else if (kind === 'DropdbStmt') {
      const name = node['dbname'] as string;
      const def = this.state.catalog.database(name, snapshot, own, clog);
      if (def === undefined) {
        if (node['missing_ok'] === true) return commandOnly(command);
        throw new PgError({ code: SqlState.InvalidCatalogName, message: `database "${name}" does not exist` });
      }
      if (def.oid === this.db) throw new PgError({ code: SqlState.ObjectInUse, message: 'cannot drop the currently open database' });
      this.log(rec.dropDatabase(this.assignXid(txn), { oid: def.oid, cid: txn.commandId }));
    } else if (kind === 'CreateTableSpaceStmt') {
      const name = node['tablespacename'] as string;
      if (this.state.catalog.tablespaces.some((t) => t.name === name && !clog.isAborted(t.xmin) && (t.xmax === InvalidXid || clog.isAborted(t.xmax)))) {
        throw new PgError({ code: SqlState.DuplicateObject, message: `tablespace "${name}" already exists` });
      }
      const xid = this.assignXid(txn);
      this.log(rec.createTablespace(xid, { def: { oid: this.state.assignOid(), name, location: (node['location'] as string | undefined) ?? '', xmin: xid, cmin: txn.commandId, xmax: InvalidXid, cmax: 0 } }));
    } else {
      const name = node['tablespacename'] as string;
      const def = this.state.catalog.tablespace(name, snapshot, own, clog);
      if (def === undefined) {
        if (node['missing_ok'] === true) return commandOnly(command);
        throw new PgError({ code: SqlState.UndefinedObject, message: `tablespace "${name}" does not exist` });
      }
      if (this.state.catalog.tables.some((t) => t.tablespace === def.oid && isVisible(t, snapshot, own, clog))) {
        throw new PgError({ code: SqlState.ObjectNotInPrerequisiteState, message: `tablespace "${name}" is not empty` });
      }
      this.log(rec.dropTablespace(this.assignXid(txn), { oid: def.oid, cid: txn.commandId }));
    }
    return commandOnly(command);
  }

  /** pg_locks, for tests and tools: relation names, sessions and modes held. */
  lockRows(): { relation: string; session: string; mode: string }[] {
    return this.locks.rows().map((r) => ({ relation: this.state.catalog.tableByOid(r.rel)?.name ?? String(r.rel), session: r.session, mode: r.mode }));
  }

  /**
   * The oldest xmin the server's standbys need (their hot_standby_feedback, kept by their
   * slots while they are away), as shmem knows it; null: none.
   */
  replicationXmin: () => Xid | null = () => null;
  /** vacuum_defer_cleanup_age: VACUUM's horizon held back by this many transactions. */
  vacuumDeferCleanupAge = 0;

  /** The oldest xid any snapshot here may still consider running (what a standby feeds back upstream). */
  localXmin(): Xid {
    let oldest = this.state.clog.nextXid;
    for (const xid of this.procarray.xids()) if (xid < oldest) oldest = xid;
    for (const txn of this.sessions.values()) if (txn.snapshot !== null && txn.snapshot.xmin < oldest) oldest = txn.snapshot.xmin;
    return oldest;
  }

  /** VACUUM's horizon: this server's snapshots, its standbys', and vacuum_defer_cleanup_age. */
  private oldestXmin(): Xid {
    let oldest = this.localXmin();
    const standbys = this.replicationXmin();
    if (standbys !== null && standbys >= FirstNormalXid && standbys < oldest) oldest = standbys;
    return Math.max(FirstNormalXid, oldest - this.vacuumDeferCleanupAge);
  }

  /** The xid this transaction writes with now: the innermost savepoint's, else the top one's. */
  private assignXid(txn: Transaction): Xid {
    assert(!this.inRecovery, 'no xid is assigned during recovery: every statement that would need one is refused first');
    if (txn.xid === InvalidXid) {
      txn.xid = this.state.clog.assign();
      this.procarray.add(txn.xid);
      this.xidOwner.set(txn.xid, txn.session);
    }
    const inner = txn.savepoints.at(-1);
    if (inner === undefined) return txn.xid;
    if (inner.xid === InvalidXid) {
      inner.xid = this.state.clog.assign();
      this.procarray.add(inner.xid);
      this.xidOwner.set(inner.xid, txn.session);
    }
    return inner.xid;
  }

  private log(record: WalRecordInput): void {
    redo(this.state, record);
    this.records.push(record);
  }

  /**
   * Logs the commit; its xids leave the procarray, and its locks are released, later, in
   * finishCommit. Null if nothing was written (the locks go at once).
   */
  private commit(session: string, txn: Transaction): Xid | null {
    if (txn.xid === InvalidXid) {
      this.locks.releaseAll(session);
      return null;
    }
    const subxids = liveXids(txn).filter((x) => x !== txn.xid);
    this.log(rec.commit(txn.xid, { subxids, time: txn.startedAt }));
    this.committing.set(txn.xid, { subxids, session });
    return txn.xid;
  }

  private abort(session: string, txn: Transaction): void {
    this.locks.releaseAll(session);
    if (txn.xid === InvalidXid) return;
    const subxids = liveXids(txn).filter((x) => x !== txn.xid);
    this.log(rec.abort(txn.xid, { subxids, time: txn.startedAt }));
    this.forgetXids([txn.xid, ...subxids]);
  }

  private fail(error: PgError): Outcome {
    return { kind: 'error', error, records: this.records };
  }

  private failTransaction(session: string, txn: Transaction, error: PgError): Outcome {
    if (txn.explicit) {
      txn.failed = true;
      this.sessions.set(session, txn);
    } else {
      this.abort(session, txn);
    }
    return this.fail(error);
  }

  /**
   * A statement that must wait changed nothing. An implicit transaction that wrote nothing
   * is dropped (with any lock it took), otherwise kept for the retry.
   */
  private discardIfImplicit(session: string, txn: Transaction): void {
    if (!txn.explicit && txn.xid === InvalidXid) {
      this.sessions.delete(session);
      this.locks.releaseAll(session);
    } else if (!txn.explicit) {
      this.sessions.set(session, txn);
    }
  }
}

const PG_STAT_USER_TABLES_COLUMNS: readonly { readonly name: string; readonly type: TypeName }[] = [
  { name: 'relid', type: 'int4' }, { name: 'schemaname', type: 'text' }, { name: 'relname', type: 'text' },
  { name: 'n_live_tup', type: 'int8' }, { name: 'n_dead_tup', type: 'int8' },
];

/** Replayed ACCESS EXCLUSIVE locks are held in the lock table under this name and the xid. */
const RECOVERY_LOCK_PREFIX = 'startup:';
function recoveryLockHolder(xid: Xid): string {
  return `${RECOVERY_LOCK_PREFIX}${xid}`;
}

/** pg_current_wal_lsn() and the other WAL control functions on a standby. */
function recoveryInProgress(): PgError {
  return new PgError({ code: SqlState.ObjectNotInPrerequisiteState, message: 'recovery is in progress', hint: 'WAL control functions cannot be executed during recovery.' });
}

function isolationOption(node: Node): Isolation | null {
  for (const option of (node['options'] as Node[] | undefined) ?? []) {
    const def = unwrap(option)[1];
    if (def['defname'] === 'transaction_isolation') {
      const value = constValue(unwrap(def['arg'] as Node)[1]);
      if (value === 'read committed' || value === 'repeatable read' || value === 'serializable') return value;
      if (value === 'read uncommitted') return 'read committed';
    }
  }
  return null;
}
