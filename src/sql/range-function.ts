/*
 * range-function.ts — a function in FROM, read as a relation.
 *
 * generate_series(start, stop [, step]) gives one row per value. Any other function gives
 * one row: a walship function its value (`FROM pg_current_wal_lsn()`), a function the
 * server serves its answer, a record's columns included
 * (`FROM pg_create_physical_replication_slot('s1', true)` has slot_name and lsn). Column
 * names follow PostgreSQL: an alias's column list, else, for one column, the alias or the
 * function's name. The function is evaluated once, here, whatever the query does with its
 * row; arguments are constants (no LATERAL).
 */
import { PgError, SqlState } from '../errors.js';
import type { TableDef } from '../storage/catalog.js';
import type { Datum } from '../storage/heap.js';
import { compileBuiltinFunction, compileExpr, functionName, undefinedFunction, unwrap, type ExprContext, type Node } from './expr.js';
import type { SystemColumn } from './system.js';
import { virtualTable } from './virtual-table.js';

type Source = [TableDef, () => (readonly Datum[])[]];

const notSupported = (what: string): PgError => new PgError({ code: SqlState.FeatureNotSupported, message: `${what} is not supported by walship yet` });

export function rangeFunction(body: Node, ctx: ExprContext): Source {
  const calls = ((body['functions'] as Node[]) ?? []).map((f) => (unwrap(f)[1]['items'] as Node[])[0]!);
  if (calls.length !== 1) throw notSupported('ROWS FROM with several functions');
  const [kind, call] = unwrap(calls[0]!);
  if (kind !== 'FuncCall') throw notSupported(`FROM ${kind}`);
  const name = functionName(call);
  const alias = body['alias'] as Node | undefined;
  const aliasName = alias?.['aliasname'] as string | undefined;
  const aliasColumns = ((alias?.['colnames'] as Node[] | undefined) ?? []).map((n) => unwrap(n)[1]['sval'] as string);
  /** The relation's columns, renamed by the alias: a lone column takes the alias's name. */
  const named = (columns: readonly SystemColumn[]): SystemColumn[] => columns.map((c, i) => ({
    ...c, name: aliasColumns[i] ?? (columns.length === 1 && aliasName !== undefined ? aliasName : c.name),
  }));
  const args = (): Datum[] => ((call['args'] as Node[] | undefined) ?? []).map((a) => compileExpr(a, ctx).eval([]));

  if (name === 'generate_series') return generateSeries(args(), aliasName ?? name, named([{ name, type: 'int4' }]));
  const builtin = compileBuiltinFunction(call, ctx);
  if (builtin !== undefined) {
    const value = builtin.eval([]);
    return [virtualTable(aliasName ?? name, named([{ name, type: builtin.type === 'unknown' ? 'text' : builtin.type }])), () => [[value]]];
  }
  const values = args();
  const result = ctx.functions.server(name, values);
  if (result === undefined) throw undefinedFunction(name, values.length);
  if ('row' in result) return [virtualTable(aliasName ?? name, named(result.columns)), () => [result.row]];
  return [virtualTable(aliasName ?? name, named([{ name, type: result.type }])), () => [[result.value]]];
}

function generateSeries(args: readonly Datum[], tableName: string, columns: readonly SystemColumn[]): Source {
  if (args.length < 2 || args.length > 3 || args.some((a) => typeof a !== 'number')) {
    throw new PgError({ code: SqlState.UndefinedFunction, message: `function generate_series(${args.map(() => 'unknown').join(', ')}) does not exist` });
  }
  const [start, stop, step = 1] = args as number[];
  if (step === 0) throw new PgError({ code: SqlState.InvalidParameterValue, message: 'step size cannot equal zero' });
  return [virtualTable(tableName, columns), () => {
    const rows: Datum[][] = [];
    for (let v = start!; step > 0 ? v <= stop! : v >= stop!; v += step) rows.push([v]);
    return rows;
  }];
}
