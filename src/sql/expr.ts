/*
 * expr.ts — compiling expressions from the parse tree into functions over a row.
 *
 * Handles what the statements walship supports need: constants, column references,
 * $n parameters, comparison and arithmetic operators, AND / OR / NOT with SQL's
 * three-valued logic, IS [NOT] NULL, IN (...), casts, and the scalar functions of the
 * issue (now(), pg_current_wal_lsn(), pg_wal_lsn_diff(), txid_current(),
 * pg_is_in_recovery(), ...). Aggregates are planned by the executor, not here. A function
 * walship does not implement is asked of the server (system.ts); one the server does not
 * know either is PostgreSQL's 42883. Anything else is refused with a PgError naming it,
 * never silently evaluated wrong.
 */
import { PgError, SqlState } from '../errors.js';
import type { TableDef, TypeName } from '../storage/catalog.js';
import type { Datum } from '../storage/heap.js';
import { lsnDiff, parseLsn } from '../wal/lsn.js';
import { recordText, type SystemCallResult } from './system.js';
import { coerce, typeFromName } from './types.js';

export type Node = Readonly<Record<string, any>>;
export type RowEval = (row: readonly Datum[]) => Datum;

export interface ScalarFunctions {
  nextval(sequence: string): number;
  currval(sequence: string): number;
  setval(sequence: string, value: number, isCalled: boolean): number;
  now(): number;
  currentWalLsn(): string;
  txidCurrent(): number;
  inRecovery(): boolean;
  /** pg_sleep(seconds): the statement's reply waits that much longer (the statement stays running meanwhile). */
  sleep(seconds: number): void;
  /** A function the server implements (SystemHooks.call, once per statement for the same arguments); undefined if it has none by that name. */
  server(name: string, args: readonly Datum[]): SystemCallResult | undefined;
}

export interface ExprContext {
  readonly table: TableDef | null;
  /** INSERT ... ON CONFLICT DO UPDATE: rows carry the proposed row after the existing one, and `excluded.x` reads it. */
  readonly excludedOffset?: number;
  readonly params: readonly Datum[];
  readonly functions: ScalarFunctions;
}

export interface Compiled {
  readonly eval: RowEval;
  /** Known at compile time, except a server function's: known once it has answered. */
  readonly type: TypeName | 'unknown';
  /** The output column name PostgreSQL would give it. */
  readonly name: string;
}

const notSupported = (what: string): PgError => new PgError({ code: SqlState.FeatureNotSupported, message: `${what} is not supported by walship` });

/** The single key of a parse-tree node and its body: ['A_Const', {...}]. */
export function unwrap(node: Node): [string, Node] {
  const [kind] = Object.keys(node);
  return [kind!, node[kind!] as Node];
}

export function constValue(body: Node): Datum {
  if (body['isnull'] === true) return null;
  if (body['ival'] !== undefined) return (body['ival'] as Node)['ival'] ?? 0;
  if (body['fval'] !== undefined) return Number((body['fval'] as Node)['fval']);
  if (body['sval'] !== undefined) return (body['sval'] as Node)['sval'] ?? '';
  if (body['boolval'] !== undefined) return (body['boolval'] as Node)['boolval'] ?? false;
  return null;
}

export function columnIndex(table: TableDef, name: string): number {
  const index = table.columns.findIndex((c) => c.name === name);
  if (index < 0) throw new PgError({ code: SqlState.UndefinedColumn, message: `column "${name}" does not exist` });
  return index;
}

function compare(a: Datum, b: Datum): number | null {
  if (a === null || b === null) return null;
  if (typeof a === 'number' && typeof b === 'string' && b.trim() !== '' && Number.isFinite(Number(b))) b = Number(b);
  if (typeof b === 'number' && typeof a === 'string' && a.trim() !== '' && Number.isFinite(Number(a))) a = Number(a);
  if (a instanceof Uint8Array || b instanceof Uint8Array) return Buffer.compare(Buffer.from(a as Uint8Array), Buffer.from(b as Uint8Array));
  return a < b ? -1 : a > b ? 1 : 0;
}

export { compare as compareDatums };

function numeric(v: Datum): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && Number.isFinite(Number(v))) return Number(v);
  throw new PgError({ code: SqlState.InvalidTextRepresentation, message: `invalid input syntax for type numeric: "${String(v)}"` });
}

