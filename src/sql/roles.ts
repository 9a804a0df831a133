/*
 * roles.ts — CREATE ROLE / CREATE USER, ALTER ROLE and DROP ROLE: PostgreSQL's pg_authid.
 *
 * A role has the attributes walship acts on: LOGIN, REPLICATION, SUPERUSER and a password,
 * kept only as a SCRAM-SHA-256 verifier (a password given already as a verifier is stored
 * as it is, as PostgreSQL does; an empty one clears the password). Every change is a
 * catalog version logged in WAL (Authid records), so roles replicate to standbys, survive
 * crash recovery, and follow MVCC like tables: a role created in an open transaction is
 * invisible to others until it commits, and a change to a role another transaction is
 * changing waits for that transaction.
 *
 * The attributes walship does not implement (CREATEDB, CREATEROLE, INHERIT, CONNECTION
 * LIMIT, VALID UNTIL, memberships) are refused by name rather than accepted and ignored.
 * Authentication reads the latest committed version through Engine.role; pg_roles lists
 * what the statement's snapshot sees.
 */
import { randomBytes } from 'node:crypto';
import { PgError, SqlState } from '../errors.js';
import { scramVerifier } from '../replication/scram.js';
import { BOOTSTRAP_SUPERUSER, type RoleDef, type TypeName } from '../storage/catalog.js';
import { InvalidXid, type Xid } from '../storage/clog.js';
import type { Datum } from '../storage/heap.js';
import * as rec from '../storage/records.js';
import { isVisible, NO_OWN_TRANSACTION, takeSnapshot, type OwnTransaction, type Snapshot } from '../storage/snapshot.js';
import type { DatabaseState } from '../storage/state.js';
import type { WalRecordInput } from '../wal/record.js';
import { unwrap, type Node } from './expr.js';
import { nameHeld, RowConflict } from './modify.js';
import { commandOnly, type QueryResult } from './result.js';
import type { ProcArray } from './transaction.js';

/** Bytes of salt in a new verifier (PostgreSQL's SCRAM_DEFAULT_SALT_LEN). */
const SCRAM_SALT_BYTES = 16;

/** A role as authentication needs it. */
export interface RoleInfo {
  readonly name: string;
  readonly superuser: boolean;
  readonly login: boolean;
  readonly replication: boolean;
  readonly verifier: string | null;
}

export interface RoleContext {
  readonly state: DatabaseState;
  readonly snapshot: Snapshot;
  readonly own: OwnTransaction;
  readonly procarray: ProcArray;
  readonly commandId: number;
  /** Uniform in [0, 1), for salts; node:crypto's when absent. */
  readonly random: (() => number) | undefined;
  xid(): Xid;
  log(record: WalRecordInput): void;
}

/** The attributes a statement sets: only those it names. */
interface Attributes {
  superuser?: boolean;
  login?: boolean;
  replication?: boolean;
  /** A password as given (null: PASSWORD NULL). */
  password?: string | null;
}

/** Option names in the parse tree that walship refuses, with their SQL spelling. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  createdb: 'CREATEDB', createrole: 'CREATEROLE', inherit: 'INHERIT', bypassrls: 'BYPASSRLS',
  connectionlimit: 'CONNECTION LIMIT', validUntil: 'VALID UNTIL', addroleto: 'IN ROLE', rolemembers: 'ROLE',
  adminmembers: 'ADMIN', sysid: 'SYSID',
};

function attributes(options: readonly Node[] | undefined): Attributes {
  const out: Attributes = {};
  const seen = new Set<string>();
  for (const option of options ?? []) {
    const def = unwrap(option)[1];
    const name = def['defname'] as string;
    if (seen.has(name)) throw new PgError({ code: SqlState.SyntaxError, message: 'conflicting or redundant options' });
    seen.add(name);
    const arg = def['arg'] === undefined ? null : unwrap(def['arg'] as Node)[1];
    switch (name) {
      case 'superuser': out.superuser = arg?.['boolval'] === true; break;
      case 'canlogin': out.login = arg?.['boolval'] === true; break;
      case 'isreplication': out.replication = arg?.['boolval'] === true; break;
      case 'password': out.password = arg === null ? null : String(arg['sval'] ?? ''); break;
      default: {
        const words = UNSUPPORTED[name] ?? name.toUpperCase();
        throw new PgError({ code: SqlState.FeatureNotSupported, message: `role attribute ${words} is not supported by walship` });
      }
    }
  }
  return out;
}

/** Does `text` parse as a SCRAM-SHA-256 verifier? PostgreSQL then stores it as it is. */
function isScramVerifier(text: string): boolean {
  const match = /^SCRAM-SHA-256\$([1-9]\d*):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/.exec(text);
  return match !== null && Buffer.from(match[3]!, 'base64').length === 32 && Buffer.from(match[4]!, 'base64').length === 32;
}

/** What pg_authid.rolpassword keeps for a password given in SQL. */
function verifierFor(password: string | null, ctx: RoleContext): string | null {
  // An empty password would let some clients in without one: PostgreSQL clears it instead.
  if (password === null || password === '') return null;
  if (isScramVerifier(password)) return password;
  if (/^md5[0-9a-f]{32}$/.test(password)) {
    throw new PgError({ code: SqlState.FeatureNotSupported, message: 'MD5-encrypted passwords are not supported by walship', hint: 'Give the password itself, or a SCRAM-SHA-256 verifier.' });
  }
  const salt = ctx.random === undefined
    ? randomBytes(SCRAM_SALT_BYTES)
    : Buffer.from(Array.from({ length: SCRAM_SALT_BYTES }, () => Math.floor(ctx.random!() * 256)));
  return scramVerifier(password, salt);
}

