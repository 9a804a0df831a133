/*
 * detect.ts — which standby sessions stand in the way of the record replay is about to apply.
 *
 * PostgreSQL's startup process checks, before it redoes certain records, whether a hot
 * standby's sessions would see something they must not (ResolveRecoveryConflictWith*):
 *
 *   Standby LOCK (an ACCESS EXCLUSIVE lock: LOCK, DROP TABLE, other DDL) — sessions holding
 *     any lock on that table (`lock`);
 *   Heap2 VACUUM (dead rows removed) and FREEZE — sessions whose snapshot is old enough to
 *     still see what goes (`snapshot`): xmin at or before the newest removed xmax; then,
 *     VACUUM needing a cleanup lock, sessions with a cursor open on the table (`bufferpin`:
 *     walship's cursors hold their rows, as a cursor positioned on a page holds its pin);
 *   DROP TABLESPACE — every session in a transaction, since any may have temporary files
 *     there (`tablespace`, as PostgreSQL cannot tell either);
 *   DROP DATABASE — every session connected to it (`database`), ended at once whatever the
 *     delay settings say.
 *
 * The functions here only find them. Waiting up to max_standby_{streaming,archive}_delay and
 * ending the sessions is shmem's (the owner of the sessions and of replay).
 */
import { Heap2Info, Rmgr, StandbyInfo, DatabaseInfo, TablespaceInfo } from '../storage/rmgr.js';
import type { AccessExclusiveLocksBody, DropObjectBody, FreezeBody, VacuumBody } from '../storage/records.js';
import type { Oid } from '../storage/catalog.js';
import type { Xid } from '../storage/clog.js';
import type { WalRecord } from '../wal/record.js';
import { PgError, SqlState } from '../errors.js';

/** pg_stat_database_conflicts' kinds (PostgreSQL 15's columns, without the confl_ prefix). */
export type ConflictKind = 'tablespace' | 'lock' | 'snapshot' | 'bufferpin' | 'deadlock' | 'database';
export const CONFLICT_KINDS: readonly ConflictKind[] = ['tablespace', 'lock', 'snapshot', 'bufferpin', 'deadlock', 'database'];

/** What replay needs to know of one standby session. */
export interface StandbySession {
  readonly session: string;
  /** The database it is connected to. */
  readonly database: Oid;
  /** It has an open transaction (PostgreSQL: a virtual xid). */
  readonly inTransaction: boolean;
  /** The xmin of the snapshot it holds (a REPEATABLE READ transaction's), if any. */
  readonly snapshotXmin: Xid | null;
  /** Tables it holds a lock on. */
  readonly lockedRelations: ReadonlySet<Oid>;
  /** Tables it has a cursor open on. */
  readonly cursorRelations: ReadonlySet<Oid>;
}

export interface Conflict {
  readonly kind: ConflictKind;
  /** The sessions in the way; never empty. */
  readonly sessions: readonly string[];
  /** The database whose counters count it (for a tablespace, each session's own). */
  readonly database: Oid | null;
}

/**
 * The conflict `record` has with `sessions`, or null. `databaseOf` names the database of a
 * table (the records carry the table only).
 */
export function findConflict(record: WalRecord, sessions: readonly StandbySession[], databaseOf: (rel: Oid) => Oid | null): Conflict | null {
  const found = (kind: ConflictKind, list: readonly StandbySession[], database: Oid | null): Conflict | null =>
    list.length === 0 ? null : { kind, sessions: list.map((s) => s.session), database };
  switch (record.rmgr) {
    case Rmgr.Standby: {
      if (record.info !== StandbyInfo.Lock) return null;
      const rels = new Set((record.body as AccessExclusiveLocksBody).locks.map((l) => l.rel));
      const first = (record.body as AccessExclusiveLocksBody).locks[0];
      return found('lock', sessions.filter((s) => [...s.lockedRelations].some((rel) => rels.has(rel))), first?.database ?? null);
    }
    case Rmgr.Heap2: {
      if (record.info === Heap2Info.Vacuum) {
        const body = record.body as VacuumBody;
        const database = databaseOf(body.rel);
        const inDb = sessions.filter((s) => database === null || s.database === database);
        return found('snapshot', inDb.filter((s) => s.snapshotXmin !== null && s.snapshotXmin <= body.latestRemovedXid), database)
          ?? found('bufferpin', inDb.filter((s) => s.cursorRelations.has(body.rel)), database);
      }
      if (record.info === Heap2Info.Freeze) {
        const body = record.body as FreezeBody;
        const database = databaseOf(body.rel);
        // Frozen rows look committed to everyone: a snapshot that started before the cutoff could tell.
        return found('snapshot', sessions.filter((s) => (database === null || s.database === database) && s.snapshotXmin !== null && s.snapshotXmin < body.cutoffXid), database);
      }
      return null;
    }
    case Rmgr.Database: {
      if (record.info !== DatabaseInfo.Drop) return null;
      const oid = (record.body as DropObjectBody).oid;
      return found('database', sessions.filter((s) => s.database === oid), oid);
    }
    case Rmgr.Tablespace: {
      if (record.info !== TablespaceInfo.Drop) return null;
      return found('tablespace', sessions.filter((s) => s.inTransaction), null);
    }
    default:
      return null;
  }
}

/** PostgreSQL's errdetail_recovery_conflict, by kind. */
const DETAIL: Readonly<Record<ConflictKind, string>> = {
  bufferpin: 'User was holding shared buffer pin for too long.',
  lock: 'User was holding a relation lock for too long.',
  tablespace: 'User was or might have been using tablespace that must be dropped.',
  snapshot: 'User query might have needed to see row versions that must be removed.',
  deadlock: 'User transaction caused buffer deadlock with recovery.',
  database: 'User was connected to a database that must be dropped.',
};

/** The kind a conflict's DETAIL names (for events); null if it names none. */
export function conflictKindOf(detail: string | undefined): ConflictKind | null {
  for (const kind of CONFLICT_KINDS) if (DETAIL[kind] === detail) return kind;
  return null;
}

/**
 * What the session hears: a running statement is cancelled (ERROR), a session idle in its
 * transaction (or any, for a dropped database) is terminated (FATAL), as ProcessInterrupts says.
 */
export function conflictError(kind: ConflictKind, terminate: boolean): PgError {
  const code = kind === 'database' ? SqlState.DatabaseDropped : SqlState.SerializationFailure;
  if (!terminate) return new PgError({ code, message: 'canceling statement due to conflict with recovery', detail: DETAIL[kind] });
  return new PgError({
    code, severity: 'FATAL', message: 'terminating connection due to conflict with recovery', detail: DETAIL[kind],
    hint: 'In a moment you should be able to reconnect to the database and repeat your command.',
  });
}