function operator(op: string, left: Compiled, right: Compiled): Compiled {
  const l = left.eval;
  const r = right.eval;
  const cmp = (test: (c: number) => boolean): RowEval => (row) => {
    const c = compare(l(row), r(row));
    return c === null ? null : test(c);
  };
  const arith = (f: (a: number, b: number) => number): RowEval => (row) => {
    const a = l(row);
    const b = r(row);
    return a === null || b === null ? null : f(numeric(a), numeric(b));
  };
  const integral = (t: Compiled['type']) => t === 'int2' || t === 'int4' || t === 'int8';
  const widest = (): Compiled['type'] => {
    if (!integral(left.type) && left.type !== 'unknown') return left.type;
    if (!integral(right.type) && right.type !== 'unknown') return right.type;
    if (left.type === 'int8' || right.type === 'int8') return 'int8';
    return left.type === 'unknown' ? right.type : left.type;
  };
  const numberType = widest();
  const checked = (f: (a: number, b: number) => number) => (a: number, b: number): number => {
    const v = f(a, b);
    if (numberType === 'int4' && (v > 2147483647 || v < -2147483648)) throw new PgError({ code: SqlState.NumericValueOutOfRange, message: 'integer out of range' });
    if (numberType === 'int8' && !Number.isSafeInteger(v)) throw new PgError({ code: SqlState.NumericValueOutOfRange, message: 'bigint out of range' });
    return v;
  };
  switch (op) {
    case '=': return { eval: cmp((c) => c === 0), type: 'bool', name: '?column?' };
    case '<>': case '!=': return { eval: cmp((c) => c !== 0), type: 'bool', name: '?column?' };
    case '<': return { eval: cmp((c) => c < 0), type: 'bool', name: '?column?' };
    case '<=': return { eval: cmp((c) => c <= 0), type: 'bool', name: '?column?' };
    case '>': return { eval: cmp((c) => c > 0), type: 'bool', name: '?column?' };
    case '>=': return { eval: cmp((c) => c >= 0), type: 'bool', name: '?column?' };
    case '+': return { eval: arith(checked((a, b) => a + b)), type: numberType, name: '?column?' };
    case '-': return { eval: arith(checked((a, b) => a - b)), type: numberType, name: '?column?' };
    case '*': return { eval: arith(checked((a, b) => a * b)), type: numberType, name: '?column?' };
    case '/': return {
      eval: arith((a, b) => {
        if (b === 0) throw new PgError({ code: SqlState.DivisionByZero, message: 'division by zero' });
        const q = a / b;
        return numberType === 'int4' || numberType === 'int8' || numberType === 'int2' ? Math.trunc(q) : q;
      }),
      type: numberType, name: '?column?',
    };
    case '%': return {
      eval: arith((a, b) => {
        if (b === 0) throw new PgError({ code: SqlState.DivisionByZero, message: 'division by zero' });
        return a % b;
      }),
      type: numberType, name: '?column?',
    };
    case '||': return {
      eval: (row) => {
        const a = l(row);
        const b = r(row);
        return a === null || b === null ? null : `${String(a)}${String(b)}`;
      },
      type: 'text', name: '?column?',
    };
    default: throw notSupported(`operator ${op}`);
  }
}

