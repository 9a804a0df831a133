/*
 * select.ts — SELECT over one table (or none): WHERE, target lists with expressions and
 * aggregates (count, sum, min, max, avg), GROUP BY one expression, ORDER BY, LIMIT, OFFSET.
 * Rows are the versions the statement's snapshot sees.
 */
import { PgError, SqlState } from '../errors.js';
import type { TableDef, TypeName } from '../storage/catalog.js';
import type { Datum } from '../storage/heap.js';
import { compareDatums, compileExpr, constValue, functionName, predicate, unwrap, type Compiled, type ExprContext, type Node } from './expr.js';
import type { QueryResult, ResultColumn } from './result.js';
import { toClient } from './types.js';

const AGGREGATES = new Set(['count', 'sum', 'min', 'max', 'avg']);

interface Output {
  readonly name: string;
  /** Read after evaluation: a server function's type is known only once it has answered. */
  readonly type: TypeName | 'unknown';
  /** Per group of rows (a plain column is evaluated on the group's first row). */
  readonly value: (rows: readonly (readonly Datum[])[]) => Datum;
  readonly aggregate: boolean;
}

function aggregate(body: Node, ctx: ExprContext): Output {
  const name = functionName(body);
  if (body['agg_star'] === true) return { name, type: 'int8', aggregate: true, value: (rows) => rows.length };
  const args = (body['args'] as Node[] | undefined) ?? [];
  if (args.length !== 1) throw new PgError({ code: SqlState.UndefinedFunction, message: `function ${name}() does not exist` });
  const arg = compileExpr(args[0]!, ctx);
  const values = (rows: readonly (readonly Datum[])[]) => rows.map((r) => arg.eval(r)).filter((v) => v !== null);
  switch (name) {
    case 'count': return { name, type: 'int8', aggregate: true, value: (rows) => values(rows).length };
    case 'sum': return { name, type: arg.type, aggregate: true, value: (rows) => { const v = values(rows); return v.length === 0 ? null : v.reduce((a, b) => Number(a) + Number(b), 0); } };
    case 'avg': return { name, type: 'numeric', aggregate: true, value: (rows) => { const v = values(rows); return v.length === 0 ? null : v.reduce((a, b) => Number(a) + Number(b), 0) as number / v.length; } };
    default: return {
      name, type: arg.type, aggregate: true,
      value: (rows) => values(rows).reduce<Datum>((best, v) => (best === null || (compareDatums(v, best)! < 0) === (name === 'min') ? v : best), null),
    };
  }
}

function outputs(targets: readonly Node[], table: TableDef | null, ctx: ExprContext): Output[] {
  const out: Output[] = [];
  for (const target of targets) {
    const res = unwrap(target)[1];
    const val = res['val'] as Node;
    const [kind, body] = unwrap(val);
    if (kind === 'ColumnRef' && unwrap((body['fields'] as Node[]).at(-1)!)[0] === 'A_Star') {
      if (table === null) throw new PgError({ code: SqlState.SyntaxError, message: 'SELECT * with no tables specified is not valid' });
      table.columns.forEach((c, i) => out.push({ name: c.name, type: c.type, aggregate: false, value: (rows) => rows[0]?.[i] ?? null }));
      continue;
    }
    const alias = res['name'] as string | undefined;
    if (kind === 'FuncCall' && AGGREGATES.has(functionName(body))) {
      const o = aggregate(body, ctx);
      out.push(alias !== undefined ? { ...o, name: alias } : o);
      continue;
    }
    const c: Compiled = compileExpr(val, ctx);
    out.push({
      name: alias ?? c.name,
      get type() {
        return c.type;
      },
      aggregate: false,
      value: (rows) => (rows[0] === undefined ? null : c.eval(rows[0])),
    });
  }
  return out;
}

/** The rows of a SELECT as stored values, for INSERT ... SELECT and CREATE TABLE AS. */
export interface SelectValues {
  readonly columns: readonly ResultColumn[];
  readonly values: readonly (readonly Datum[])[];
}

