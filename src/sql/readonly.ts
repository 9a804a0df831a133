/*
 * readonly.ts — what a read-only transaction and a hot standby refuse, in PostgreSQL's words.
 *
 * A transaction is read-only when it began with BEGIN READ ONLY, or under
 * default_transaction_read_only, or on a server in recovery (a hot standby), where every
 * transaction is read-only and none may become read-write. PostgreSQL sorts utility
 * commands three ways (ClassifyUtilityCommandAsReadOnly in tcop/utility.c), and this module
 * keeps its sorting for the commands walship knows:
 *
 *   strictly read-only   SELECT, cursors, BEGIN/COMMIT/ROLLBACK, SAVEPOINT, weak LOCKs: run anywhere.
 *   fine when read-only  VACUUM, ANALYZE, REINDEX, CLUSTER, LOCK above ROW EXCLUSIVE, LISTEN,
 *                        NOTIFY: refused only in recovery, "cannot execute VACUUM during
 *                        recovery".
 *   writes               INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, roles, databases:
 *                        "cannot execute INSERT in a read-only transaction".
 *
 * Both errors are 25006. Utility commands are checked before anything else about them (a
 * CREATE TABLE of a name that exists still gets the read-only error); INSERT, UPDATE and
 * DELETE after their table is looked up, as PostgreSQL's executor checks them. Functions
 * that write (nextval, setval) or need an xid or the WAL insert position in recovery check
 * themselves, in the engine, with the texts below.
 */
import { PgError, SqlState } from '../errors.js';
import { LockMode } from '../storage/locks.js';
import { unwrap, type Node } from './expr.js';

/** DDL whose command tag is fixed. */
const WRITING_UTILITIES: Readonly<Record<string, string>> = {
  CreateStmt: 'CREATE TABLE',
  CreateSeqStmt: 'CREATE SEQUENCE',
  AlterSeqStmt: 'ALTER SEQUENCE',
  CreatedbStmt: 'CREATE DATABASE',
  DropdbStmt: 'DROP DATABASE',
  CreateTableSpaceStmt: 'CREATE TABLESPACE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  CreateRoleStmt: 'CREATE ROLE',
  AlterRoleStmt: 'ALTER ROLE',
  DropRoleStmt: 'DROP ROLE',
  IndexStmt: 'CREATE INDEX',
  ViewStmt: 'CREATE VIEW',
  CreateSchemaStmt: 'CREATE SCHEMA',
  TruncateStmt: 'TRUNCATE TABLE',
  CommentStmt: 'COMMENT',
};

/** PostgreSQL's command tag for a writing utility statement, or null if it does not write. */
function writingTag(kind: string, node: Node): string | null {
  const fixed = WRITING_UTILITIES[kind];
  if (fixed !== undefined) return fixed;
  switch (kind) {
    case 'CreateTableAsStmt':
      return node['is_select_into'] === true ? 'SELECT INTO' : 'CREATE TABLE AS';
    case 'SelectStmt':
      // The parser's SELECT ... INTO is CREATE TABLE AS by the time PostgreSQL checks it.
      return node['intoClause'] !== undefined ? 'SELECT INTO' : null;
    case 'DropStmt':
      return `DROP ${objectWord(node['removeType'])}`;
    case 'AlterTableStmt':
      return `ALTER ${objectWord(node['objtype'])}`;
    case 'GrantStmt':
      return node['is_grant'] === true ? 'GRANT' : 'REVOKE';
    default:
      return null;
  }
}

/** OBJECT_TABLE -> TABLE, OBJECT_MATVIEW stays as PostgreSQL spells it elsewhere. */
function objectWord(objectType: unknown): string {
  const word = String(objectType ?? 'OBJECT_TABLE').replace(/^OBJECT_/, '');
  return word === 'MATVIEW' ? 'MATERIALIZED VIEW' : word.replace(/_/g, ' ');
}

/** Utility commands allowed in a read-only transaction but not during recovery, with their tags. */
function recoveryRefusedTag(kind: string, node: Node): string | null {
  switch (kind) {
    case 'VacuumStmt':
      return node['is_vacuumcmd'] === true ? 'VACUUM' : 'ANALYZE';
    case 'LockStmt':
      // Only the modes a standby can take without WAL: up to ROW EXCLUSIVE (LockAcquireExtended).
      return ((node['mode'] as number | undefined) ?? LockMode.AccessExclusive) > LockMode.RowExclusive ? 'LOCK TABLE' : null;
    case 'ReindexStmt':
      return 'REINDEX';
    case 'ClusterStmt':
      return 'CLUSTER';
    case 'ListenStmt':
      return 'LISTEN';
    case 'NotifyStmt':
      return 'NOTIFY';
    default:
      return null;
  }
}

export function readOnlyTransactionError(tag: string): PgError {
  return new PgError({ code: SqlState.ReadOnlySqlTransaction, message: `cannot execute ${tag} in a read-only transaction` });
}

export function duringRecoveryError(tag: string): PgError {
  return new PgError({ code: SqlState.ReadOnlySqlTransaction, message: `cannot execute ${tag} during recovery` });
}

/** PostgreSQL's check at the top of ProcessUtility: throws if this utility statement may not run. */
export function checkUtility(kind: string, node: Node, readOnly: boolean, inRecovery: boolean): void {
  if (!readOnly && !inRecovery) return;
  const writes = writingTag(kind, node);
  if (writes !== null) throw readOnlyTransactionError(writes);
  const refused = inRecovery ? recoveryRefusedTag(kind, node) : null;
  if (refused !== null) throw duringRecoveryError(refused);
}

/** The executor's check of INSERT / UPDATE / DELETE and SELECT ... FOR UPDATE/SHARE. */
export function checkQuery(kind: string, node: Node, readOnly: boolean): void {
  if (!readOnly) return;
  switch (kind) {
    case 'InsertStmt': throw readOnlyTransactionError('INSERT');
    case 'UpdateStmt': throw readOnlyTransactionError('UPDATE');
    case 'DeleteStmt': throw readOnlyTransactionError('DELETE');
    case 'SelectStmt': {
      const locking = (node['lockingClause'] as Node[] | undefined) ?? [];
      if (locking.length > 0) throw readOnlyTransactionError(`SELECT ${rowLockWords(unwrap(locking[0]!)[1]['strength'])}`);
      return;
    }
    default:
      return;
  }
}

function rowLockWords(strength: unknown): string {
  switch (strength) {
    case 'LCS_FORKEYSHARE': return 'FOR KEY SHARE';
    case 'LCS_FORSHARE': return 'FOR SHARE';
    case 'LCS_FORNOKEYUPDATE': return 'FOR NO KEY UPDATE';
    default: return 'FOR UPDATE';
  }
}

/**
 * The transaction_read_only option of BEGIN / START TRANSACTION: true for READ ONLY, false
 * for READ WRITE, null when not given.
 */
export function readOnlyOption(node: Node): boolean | null {
  for (const option of (node['options'] as Node[] | undefined) ?? []) {
    const def = unwrap(option)[1];
    if (def['defname'] !== 'transaction_read_only') continue;
    const constant = unwrap(def['arg'] as Node)[1];
    return ((constant['ival'] as Node | undefined)?.['ival'] ?? 0) !== 0;
  }
  return null;
}

/** check_transaction_read_only: a transaction started in recovery can never be read-write. */
export function readWriteDuringRecoveryError(): PgError {
  return new PgError({ code: SqlState.FeatureNotSupported, message: 'cannot set transaction read-write mode during recovery' });
}
