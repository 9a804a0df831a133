/*
 * system.ts — views and functions the server serves from outside the engine.
 *
 * pg_stat_replication, pg_stat_wal_receiver and pg_replication_slots describe walsenders,
 * the WAL receiver and slots: state the engine does not own. Likewise functions such as
 * pg_last_wal_receive_lsn() or pg_create_physical_replication_slot(). The actor that runs
 * the engine passes SystemHooks with each statement; the engine asks them for a pg_* name
 * it has no view of its own, and for any function it does not implement itself.
 *
 * Each statement gets one SystemCalls: a view is fetched once, and a function called once
 * for the same arguments, however many rows or evaluations ask. That is what makes
 * `SELECT pg_create_physical_replication_slot('s1')` create one slot. A function's type is
 * known only from its answer; a record answer in a select list prints as PostgreSQL's
 * record text, `(s1,0/3000148)`, and in FROM gives its columns.
 */
import { assert } from '../assert.js';
import type { TypeName } from '../storage/catalog.js';
import type { Datum } from '../storage/heap.js';

export interface SystemColumn {
  readonly name: string;
  readonly type: TypeName;
}

export interface SystemView {
  readonly columns: readonly SystemColumn[];
  readonly rows: readonly (readonly Datum[])[];
}

/** A scalar answer, or a record with named columns. */
export type SystemCallResult =
  | { readonly value: Datum; readonly type: TypeName }
  | { readonly columns: readonly SystemColumn[]; readonly row: readonly Datum[] };

export interface SystemHooks {
  /** A system view's columns and rows (pg_stat_replication, pg_stat_wal_receiver, pg_replication_slots), or undefined if the server has none by that name. */
  view(name: string): SystemView | undefined;
  /** A function the server implements (pg_last_wal_receive_lsn(), pg_create_physical_replication_slot(...), ...): undefined when it does not know the name; throws PgError for errors; returns a scalar, or a record with named columns. */
  call(name: string, args: readonly Datum[]): SystemCallResult | undefined;
}

/** One statement's use of the hooks: each view fetched once, each call made once per distinct arguments. */
export class SystemCalls {
  private readonly views = new Map<string, SystemView | undefined>();
  private readonly calls = new Map<string, SystemCallResult | undefined>();

  constructor(private readonly hooks: SystemHooks | undefined) {}

  view(name: string): SystemView | undefined {
    if (this.hooks === undefined) return undefined;
    if (!this.views.has(name)) {
      const view = this.hooks.view(name);
      if (view !== undefined) {
        for (const row of view.rows) assert(row.length === view.columns.length, `a row of ${name} has ${row.length} values for ${view.columns.length} columns`);
      }
      this.views.set(name, view);
    }
    return this.views.get(name);
  }

  call(name: string, args: readonly Datum[]): SystemCallResult | undefined {
    if (this.hooks === undefined) return undefined;
    const key = `${name}(${JSON.stringify(args)})`;
    if (!this.calls.has(key)) {
      const result = this.hooks.call(name, args);
      if (result !== undefined && 'row' in result) {
        assert(result.row.length === result.columns.length, `${name}() answered ${result.row.length} values for ${result.columns.length} columns`);
      }
      this.calls.set(key, result);
    }
    return this.calls.get(key);
  }
}

/** record_out: `(a,b)`, NULL as nothing, quoted when empty or holding a quote, backslash, parenthesis, comma or space. */
export function recordText(columns: readonly SystemColumn[], row: readonly Datum[]): string {
  const fields = row.map((value, i) => {
    if (value === null) return '';
    const text = datumText(value, columns[i]!.type);
    if (text !== '' && !/["\\(),\s]/.test(text)) return text;
    return `"${text.replace(/["\\]/g, (c) => c + c)}"`;
  });
  return `(${fields.join(',')})`;
}

/** A value as PostgreSQL's output function prints it (TimeZone UTC). */
function datumText(value: Exclude<Datum, null>, type: TypeName): string {
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (type === 'timestamptz' && typeof value === 'number') {
    const [date, time] = new Date(value).toISOString().slice(0, -1).split('T') as [string, string];
    const [clock, fraction] = time.split('.') as [string, string];
    const kept = fraction.replace(/0+$/, '');
    return `${date} ${clock}${kept === '' ? '' : `.${kept}`}+00`;
  }
  return String(value);
}