export function compileExpr(node: Node, ctx: ExprContext): Compiled {
  const [kind, body] = unwrap(node);
  switch (kind) {
    case 'A_Const': {
      const value = constValue(body);
      return { eval: () => value, type: typeof value === 'number' ? (Number.isInteger(value) ? 'int4' : 'numeric') : typeof value === 'boolean' ? 'bool' : 'unknown', name: '?column?' };
    }
    case 'ParamRef': {
      const n = (body['number'] as number) ?? 0;
      if (n < 1 || n > ctx.params.length) throw new PgError({ code: SqlState.ProtocolViolation, message: `there is no parameter $${n}` });
      const value = ctx.params[n - 1]!;
      return { eval: () => value, type: 'unknown', name: '?column?' };
    }
    case 'ColumnRef': {
      const fields = (body['fields'] as Node[]).map((f) => unwrap(f));
      const last = fields.at(-1)!;
      if (last[0] === 'A_Star') throw notSupported('* in an expression');
      const name = (last[1]['sval'] as string) ?? '';
      if (ctx.table === null) throw new PgError({ code: SqlState.UndefinedColumn, message: `column "${name}" does not exist` });
      const qualifier = fields.length > 1 ? (fields[0]![1]['sval'] as string | undefined) : undefined;
      const offset = qualifier === 'excluded' && ctx.excludedOffset !== undefined ? ctx.excludedOffset : 0;
      const index = columnIndex(ctx.table, name) + offset;
      return { eval: (row) => row[index] ?? null, type: ctx.table.columns[index - offset]!.type, name };
    }
    case 'A_Expr': {
      const op = ((body['name'] as Node[])?.map((n) => unwrap(n)[1]['sval']).at(-1) as string) ?? '';
      if (body['kind'] === 'AEXPR_IN') {
        const left = compileExpr(body['lexpr'] as Node, ctx);
        const items = ((body['rexpr'] as Node)['List']?.['items'] as Node[] ?? []).map((i) => compileExpr(i, ctx));
        const negate = op === '<>';
        return {
          eval: (row) => {
            const v = left.eval(row);
            if (v === null) return null;
            let sawNull = false;
            for (const item of items) {
              const c = compare(v, item.eval(row));
              if (c === 0) return !negate;
              if (c === null) sawNull = true;
            }
            return sawNull ? null : negate;
          },
          type: 'bool', name: '?column?',
        };
      }
      if (body['kind'] !== 'AEXPR_OP') throw notSupported(`expression kind ${String(body['kind'])}`);
      if (body['lexpr'] === undefined) {
        const right = compileExpr(body['rexpr'] as Node, ctx);
        if (op === '-') return { eval: (row) => { const v = right.eval(row); return v === null ? null : -numeric(v); }, type: right.type, name: '?column?' };
        throw notSupported(`prefix operator ${op}`);
      }
      return operator(op, compileExpr(body['lexpr'] as Node, ctx), compileExpr(body['rexpr'] as Node, ctx));
    }
    case 'BoolExpr': {
      const args = (body['args'] as Node[]).map((a) => compileExpr(a, ctx).eval);
      switch (body['boolop']) {
        case 'AND_EXPR': return { eval: (row) => { let sawNull = false; for (const a of args) { const v = a(row); if (v === false) return false; if (v === null) sawNull = true; } return sawNull ? null : true; }, type: 'bool', name: '?column?' };
        case 'OR_EXPR': return { eval: (row) => { let sawNull = false; for (const a of args) { const v = a(row); if (v === true) return true; if (v === null) sawNull = true; } return sawNull ? null : false; }, type: 'bool', name: '?column?' };
        default: return { eval: (row) => { const v = args[0]!(row); return v === null ? null : !v; }, type: 'bool', name: '?column?' };
      }
    }
    case 'NullTest': {
      const arg = compileExpr(body['arg'] as Node, ctx).eval;
      const wantNull = body['nulltesttype'] === 'IS_NULL';
      return { eval: (row) => (arg(row) === null) === wantNull, type: 'bool', name: '?column?' };
    }
    case 'TypeCast': {
      const inner = compileExpr(body['arg'] as Node, ctx);
      const names = ((body['typeName'] as Node)['names'] as Node[]).map((n) => unwrap(n)[1]['sval'] as string);
      const type = typeFromName(names.at(-1)!);
      if (type === null) throw new PgError({ code: SqlState.UndefinedObject, message: `type "${names.at(-1)}" does not exist` });
      return { eval: (row) => coerce(inner.eval(row), type), type, name: inner.name === '?column?' ? names.at(-1)! : inner.name };
    }
    case 'FuncCall':
      return compileFunction(body, ctx);
    default:
      throw notSupported(`expression ${kind}`);
  }
}

export function functionName(body: Node): string {
  return ((body['funcname'] as Node[]).map((n) => unwrap(n)[1]['sval'] as string).at(-1) ?? '').toLowerCase();
}

function compileFunction(body: Node, ctx: ExprContext): Compiled {
  const name = functionName(body);
  const args = ((body['args'] as Node[] | undefined) ?? []).map((a) => compileExpr(a, ctx));
  return builtinFunction(name, args, ctx) ?? serverFunction(name, args, ctx);
}

/** A function walship implements, compiled; undefined for any other name. */
export function compileBuiltinFunction(body: Node, ctx: ExprContext): Compiled | undefined {
  return builtinFunction(functionName(body), ((body['args'] as Node[] | undefined) ?? []).map((a) => compileExpr(a, ctx)), ctx);
}

