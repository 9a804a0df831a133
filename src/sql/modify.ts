/*
 * modify.ts — INSERT, UPDATE and DELETE on one table.
 *
 * Each statement works in two phases. First it computes everything — target rows, new
 * values (with their type checks), key checks — and looks for rows or keys held by a
 * transaction still running; finding one throws RowConflict before anything was changed,
 * and the statement is run again once that transaction ends. Then it logs its changes.
 * Under REPEATABLE READ, a target row updated or deleted by a transaction that committed
 * after the snapshot is a serialization failure, as in PostgreSQL.
 */
import { PgError, SqlState } from '../errors.js';
import type { TableDef } from '../storage/catalog.js';
import { InvalidXid, type Clog, type Xid } from '../storage/clog.js';
import type { Ctid, Datum, HeapTuple } from '../storage/heap.js';
import * as rec from '../storage/records.js';
import { isVisible, type OwnTransaction, type Snapshot, type TupleHeader } from '../storage/snapshot.js';
import type { DatabaseState } from '../storage/state.js';
import { indexKey } from '../storage/unique-index.js';
import type { WalRecordInput } from '../wal/record.js';
import { compileExpr, predicate, unwrap, type ExprContext, type Node } from './expr.js';
import type { QueryResult, ResultColumn } from './result.js';
import type { SelectValues } from './select.js';
import type { Isolation, ProcArray } from './transaction.js';
import { coerce, toClient } from './types.js';

/** Thrown when a row or key is held by a running transaction: wait for it, then retry. */
export class RowConflict extends Error {
  constructor(readonly blocker: Xid) {
    super(`waiting for transaction ${blocker}`);
  }
}

/**
 * Does one of these catalog versions (all of one name) hold the name? Names are unique across
 * every version that has not aborted, whatever the snapshot: a name being created or dropped
 * by a running transaction makes the caller wait for it (RowConflict), as PostgreSQL's unique
 * catalog index does.
 */
export function nameHeld(versions: Iterable<TupleHeader>, own: OwnTransaction, clog: Clog, procarray: ProcArray): boolean {
  for (const v of versions) {
    if (clog.isAborted(v.xmin)) continue;
    if (!own.xids.has(v.xmin) && procarray.has(v.xmin)) throw new RowConflict(v.xmin);
    if (v.xmax !== InvalidXid && !clog.isAborted(v.xmax)) {
      if (own.xids.has(v.xmax) || clog.isCommitted(v.xmax)) continue;
      if (procarray.has(v.xmax)) throw new RowConflict(v.xmax);
    }
    return true;
  }
  return false;
}

export interface DmlContext {
  readonly state: DatabaseState;
  readonly table: TableDef;
  readonly snapshot: Snapshot;
  readonly own: OwnTransaction;
  readonly procarray: ProcArray;
  readonly isolation: Isolation;
  readonly expr: ExprContext;
  readonly commandId: number;
  xid(): Xid;
  log(record: WalRecordInput): void;
  /** Runs a SELECT with this statement's snapshot (INSERT ... SELECT). */
  select(query: Node): SelectValues;
}

function running(ctx: DmlContext, xid: Xid): boolean {
  return xid !== InvalidXid && !ctx.own.xids.has(xid) && ctx.procarray.has(xid);
}

function duplicateKey(def: TableDef, values: readonly Datum[]): PgError {
  return new PgError({
    code: SqlState.UniqueViolation,
    message: `duplicate key value violates unique constraint "${def.primaryKeyName}"`,
    detail: `Key (${def.primaryKey!.map((i) => def.columns[i]!.name).join(', ')})=(${def.primaryKey!.map((i) => String(values[i])).join(', ')}) already exists.`,
  });
}

/**
 * The live version holding `values`' key, other than `except`, if any. Throws RowConflict
 * when that depends on a transaction still running.
 */
function conflictingVersion(ctx: DmlContext, values: readonly Datum[], except: Ctid | null): Ctid | null {
  const def = ctx.table;
  if (def.primaryKey === null) return null;
  const index = ctx.state.primaryKey(def.oid)!;
  const heap = ctx.state.heap(def.oid);
  for (const ctid of index.lookup(indexKey(values, def.primaryKey))) {
    if (except !== null && ctid.block === except.block && ctid.offset === except.offset) continue;
    const tuple = heap.get(ctid);
    if (tuple === null || ctx.state.clog.isAborted(tuple.xmin)) continue;
    if (running(ctx, tuple.xmin)) throw new RowConflict(tuple.xmin);
    if (!ctx.own.xids.has(tuple.xmin) && !ctx.state.clog.isCommitted(tuple.xmin)) continue;
    if (tuple.xmax !== InvalidXid && !ctx.state.clog.isAborted(tuple.xmax)) {
      if (ctx.own.xids.has(tuple.xmax) || ctx.state.clog.isCommitted(tuple.xmax)) continue;
      if (running(ctx, tuple.xmax)) throw new RowConflict(tuple.xmax);
    }
    return ctid;
  }
  return null;
}

