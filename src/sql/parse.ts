/*
 * parse.ts — SQL text to PostgreSQL parse trees, with PostgreSQL's own grammar.
 *
 * libpg-query is the real PostgreSQL parser compiled to WebAssembly; walship never parses
 * SQL by hand. The module loads the parser once at import (top-level await), so that any
 * actor module importing this one can parse synchronously inside a handler. A string may
 * hold several statements; each comes back with its own text. Syntax errors become PgError
 * 42601 with PostgreSQL's message and 1-based position.
 */
import { loadModule, parseSync, SqlError } from 'libpg-query';
import { PgError, SqlState } from '../errors.js';

await loadModule();

/** One statement's parse tree: `{ InsertStmt: {...} }`, `{ SelectStmt: {...} }`, ... */
export type StatementNode = Readonly<Record<string, any>>;

export interface ParsedStatement {
  /** The node type, e.g. "InsertStmt". */
  readonly kind: string;
  /** The node's fields. */
  readonly node: Readonly<Record<string, any>>;
  /** This statement's own text. */
  readonly text: string;
}

export function parseSql(sql: string): ParsedStatement[] {
  if (sql.trim() === '') return [];
  let result: { stmts?: { stmt: StatementNode; stmt_location?: number; stmt_len?: number }[] };
  try {
    result = parseSync(sql) as typeof result;
  } catch (err) {
    if (err instanceof SqlError) {
      const cursor = err.sqlDetails?.cursorPosition;
      throw new PgError({
        code: SqlState.SyntaxError,
        message: err.message,
        ...(cursor === undefined ? {} : { position: cursor + 1 }),
      });
    }
    throw err;
  }
  const bytes = Buffer.from(sql);
  return (result.stmts ?? []).map((s) => {
    const [kind] = Object.keys(s.stmt);
    const start = s.stmt_location ?? 0;
    const length = s.stmt_len ?? 0;
    const text = bytes.subarray(start, length === 0 ? undefined : start + length).toString().trim();
    return { kind: kind!, node: s.stmt[kind!] as Readonly<Record<string, any>>, text };
  });
}