export function executeSelect(node: Node, table: TableDef | null, visibleRows: () => (readonly Datum[])[], ctx: ExprContext): QueryResult {
  const { columns, values } = selectValues(node, table, visibleRows, ctx);
  return {
    command: 'SELECT',
    rowCount: values.length,
    columns,
    rows: values.map((row) => Object.fromEntries(columns.map((c, i) => [c.name, toClient(row[i] ?? null, c.type)]))),
  };
}

export function selectValues(node: Node, table: TableDef | null, visibleRows: () => (readonly Datum[])[], ctx: ExprContext): SelectValues {
  const where = predicate(node['whereClause'] as Node | undefined, ctx);
  const outs = outputs((node['targetList'] as Node[]) ?? [], table, ctx);
  let rows = table === null ? [[]] : visibleRows().filter(where);
  const groupBy = (node['groupClause'] as Node[] | undefined) ?? [];
  let groups: (readonly Datum[])[][];
  if (groupBy.length > 1) throw new PgError({ code: SqlState.FeatureNotSupported, message: 'GROUP BY on more than one expression is not supported by walship' });
  if (groupBy.length === 1) {
    const key = compileExpr(groupBy[0]!, ctx);
    const byKey = new Map<string, (readonly Datum[])[]>();
    for (const row of rows) {
      const k = JSON.stringify(key.eval(row));
      const list = byKey.get(k);
      if (list === undefined) byKey.set(k, [row]);
      else list.push(row);
    }
    groups = [...byKey.values()];
  } else if (outs.some((o) => o.aggregate)) {
    groups = [rows];
  } else {
    groups = rows.map((r) => [r]);
  }
  let results = groups.map((g) => ({ values: outs.map((o) => o.value(g)), first: g[0] }));
  const sortBy = (node['sortClause'] as Node[] | undefined) ?? [];
  if (sortBy.length > 0) {
    const keys = sortBy.map((s) => {
      const sort = unwrap(s)[1];
      const expr = sort['node'] as Node;
      const [kind, body] = unwrap(expr);
      const descending = sort['sortby_dir'] === 'SORTBY_DESC';
      const nullsFirst = sort['sortby_nulls'] === 'SORTBY_NULLS_FIRST' || (sort['sortby_nulls'] !== 'SORTBY_NULLS_LAST' && descending);
      let get: (r: { values: Datum[]; first: readonly Datum[] | undefined }) => Datum;
      if (kind === 'A_Const' && typeof constValue(body) === 'number') {
        const position = (constValue(body) as number) - 1;
        get = (r) => r.values[position] ?? null;
      } else {
        const named = kind === 'ColumnRef' ? outs.findIndex((o) => o.name === unwrap((body['fields'] as Node[]).at(-1)!)[1]['sval']) : -1;
        if (named >= 0) get = (r) => r.values[named] ?? null;
        else {
          const c = compileExpr(expr, ctx);
          get = (r) => (r.first === undefined ? null : c.eval(r.first));
        }
      }
      return { get, descending, nullsFirst };
    });
    results = results.sort((a, b) => {
      for (const k of keys) {
        const x = k.get(a);
        const y = k.get(b);
        if (x === null || y === null) {
          if (x === y) continue;
          return (x === null) === k.nullsFirst ? -1 : 1;
        }
        const c = compareDatums(x, y)!;
        if (c !== 0) return k.descending ? -c : c;
      }
      return 0;
    });
  }
  const offset = node['limitOffset'] !== undefined ? Number(compileExpr(node['limitOffset'] as Node, ctx).eval([])) : 0;
  const limit = node['limitCount'] !== undefined ? compileExpr(node['limitCount'] as Node, ctx).eval([]) : null;
  results = results.slice(offset, limit === null ? undefined : offset + Number(limit));
  const columns: ResultColumn[] = outs.map((o) => ({ name: o.name, type: o.type }));
  return { columns, values: results.map((r) => r.values) };
}