/** Fails on a key already taken (by a live version, or earlier in this statement). */
function checkKey(ctx: DmlContext, values: readonly Datum[], except: Ctid | null, pending: Set<string>): void {
  const def = ctx.table;
  if (def.primaryKey === null) return;
  const key = indexKey(values, def.primaryKey);
  if (pending.has(key)) throw duplicateKey(def, values);
  pending.add(key);
  if (conflictingVersion(ctx, values, except) !== null) throw duplicateKey(def, values);
}

function checkNotNull(ctx: DmlContext, values: readonly Datum[]): void {
  ctx.table.columns.forEach((c, i) => {
    if (c.notNull && values[i] === null) {
      throw new PgError({
        code: SqlState.NotNullViolation,
        message: `null value in column "${c.name}" of relation "${ctx.table.name}" violates not-null constraint`,
        detail: `Failing row contains (${values.map((v) => (v === null ? 'null' : String(v))).join(', ')}).`,
      });
    }
  });
}

function returning(node: Node, ctx: DmlContext, rows: readonly (readonly Datum[])[]): { columns: ResultColumn[]; rows: Record<string, unknown>[] } {
  const targets = ((node['returningClause'] as Node | undefined)?.['exprs'] ?? node['returningList']) as Node[] | undefined;
  if (targets === undefined || targets.length === 0) return { columns: [], rows: [] };
  const outs: { name: string; type: ResultColumn['type']; get: (row: readonly Datum[]) => Datum }[] = [];
  for (const target of targets) {
    const res = unwrap(target)[1];
    const [kind, body] = unwrap(res['val'] as Node);
    if (kind === 'ColumnRef' && unwrap((body['fields'] as Node[]).at(-1)!)[0] === 'A_Star') {
      ctx.table.columns.forEach((c, i) => outs.push({ name: c.name, type: c.type, get: (row) => row[i] ?? null }));
      continue;
    }
    const compiled = compileExpr(res['val'] as Node, ctx.expr);
    outs.push({ name: (res['name'] as string | undefined) ?? compiled.name, type: compiled.type, get: compiled.eval });
  }
  return {
    columns: outs.map((o) => ({ name: o.name, type: o.type })),
    rows: rows.map((row) => Object.fromEntries(outs.map((o) => [o.name, toClient(o.get(row), o.type)]))),
  };
}

export function executeInsert(node: Node, ctx: DmlContext): QueryResult {
  const def = ctx.table;
  if ((node['selectStmt'] as Node | undefined)?.['SelectStmt'] === undefined) {
    throw new PgError({ code: SqlState.FeatureNotSupported, message: 'INSERT ... DEFAULT VALUES is not supported by walship yet' });
  }
  const targetColumns = ((node['cols'] as Node[] | undefined) ?? []).map((c) => {
    const name = unwrap(c)[1]['name'] as string;
    const index = def.columns.findIndex((col) => col.name === name);
    if (index < 0) throw new PgError({ code: SqlState.UndefinedColumn, message: `column "${name}" of relation "${def.name}" does not exist` });
    return index;
  });
  const positions = targetColumns.length > 0 ? targetColumns : def.columns.map((_, i) => i);
  const onConflict = node['onConflictClause'] as Node | undefined;
  if (onConflict?.['action'] === 'ONCONFLICT_UPDATE') return upsert(node, onConflict, ctx, positions);
  const pending = new Set<string>();
  const inserted: Datum[][] = [];
  for (const values of proposedRows(node, ctx, positions)) {
    try {
      checkKey(ctx, values, null, pending);
    } catch (err) {
      // ON CONFLICT DO NOTHING: a taken key skips the row.
      if (onConflict !== undefined && err instanceof PgError && err.code === SqlState.UniqueViolation) continue;
      throw err;
    }
    inserted.push(values);
  }
  const heap = ctx.state.heap(def.oid);
  for (const values of inserted) ctx.log(rec.heapInsert(ctx.xid(), { rel: def.oid, ctid: heap.freeSlot(), cid: ctx.commandId, values }));
  const ret = returning(node, ctx, inserted);
  return { command: 'INSERT', rowCount: inserted.length, ...ret };
}

