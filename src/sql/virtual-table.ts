/*
 * virtual-table.ts — relations computed for a statement rather than stored: system views
 * (pg_roles, and those the server serves) and functions in FROM (generate_series, ...).
 *
 * Each takes a TableDef's shape with no storage behind it (OID -1, no key, always visible),
 * so that SELECT filters, sorts, groups and aggregates its rows exactly as it does a table's.
 * The rows come with it, fetched once per statement by whoever builds it.
 */
import { DEFAULT_TABLESPACE, POSTGRES_DATABASE, type TableDef, type TypeName } from '../storage/catalog.js';

export interface VirtualColumn {
  readonly name: string;
  readonly type: TypeName;
}

export function virtualTable(name: string, columns: readonly VirtualColumn[]): TableDef {
  return {
    oid: -1, name, database: POSTGRES_DATABASE, tablespace: DEFAULT_TABLESPACE,
    columns: columns.map((c) => ({ name: c.name, type: c.type, notNull: false, default: null })),
    primaryKey: null, primaryKeyName: null, xmin: 0, cmin: 0, xmax: 0, cmax: 0,
  };
}
