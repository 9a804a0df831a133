/*
 * types.ts — SQL types as walship stores them and hands them to JavaScript.
 *
 * int2/int4/int8/float4/float8/numeric are JavaScript numbers, text and varchar strings,
 * bool booleans, timestamptz Dates stored as epoch milliseconds, pg_lsn strings in X/X form,
 * bytea Uint8Arrays, interval and record PostgreSQL's text for them ('00:00:00.001234',
 * '(s1,0/3000148)'), NULL null. `coerce` converts a value to a column's type as an INSERT or
 * UPDATE does (assignment casts), with PostgreSQL's error texts for bad input.
 */
import { PgError, SqlState } from '../errors.js';
import type { TypeName } from '../storage/catalog.js';
import type { Datum } from '../storage/heap.js';
import { formatLsn, parseLsn } from '../wal/lsn.js';

/** Maps a parse tree's type name (last element of TypeName.names) to ours. */
export function typeFromName(name: string): TypeName | null {
  switch (name) {
    case 'int2': case 'smallint': return 'int2';
    case 'int4': case 'int': case 'integer': case 'serial': case 'serial4': return 'int4';
    case 'int8': case 'bigint': case 'bigserial': case 'serial8': return 'int8';
    case 'float4': case 'real': return 'float4';
    case 'float8': case 'double precision': return 'float8';
    case 'numeric': case 'decimal': return 'numeric';
    case 'text': return 'text';
    case 'varchar': case 'bpchar': case 'char': return 'varchar';
    case 'bool': case 'boolean': return 'bool';
    case 'timestamptz': case 'timestamp': return 'timestamptz';
    case 'pg_lsn': return 'pg_lsn';
    case 'bytea': return 'bytea';
    case 'interval': return 'interval';
    default: return null;
  }
}

/** PostgreSQL's name for a type in error messages. */
export function typeDisplayName(type: TypeName): string {
  switch (type) {
    case 'int2': return 'smallint';
    case 'int4': return 'integer';
    case 'int8': return 'bigint';
    case 'float4': return 'real';
    case 'float8': return 'double precision';
    case 'varchar': return 'character varying';
    case 'bool': return 'boolean';
    case 'timestamptz': return 'timestamp with time zone';
    default: return type;
  }
}

const RANGES: Partial<Record<TypeName, [number, number, string]>> = {
  int2: [-32768, 32767, 'smallint out of range'],
  int4: [-2147483648, 2147483647, 'integer out of range'],
  int8: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'bigint out of range'],
};

function badInput(type: TypeName, value: unknown): PgError {
  return new PgError({ code: SqlState.InvalidTextRepresentation, message: `invalid input syntax for type ${typeDisplayName(type)}: "${String(value)}"` });
}

/** `value` as a `type` (an assignment cast). */
export function coerce(value: Datum, type: TypeName): Datum {
  if (value === null) return null;
  switch (type) {
    case 'int2': case 'int4': case 'int8': {
      let n: number;
      if (typeof value === 'number') n = Math.round(value);
      else if (typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)) n = Number(value);
      else if (typeof value === 'boolean') throw new PgError({ code: SqlState.DatatypeMismatch, message: `column is of type ${typeDisplayName(type)} but expression is of type boolean` });
      else throw badInput(type, value);
      const [min, max, message] = RANGES[type]!;
      if (n < min || n > max) throw new PgError({ code: SqlState.NumericValueOutOfRange, message });
      return n;
    }
    case 'float4': case 'float8': case 'numeric': {
      if (typeof value === 'number') return value;
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
      throw badInput(type, value);
    }
    case 'text': case 'varchar':
      if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
      return typeof value === 'boolean' ? (value ? 'true' : 'false') : String(value);
    case 'bool': {
      if (typeof value === 'boolean') return value;
      const v = String(value).trim().toLowerCase();
      if (['t', 'true', 'y', 'yes', 'on', '1'].includes(v)) return true;
      if (['f', 'false', 'n', 'no', 'off', '0'].includes(v)) return false;
      throw badInput(type, value);
    }
    case 'timestamptz': {
      if (typeof value === 'number') return value;
      const ms = Date.parse(String(value));
      if (Number.isNaN(ms)) throw badInput(type, value);
      return ms;
    }
    case 'pg_lsn':
      try {
        return formatLsn(parseLsn(String(value)));
      } catch {
        throw badInput(type, value);
      }
    case 'bytea':
      if (value instanceof Uint8Array) return value;
      if (typeof value === 'string' && value.startsWith('\\x')) return new Uint8Array(Buffer.from(value.slice(2), 'hex'));
      return new Uint8Array(Buffer.from(String(value)));
    case 'interval':
      // Kept as PostgreSQL prints it; walship does no interval arithmetic.
      if (typeof value !== 'string' || value.trim() === '') throw badInput(type, value);
      return value.trim();
    case 'record':
      return String(value);
  }
}

/** The JavaScript value a client receives for a stored datum. */
export function toClient(value: Datum, type: TypeName | 'unknown'): unknown {
  if (value === null) return null;
  if (type === 'timestamptz' && typeof value === 'number') return new Date(value);
  return value;
}