/** The proposed rows of an INSERT's VALUES or SELECT, defaults filled in and checked. */
function proposedRows(node: Node, ctx: DmlContext, positions: readonly number[]): Datum[][] {
  const def = ctx.table;
  const query = (node['selectStmt'] as Node)['SelectStmt'] as Node;
  const lists = query['valuesLists'] as Node[] | undefined;
  const fromSelect = lists === undefined ? ctx.select(query) : null;
  const itemLists: (readonly Datum[] | Node[])[] = fromSelect !== null ? [...fromSelect.values] : lists!.map((l) => (unwrap(l)[1]['items'] as Node[]) ?? []);
  const defaultOf = (i: number): Datum => {
    const d = def.columns[i]!.default;
    if (d === null) return null;
    return d.kind === 'const' ? d.value : ctx.expr.functions.nextval(d.sequence);
  };
  return itemLists.map((listOrRow) => {
    if (listOrRow.length > positions.length) throw new PgError({ code: SqlState.SyntaxError, message: 'INSERT has more expressions than target columns' });
    const given = new Map<number, Datum>();
    listOrRow.forEach((item, i) => {
      const column = def.columns[positions[i]!]!;
      if (fromSelect !== null) given.set(positions[i]!, coerce(item as Datum, column.type));
      else if (unwrap(item as Node)[0] !== 'SetToDefault') given.set(positions[i]!, coerce(compileExpr(item as Node, ctx.expr).eval([]), column.type));
    });
    const values: Datum[] = def.columns.map((_, i) => (given.has(i) ? given.get(i)! : defaultOf(i)));
    def.columns.forEach((c, i) => { values[i] = coerce(values[i] ?? null, c.type); });
    checkNotNull(ctx, values);
    return values;
  });
}

/**
 * INSERT ... ON CONFLICT DO UPDATE: each proposed row is inserted, or, if its key is taken
 * by a live row, that row is updated with SET (where `excluded.x` is the proposed value and
 * an optional WHERE may skip it). Under REPEATABLE READ the row must be one the snapshot
 * sees, else it is a serialization failure, as in PostgreSQL.
 */
function upsert(node: Node, onConflict: Node, ctx: DmlContext, positions: readonly number[]): QueryResult {
  const def = ctx.table;
  if (def.primaryKey === null) {
    throw new PgError({ code: SqlState.InvalidColumnReference, message: 'there is no unique or exclusion constraint matching the ON CONFLICT specification' });
  }
  const width = def.columns.length;
  const both: ExprContext = { ...ctx.expr, excludedOffset: width };
  const sets = ((onConflict['targetList'] as Node[]) ?? []).map((t) => {
    const res = unwrap(t)[1];
    const name = res['name'] as string;
    const index = def.columns.findIndex((c) => c.name === name);
    if (index < 0) throw new PgError({ code: SqlState.UndefinedColumn, message: `column "${name}" of relation "${def.name}" does not exist` });
    return { index, value: compileExpr(res['val'] as Node, both) };
  });
  const when = predicate(onConflict['whereClause'] as Node | undefined, both);
  const plan: ({ kind: 'insert'; values: Datum[] } | { kind: 'update'; ctid: Ctid; values: Datum[] })[] = [];
  const seen = new Set<string>();
  for (const proposed of proposedRows(node, ctx, positions)) {
    const key = indexKey(proposed, def.primaryKey);
    if (seen.has(key)) {
      throw new PgError({
        code: SqlState.CardinalityViolation, message: 'ON CONFLICT DO UPDATE command cannot affect row a second time',
        hint: 'Ensure that no rows proposed for insertion within the same command have duplicate constrained values.',
      });
    }
    seen.add(key);
    const ctid = conflictingVersion(ctx, proposed, null);
    if (ctid === null) {
      plan.push({ kind: 'insert', values: proposed });
      continue;
    }
    const existing = ctx.state.heap(def.oid).get(ctid)!;
    if (ctx.isolation !== 'read committed' && !isVisible(existing, ctx.snapshot, ctx.own, ctx.state.clog)) {
      throw new PgError({ code: SqlState.SerializationFailure, message: 'could not serialize access due to concurrent update' });
    }
    const row = [...existing.values, ...proposed];
    if (!when(row)) continue;
    const values = [...existing.values];
    for (const set of sets) values[set.index] = coerce(set.value.eval(row), def.columns[set.index]!.type);
    checkNotNull(ctx, values);
    if (indexKey(values, def.primaryKey) !== key) checkKey(ctx, values, ctid, new Set());
    plan.push({ kind: 'update', ctid, values });
  }
  const heap = ctx.state.heap(def.oid);
  const touched: Datum[][] = [];
  for (const step of plan) {
    if (step.kind === 'insert') ctx.log(rec.heapInsert(ctx.xid(), { rel: def.oid, ctid: heap.freeSlot(), cid: ctx.commandId, values: step.values }));
    else ctx.log(rec.heapUpdate(ctx.xid(), { rel: def.oid, old: step.ctid, ctid: heap.freeSlot(), cid: ctx.commandId, values: step.values }));
    touched.push(step.values);
  }
  const ret = returning(node, ctx, touched);
  return { command: 'INSERT', rowCount: touched.length, ...ret };
}