function builtinFunction(name: string, args: readonly Compiled[], ctx: ExprContext): Compiled | undefined {
  const fixed = (count: number): void => {
    if (args.length !== count) throw undefinedFunction(name, args.length);
  };
  switch (name) {
    case 'now': case 'current_timestamp': case 'statement_timestamp': case 'transaction_timestamp':
      fixed(0);
      return { eval: () => ctx.functions.now(), type: 'timestamptz', name };
    case 'pg_current_wal_lsn': case 'pg_current_wal_insert_lsn': case 'pg_current_wal_flush_lsn':
      fixed(0);
      return { eval: () => ctx.functions.currentWalLsn(), type: 'pg_lsn', name };
    case 'txid_current': case 'pg_current_xact_id':
      fixed(0);
      return { eval: () => ctx.functions.txidCurrent(), type: 'int8', name };
    case 'pg_sleep':
      fixed(1);
      return {
        eval: (row) => {
          const seconds = args[0]!.eval(row);
          if (seconds !== null) ctx.functions.sleep(Number(seconds));
          return '';
        },
        type: 'text', name,
      };
    case 'pg_is_in_recovery':
      fixed(0);
      return { eval: () => ctx.functions.inRecovery(), type: 'bool', name };
    case 'pg_wal_lsn_diff':
      fixed(2);
      return {
        eval: (row) => {
          const a = args[0]!.eval(row);
          const b = args[1]!.eval(row);
          return a === null || b === null ? null : lsnDiff(parseLsn(String(a)), parseLsn(String(b)));
        },
        type: 'numeric', name,
      };
    case 'lower': case 'upper': case 'length':
      fixed(1);
      return {
        eval: (row) => {
          const v = args[0]!.eval(row);
          if (v === null) return null;
          return name === 'lower' ? String(v).toLowerCase() : name === 'upper' ? String(v).toUpperCase() : String(v).length;
        },
        type: name === 'length' ? 'int4' : 'text', name,
      };
    case 'nextval': case 'currval':
      fixed(1);
      return {
        eval: (row) => {
          const seq = args[0]!.eval(row);
          if (seq === null) return null;
          return name === 'nextval' ? ctx.functions.nextval(String(seq)) : ctx.functions.currval(String(seq));
        },
        type: 'int8', name,
      };
    case 'setval': {
      if (args.length !== 2 && args.length !== 3) throw undefinedFunction(name, args.length);
      return {
        eval: (row) => {
          const seq = args[0]!.eval(row);
          const value = args[1]!.eval(row);
          if (seq === null || value === null) return null;
          return ctx.functions.setval(String(seq), Number(value), args[2] === undefined ? true : args[2].eval(row) === true);
        },
        type: 'int8', name,
      };
    }
    case 'coalesce':
      return { eval: (row) => { for (const a of args) { const v = a.eval(row); if (v !== null) return v; } return null; }, type: args[0]?.type ?? 'unknown', name };
    default:
      return undefined;
  }
}

/**
 * A function the server serves. Whether it exists, and its type, are known only once it is
 * called, so an unknown name fails when first evaluated (PostgreSQL fails it at parse).
 */
function serverFunction(name: string, args: readonly Compiled[], ctx: ExprContext): Compiled {
  let type: Compiled['type'] = 'unknown';
  return {
    eval: (row) => {
      const result = ctx.functions.server(name, args.map((a) => a.eval(row)));
      if (result === undefined) throw undefinedFunction(name, args.length);
      if ('row' in result) {
        type = 'record';
        return recordText(result.columns, result.row);
      }
      type = result.type;
      return result.value;
    },
    get type() {
      return type;
    },
    name,
  };
}

export function undefinedFunction(name: string, argc: number): PgError {
  return new PgError({
    code: SqlState.UndefinedFunction,
    message: `function ${name}(${Array(argc).fill('unknown').join(', ')}) does not exist`,
    hint: 'No function matches the given name and argument types. You might need to add explicit type casts.',
  });
}

/** WHERE semantics: only true passes (null and false do not). */
export function predicate(node: Node | undefined, ctx: ExprContext): (row: readonly Datum[]) => boolean {
  if (node === undefined) return () => true;
  const compiled = compileExpr(node, ctx);
  return (row) => compiled.eval(row) === true;
}