function undefinedRole(name: string): PgError {
  return new PgError({ code: SqlState.UndefinedObject, message: `role "${name}" does not exist` });
}

/**
 * The version of role `name` this statement may change, or undefined. A version another
 * transaction is changing is waited for; one changed by a transaction that committed after
 * a REPEATABLE READ snapshot cannot be changed again by it.
 */
function changeableRole(name: string, ctx: RoleContext): RoleDef | undefined {
  const def = ctx.state.catalog.role(name, ctx.snapshot, ctx.own, ctx.state.clog);
  if (def === undefined || def.xmax === InvalidXid || ctx.state.clog.isAborted(def.xmax) || ctx.own.xids.has(def.xmax)) return def;
  if (ctx.procarray.has(def.xmax)) throw new RowConflict(def.xmax);
  throw new PgError({ code: SqlState.SerializationFailure, message: 'could not serialize access due to concurrent update' });
}

export function createRole(node: Node, ctx: RoleContext): QueryResult {
  const name = node['role'] as string;
  if (name.startsWith('pg_')) {
    throw new PgError({ code: SqlState.ReservedName, message: `role name "${name}" is reserved`, detail: 'Role names starting with "pg_" are reserved.' });
  }
  const given = attributes(node['options'] as Node[] | undefined);
  const versions = ctx.state.catalog.roles.filter((r) => r.name === name);
  if (nameHeld(versions, ctx.own, ctx.state.clog, ctx.procarray)) {
    throw new PgError({ code: SqlState.DuplicateObject, message: `role "${name}" already exists` });
  }
  const xid = ctx.xid();
  ctx.log(rec.createRole(xid, {
    def: {
      oid: ctx.state.assignOid(), name,
      superuser: given.superuser ?? false,
      // CREATE USER is CREATE ROLE with LOGIN.
      login: given.login ?? node['stmt_type'] === 'ROLESTMT_USER',
      replication: given.replication ?? false,
      verifier: verifierFor(given.password ?? null, ctx),
      xmin: xid, cmin: ctx.commandId, xmax: InvalidXid, cmax: 0,
    },
  }));
  return commandOnly('CREATE ROLE');
}

export function alterRole(node: Node, ctx: RoleContext): QueryResult {
  const spec = node['role'] as Node;
  const name = spec['rolename'] as string | undefined;
  if (spec['roletype'] !== 'ROLESPEC_CSTRING' || name === undefined) {
    throw new PgError({ code: SqlState.FeatureNotSupported, message: 'ALTER ROLE of CURRENT_USER, SESSION_USER or ALL is not supported by walship' });
  }
  const given = attributes(node['options'] as Node[] | undefined);
  const old = changeableRole(name, ctx);
  if (old === undefined) throw undefinedRole(name);
  if (given.superuser === false && old.oid === BOOTSTRAP_SUPERUSER) {
    throw new PgError({ code: SqlState.InsufficientPrivilege, message: 'permission denied: bootstrap user must be superuser' });
  }
  const xid = ctx.xid();
  ctx.log(rec.alterRole(xid, {
    oid: old.oid, cid: ctx.commandId,
    def: {
      ...old,
      superuser: given.superuser ?? old.superuser,
      login: given.login ?? old.login,
      replication: given.replication ?? old.replication,
      verifier: given.password === undefined ? old.verifier : verifierFor(given.password, ctx),
      xmin: xid, cmin: ctx.commandId, xmax: InvalidXid, cmax: 0,
    },
  }));
  return commandOnly('ALTER ROLE');
}

export function dropRoles(node: Node, ctx: RoleContext): QueryResult {
  for (const spec of (node['roles'] as Node[] | undefined) ?? []) {
    const name = unwrap(spec)[1]['rolename'] as string;
    const def = changeableRole(name, ctx);
    if (def === undefined) {
      if (node['missing_ok'] === true) continue;
      throw undefinedRole(name);
    }
    if (def.oid === BOOTSTRAP_SUPERUSER) {
      throw new PgError({ code: SqlState.DependentObjectsStillExist, message: `cannot drop role ${name} because it is required by the database system` });
    }
    ctx.log(rec.dropRole(ctx.xid(), { oid: def.oid, cid: ctx.commandId }));
  }
  return commandOnly('DROP ROLE');
}

/** The latest committed version of role `name`: what a new session authenticates against. */
export function committedRole(state: DatabaseState, procarray: ProcArray, name: string): RoleInfo | undefined {
  const def = state.catalog.role(name, takeSnapshot(procarray.xids(), state.clog.nextXid), NO_OWN_TRANSACTION, state.clog);
  if (def === undefined) return undefined;
  return { name: def.name, superuser: def.superuser, login: def.login, replication: def.replication, verifier: def.verifier };
}

/** pg_roles: its columns, and the rows this snapshot sees. */
export const PG_ROLES_COLUMNS: readonly { readonly name: string; readonly type: TypeName }[] = [
  { name: 'rolname', type: 'text' }, { name: 'rolsuper', type: 'bool' }, { name: 'rolreplication', type: 'bool' }, { name: 'rolcanlogin', type: 'bool' },
];

export function pgRolesRows(state: DatabaseState, snapshot: Snapshot, own: OwnTransaction): Datum[][] {
  return state.catalog.roles.filter((r) => isVisible(r, snapshot, own, state.clog)).map((r) => [r.name, r.superuser, r.replication, r.login]);
}
