/*
 * result.ts — what a statement returns to its client, shaped as the public API promises:
 * `{ command, rowCount, columns, rows }`, rows as objects keyed by column name.
 */
import type { PgErrorFields } from '../errors.js';
import type { TypeName } from '../storage/catalog.js';

export interface ResultColumn {
  readonly name: string;
  readonly type: TypeName | 'unknown';
}

export interface QueryResult {
  /** The command tag's verb: SELECT, INSERT, UPDATE, DELETE, CREATE TABLE, BEGIN, ... */
  readonly command: string;
  /** Rows returned or affected (null for commands without a count, as PostgreSQL's tag). */
  readonly rowCount: number | null;
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly Record<string, unknown>[];
  /** WARNINGs and NOTICEs the server sent along (libpq hands them to its notice processor). */
  readonly notices?: readonly PgErrorFields[];
}

export function commandOnly(command: string): QueryResult {
  return { command, rowCount: null, columns: [], rows: [] };
}
