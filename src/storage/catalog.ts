/*
 * catalog.ts — databases, tablespaces, tables, sequences and roles, versioned like rows.
 *
 * PostgreSQL's catalogs are tables, so CREATE TABLE inside a transaction is invisible to
 * others until it commits and a DROP TABLE can roll back. Here every catalog entry carries
 * the same (xmin, xmax) header as a heap tuple and is looked up through a snapshot, which
 * gives the same behaviour without catalog tables. Names are case-folded by the SQL layer
 * before they get here.
 *
 * Roles are PostgreSQL's pg_authid: shared by every database, with the bootstrap superuser
 * `postgres` (OID 10, as initdb makes it) present from the start. ALTER ROLE is an update:
 * the old version gets an xmax and a new version follows, as a catalog row would.
 */
import { InvalidXid, type Clog, type Xid } from './clog.js';
import type { Datum } from './heap.js';
import { isVisible, type OwnTransaction, type Snapshot } from './snapshot.js';

export type Oid = number;

/** PostgreSQL's first OID for user objects: everything below is the system's. */
export const FirstNormalObjectId: Oid = 16384;

/** Column and value types. `interval` is kept as PostgreSQL's text; `record` is only ever a function's result. */
export type TypeName = 'int2' | 'int4' | 'int8' | 'float4' | 'float8' | 'numeric' | 'text' | 'varchar' | 'bool' | 'timestamptz' | 'pg_lsn' | 'bytea' | 'interval' | 'record';

export type DefaultExpr =
  | { readonly kind: 'const'; readonly value: Datum }
  | { readonly kind: 'nextval'; readonly sequence: string };

export interface ColumnDef {
  readonly name: string;
  readonly type: TypeName;
  readonly notNull: boolean;
  readonly default: DefaultExpr | null;
}

interface Versioned {
  readonly xmin: Xid;
  readonly cmin: number;
  readonly xmax: Xid;
  readonly cmax: number;
}

export interface TableDef extends Versioned {
  readonly oid: Oid;
  readonly name: string;
  readonly database: Oid;
  readonly tablespace: Oid;
  readonly columns: readonly ColumnDef[];
  /** Column positions of the primary key, or null. */
  readonly primaryKey: readonly number[] | null;
  /** The primary key's index name, as PostgreSQL names it (`<table>_pkey`). */
  readonly primaryKeyName: string | null;
}

export interface DatabaseDef extends Versioned {
  readonly oid: Oid;
  readonly name: string;
}

export interface TablespaceDef extends Versioned {
  readonly oid: Oid;
  readonly name: string;
  readonly location: string;
}

export interface SequenceDef extends Versioned {
  readonly oid: Oid;
  readonly name: string;
  readonly database: Oid;
  readonly increment: number;
  readonly minValue: number;
  readonly maxValue: number;
  readonly start: number;
}

/** pg_authid: a role, with the attributes walship acts on. */
export interface RoleDef extends Versioned {
  readonly oid: Oid;
  readonly name: string;
  readonly superuser: boolean;
  readonly login: boolean;
  readonly replication: boolean;
  /** The SCRAM-SHA-256 verifier (PostgreSQL's rolpassword), or null: no password. */
  readonly verifier: string | null;
}

export const DEFAULT_TABLESPACE: Oid = 1663; // pg_default
export const POSTGRES_DATABASE: Oid = 5; // postgres
/** initdb's superuser, PostgreSQL's BOOTSTRAP_SUPERUSERID. */
export const BOOTSTRAP_SUPERUSER: Oid = 10;

const bootstrapSuperuser = (): RoleDef => ({
  oid: BOOTSTRAP_SUPERUSER, name: 'postgres', superuser: true, login: true, replication: true, verifier: null, xmin: 1, cmin: 0, xmax: InvalidXid, cmax: 0,
});

export interface CatalogImage {
  readonly tables: readonly TableDef[];
  readonly databases: readonly DatabaseDef[];
  readonly tablespaces: readonly TablespaceDef[];
  readonly sequences?: readonly SequenceDef[];
  readonly roles?: readonly RoleDef[];
}

export class Catalog {
  tables: TableDef[] = [];
  sequences: SequenceDef[] = [];
  databases: DatabaseDef[] = [{ oid: POSTGRES_DATABASE, name: 'postgres', xmin: 1, cmin: 0, xmax: InvalidXid, cmax: 0 }];
  tablespaces: TablespaceDef[] = [{ oid: DEFAULT_TABLESPACE, name: 'pg_default', location: '', xmin: 1, cmin: 0, xmax: InvalidXid, cmax: 0 }];
  roles: RoleDef[] = [bootstrapSuperuser()];

  /** The version of table `name` in `database` this snapshot sees, if any. */
  table(name: string, database: Oid, snapshot: Snapshot, own: OwnTransaction, clog: Clog): TableDef | undefined {
    return this.tables.find((t) => t.name === name && t.database === database && isVisible(t, snapshot, own, clog));
  }

  sequence(name: string, database: Oid, snapshot: Snapshot, own: OwnTransaction, clog: Clog): SequenceDef | undefined {
    return this.sequences.find((q) => q.name === name && q.database === database && isVisible(q, snapshot, own, clog));
  }

  tableByOid(oid: Oid): TableDef | undefined {
    return this.tables.find((t) => t.oid === oid);
  }

  database(name: string, snapshot: Snapshot, own: OwnTransaction, clog: Clog): DatabaseDef | undefined {
    return this.databases.find((d) => d.name === name && isVisible(d, snapshot, own, clog));
  }

  tablespace(name: string, snapshot: Snapshot, own: OwnTransaction, clog: Clog): TablespaceDef | undefined {
    return this.tablespaces.find((t) => t.name === name && isVisible(t, snapshot, own, clog));
  }

  role(name: string, snapshot: Snapshot, own: OwnTransaction, clog: Clog): RoleDef | undefined {
    return this.roles.find((r) => r.name === name && isVisible(r, snapshot, own, clog));
  }

  /** Redo: a new table version. */
  addTable(def: TableDef): void {
    this.tables.push(def);
  }

  /**
   * Redo of DROP TABLE / DATABASE / TABLESPACE / ROLE (and of the old half of ALTER ROLE):
   * the object's live version is deleted by `xid`; an earlier DROP that rolled back does not
   * count.
   */
  dropObject(kind: 'tables' | 'databases' | 'tablespaces' | 'roles', oid: Oid, xid: Xid, cid: number, clog: Clog): void {
    const drop = <T extends Versioned & { readonly oid: Oid }>(t: T): T => (t.oid === oid && (t.xmax === InvalidXid || clog.isAborted(t.xmax)) ? { ...t, xmax: xid, cmax: cid } : t);
    if (kind === 'tables') this.tables = this.tables.map(drop);
    else if (kind === 'databases') this.databases = this.databases.map(drop);
    else if (kind === 'tablespaces') this.tablespaces = this.tablespaces.map(drop);
    else this.roles = this.roles.map(drop);
  }

  image(): CatalogImage {
    return { tables: this.tables, databases: this.databases, tablespaces: this.tablespaces, sequences: this.sequences, roles: this.roles };
  }

  static fromImage(image: CatalogImage): Catalog {
    const catalog = new Catalog();
    catalog.tables = [...image.tables];
    catalog.databases = [...image.databases];
    catalog.tablespaces = [...image.tablespaces];
    catalog.sequences = [...(image.sequences ?? [])];
    // An image from before roles were catalogued has only what initdb made.
    catalog.roles = [...(image.roles ?? [bootstrapSuperuser()])];
    return catalog;
  }
}