/** The versions a statement targets, checked for concurrent changes before anything is done. */
function targets(node: Node, ctx: DmlContext): [Ctid, HeapTuple][] {
  const where = predicate(node['whereClause'] as Node | undefined, ctx.expr);
  const found: [Ctid, HeapTuple][] = [];
  for (const [ctid, tuple] of ctx.state.heap(ctx.table.oid).scan()) {
    if (!isVisible(tuple, ctx.snapshot, ctx.own, ctx.state.clog) || !where(tuple.values)) continue;
    if (tuple.xmax !== InvalidXid && !ctx.own.xids.has(tuple.xmax) && !ctx.state.clog.isAborted(tuple.xmax)) {
      if (running(ctx, tuple.xmax)) throw new RowConflict(tuple.xmax);
      if (!ctx.state.clog.isCommitted(tuple.xmax)) {
        found.push([ctid, tuple]); // its deleter is gone without committing: the row is live
        continue;
      }
      // Changed by a transaction that committed after our snapshot.
      if (ctx.isolation !== 'read committed') {
        throw new PgError({ code: SqlState.SerializationFailure, message: 'could not serialize access due to concurrent update' });
      }
      // READ COMMITTED: the statement is retried with a new snapshot, which sees the new version.
      throw new RowConflict(tuple.xmax);
    }
    found.push([ctid, tuple]);
  }
  return found;
}

export function executeUpdate(node: Node, ctx: DmlContext): QueryResult {
  const def = ctx.table;
  const sets = ((node['targetList'] as Node[]) ?? []).map((t) => {
    const res = unwrap(t)[1];
    const name = res['name'] as string;
    const index = def.columns.findIndex((c) => c.name === name);
    if (index < 0) throw new PgError({ code: SqlState.UndefinedColumn, message: `column "${name}" of relation "${def.name}" does not exist` });
    return { index, value: compileExpr(res['val'] as Node, ctx.expr) };
  });
  const rows = targets(node, ctx);
  const pending = new Set<string>();
  const changes = rows.map(([ctid, tuple]) => {
    const values = [...tuple.values];
    for (const set of sets) values[set.index] = coerce(set.value.eval(tuple.values), def.columns[set.index]!.type);
    checkNotNull(ctx, values);
    if (def.primaryKey !== null && indexKey(values, def.primaryKey) !== indexKey(tuple.values, def.primaryKey)) checkKey(ctx, values, ctid, pending);
    return { ctid, values };
  });
  const heap = ctx.state.heap(def.oid);
  for (const { ctid, values } of changes) {
    ctx.log(rec.heapUpdate(ctx.xid(), { rel: def.oid, old: ctid, ctid: heap.freeSlot(), cid: ctx.commandId, values }));
  }
  const ret = returning(node, ctx, changes.map((c) => c.values));
  return { command: 'UPDATE', rowCount: changes.length, ...ret };
}

export function executeDelete(node: Node, ctx: DmlContext): QueryResult {
  const rows = targets(node, ctx);
  for (const [ctid] of rows) ctx.log(rec.heapDelete(ctx.xid(), { rel: ctx.table.oid, ctid, cid: ctx.commandId }));
  const ret = returning(node, ctx, rows.map(([, t]) => t.values));
  return { command: 'DELETE', rowCount: rows.length, ...ret };
}

