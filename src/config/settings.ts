/*
 * settings.ts — every setting walship knows, by its PostgreSQL name, with PostgreSQL's type,
 * unit, range, default and context, and the checking of a value given for it.
 *
 * Contexts say when a setting may change, as in pg_settings.context:
 *   internal    never (fixed at initdb, e.g. wal_segment_size)
 *   postmaster  at server start only
 *   sighup      in the configuration files, taking effect at reload (pg_reload_conf)
 *   user        also per session with SET
 * Values are kept in the setting's base unit (ms, s, MB, bytes...) as PostgreSQL keeps them;
 * `checkValue` turns user text into that, or into a PgError with PostgreSQL's wording.
 */
import { PgError, SqlState } from '../errors.js';
import { formatWithUnit, parseWithUnit, unitHint, type UnitKind } from './units.js';
import { parseStandbyNames } from '../replication/standby-names.js';

export type SettingContext = 'internal' | 'postmaster' | 'sighup' | 'user';
export type SettingValue = boolean | number | string;

interface Common {
  readonly name: string;
  readonly context: SettingContext;
  readonly description: string;
}

export type SettingDefinition = Common & (
  | { readonly type: 'bool'; readonly default: boolean }
  | { readonly type: 'integer'; readonly default: number; readonly min: number; readonly max: number; readonly unit?: { readonly kind: UnitKind; readonly base: number } }
  | { readonly type: 'real'; readonly default: number; readonly min: number; readonly max: number }
  | { readonly type: 'string'; readonly default: string; readonly check?: (value: string) => void }
  | { readonly type: 'enum'; readonly default: string; readonly values: readonly string[] }
);

const MS = { kind: 'time', base: 1000 } as const;
const S = { kind: 'time', base: 1_000_000 } as const;
const MB = { kind: 'memory', base: 1024 * 1024 } as const;
const BYTES = { kind: 'memory', base: 1 } as const;
const INT_MAX = 2_147_483_647;

export const SETTINGS: readonly SettingDefinition[] = [
  { name: 'synchronous_commit', type: 'enum', default: 'on', values: ['local', 'remote_write', 'remote_apply', 'on', 'off'], context: 'user', description: "Sets the current transaction's synchronization level." },
  { name: 'wal_writer_delay', type: 'integer', default: 200, min: 1, max: 10_000, unit: MS, context: 'sighup', description: 'Time between WAL flushes performed in the WAL writer.' },
  { name: 'wal_writer_flush_after', type: 'integer', default: 1024 * 1024, min: 0, max: INT_MAX, unit: BYTES, context: 'sighup', description: 'Amount of WAL written out by WAL writer that triggers a flush.' },
  { name: 'wal_segment_size', type: 'integer', default: 16 * 1024 * 1024, min: 1024 * 1024, max: 1024 * 1024 * 1024, unit: BYTES, context: 'internal', description: 'Shows the size of write ahead log segments.' },
  { name: 'wal_level', type: 'enum', default: 'replica', values: ['minimal', 'replica', 'logical'], context: 'postmaster', description: 'Sets the level of information written to the WAL.' },
  { name: 'fsync', type: 'bool', default: true, context: 'sighup', description: 'Forces synchronization of updates to disk.' },
  { name: 'checkpoint_timeout', type: 'integer', default: 300, min: 30, max: 86_400, unit: S, context: 'sighup', description: 'Sets the maximum time between automatic WAL checkpoints.' },
  { name: 'max_wal_size', type: 'integer', default: 1024, min: 2, max: INT_MAX, unit: MB, context: 'sighup', description: 'Sets the WAL size that triggers a checkpoint.' },
  { name: 'min_wal_size', type: 'integer', default: 80, min: 2, max: INT_MAX, unit: MB, context: 'sighup', description: 'Sets the minimum size to shrink the WAL to.' },
  { name: 'wal_keep_size', type: 'integer', default: 0, min: 0, max: INT_MAX, unit: MB, context: 'sighup', description: 'Sets the size of WAL files held for standby servers.' },
  { name: 'max_slot_wal_keep_size', type: 'integer', default: -1, min: -1, max: INT_MAX, unit: MB, context: 'sighup', description: 'Sets the maximum WAL size that can be reserved by replication slots.' },
  { name: 'max_connections', type: 'integer', default: 100, min: 1, max: 262_143, context: 'postmaster', description: 'Sets the maximum number of concurrent connections.' },
  { name: 'max_wal_senders', type: 'integer', default: 10, min: 0, max: 262_143, context: 'postmaster', description: 'Sets the maximum number of simultaneously running WAL sender processes.' },
  { name: 'max_replication_slots', type: 'integer', default: 10, min: 0, max: 262_143, context: 'postmaster', description: 'Sets the maximum number of simultaneously defined replication slots.' },
  { name: 'hot_standby', type: 'bool', default: true, context: 'postmaster', description: 'Allows connections and queries during recovery.' },
  { name: 'hot_standby_feedback', type: 'bool', default: false, context: 'sighup', description: 'Allows feedback from a hot standby to the primary that will avoid query conflicts.' },
  { name: 'deadlock_timeout', type: 'integer', default: 1_000, min: 1, max: INT_MAX, unit: MS, context: 'sighup', description: 'Sets the time to wait on a lock before checking for deadlock.' },
  { name: 'vacuum_defer_cleanup_age', type: 'integer', default: 0, min: 0, max: 1_000_000, context: 'sighup', description: 'Number of transactions by which VACUUM and HOT cleanup should be deferred, if any.' },
  { name: 'max_standby_streaming_delay', type: 'integer', default: 30_000, min: -1, max: INT_MAX, unit: MS, context: 'sighup', description: 'Sets the maximum delay before canceling queries when a hot standby server is processing streamed WAL data.' },
  { name: 'max_standby_archive_delay', type: 'integer', default: 30_000, min: -1, max: INT_MAX, unit: MS, context: 'sighup', description: 'Sets the maximum delay before canceling queries when a hot standby server is processing archived WAL data.' },
  { name: 'wal_sender_timeout', type: 'integer', default: 60_000, min: 0, max: INT_MAX, unit: MS, context: 'user', description: 'Sets the maximum time to wait for WAL replication.' },
  { name: 'wal_receiver_timeout', type: 'integer', default: 60_000, min: 0, max: INT_MAX, unit: MS, context: 'sighup', description: 'Sets the maximum wait time to receive data from the sending server.' },
  { name: 'wal_receiver_status_interval', type: 'integer', default: 10, min: 0, max: INT_MAX / 1000, unit: S, context: 'sighup', description: 'Sets the maximum interval between WAL receiver status reports to the sending server.' },
  { name: 'wal_retrieve_retry_interval', type: 'integer', default: 5000, min: 1, max: INT_MAX, unit: MS, context: 'sighup', description: 'Sets the time to wait before retrying to retrieve WAL after a failed attempt.' },
  { name: 'primary_conninfo', type: 'string', default: '', context: 'sighup', description: 'Sets the connection string to be used to connect to the sending server.' },
  { name: 'primary_slot_name', type: 'string', default: '', context: 'sighup', description: 'Sets the name of the replication slot to use on the sending server.' },
  {
    name: 'synchronous_standby_names', type: 'string', default: '', context: 'sighup', description: 'Number of synchronous standbys and list of names of potential synchronous ones.',
    check: (value) => void parseStandbyNames(value),
  },
  { name: 'archive_mode', type: 'enum', default: 'off', values: ['always', 'on', 'off'], context: 'postmaster', description: 'Allows archiving of WAL files using archive_command.' },
  { name: 'archive_command', type: 'string', default: '', context: 'sighup', description: 'Sets the shell command that will be called to archive a WAL file.' },
  { name: 'archive_library', type: 'string', default: '', context: 'sighup', description: 'Sets the library that will be called to archive a WAL file.' },
  { name: 'basic_archive.archive_directory', type: 'string', default: '', context: 'sighup', description: 'Archive file destination directory.' },
  { name: 'basic_archive.compression', type: 'enum', default: 'off', values: ['off', 'gzip'], context: 'sighup', description: 'Sets the method used to compress archived WAL files.' },
  { name: 'archive_timeout', type: 'integer', default: 0, min: 0, max: INT_MAX / 2, unit: S, context: 'sighup', description: 'Sets the amount of time to wait before forcing a switch to the next WAL file.' },
  { name: 'restore_command', type: 'string', default: '', context: 'sighup', description: 'Sets the shell command that will be called to retrieve an archived WAL file.' },
  { name: 'restore_library', type: 'string', default: '', context: 'sighup', description: 'Sets the library that will be called to retrieve an archived WAL file (basic_archive: from basic_archive.archive_directory).' },
  { name: 'promote_trigger_file', type: 'string', default: '', context: 'sighup', description: 'Specifies a file name whose presence ends recovery in the standby.' },
  { name: 'archive_cleanup_command', type: 'string', default: '', context: 'sighup', description: 'Sets the shell command that will be executed at every restart point.' },
  { name: 'recovery_target_timeline', type: 'string', default: 'latest', context: 'postmaster', description: 'Specifies the timeline to recover into.' },
  { name: 'default_transaction_isolation', type: 'enum', default: 'read committed', values: ['serializable', 'repeatable read', 'read committed', 'read uncommitted'], context: 'user', description: 'Sets the transaction isolation level of each new transaction.' },
  { name: 'default_transaction_read_only', type: 'bool', default: false, context: 'user', description: 'Sets the default read-only status of new transactions.' },
  { name: 'transaction_read_only', type: 'bool', default: false, context: 'user', description: "Sets the current transaction's read-only status." },
  { name: 'in_hot_standby', type: 'bool', default: false, context: 'internal', description: 'Shows whether hot standby is currently active.' },
  { name: 'statement_timeout', type: 'integer', default: 0, min: 0, max: INT_MAX, unit: MS, context: 'user', description: 'Sets the maximum allowed duration of any statement.' },
  { name: 'lock_timeout', type: 'integer', default: 0, min: 0, max: INT_MAX, unit: MS, context: 'user', description: 'Sets the maximum allowed duration of any wait for a lock.' },
  { name: 'application_name', type: 'string', default: '', context: 'user', description: 'Sets the application name to be reported in statistics and logs.' },
  { name: 'cluster_name', type: 'string', default: '', context: 'postmaster', description: 'Sets the name of the cluster, which is included in the process title.' },
];

const BY_NAME = new Map(SETTINGS.map((s) => [s.name, s]));

/** Setting names are case-insensitive, as in PostgreSQL. */
export function findSetting(name: string): SettingDefinition | undefined {
  return BY_NAME.get(name.toLowerCase());
}

export function requireSetting(name: string): SettingDefinition {
  const def = findSetting(name);
  if (def === undefined) throw new PgError({ code: SqlState.UndefinedObject, message: `unrecognized configuration parameter "${name}"` });
  return def;
}

const TRUE_WORDS = ['true', 'yes', 'on'];
const FALSE_WORDS = ['false', 'no', 'off'];

/** PostgreSQL's parse_bool: true/false/yes/no/on/off/1/0 and unambiguous prefixes of them. */
export function parseBool(text: string): boolean | null {
  const v = text.trim().toLowerCase();
  if (v === '1') return true;
  if (v === '0') return false;
  if (v.length === 0) return null;
  const t = TRUE_WORDS.filter((w) => w.startsWith(v));
  const f = FALSE_WORDS.filter((w) => w.startsWith(v));
  if (t.length > 0 && f.length === 0) return true;
  if (f.length > 0 && t.length === 0) return false;
  return null;
}

function invalid(def: SettingDefinition, text: string, hint?: string): PgError {
  return new PgError({
    code: SqlState.InvalidParameterValue,
    message: `invalid value for parameter "${def.name}": "${text}"`,
    ...(hint === undefined ? {} : { hint }),
  });
}

/** The value `text` stands for, in the setting's base unit; a PgError when it is not valid. */
export function checkValue(def: SettingDefinition, text: string): SettingValue {
  switch (def.type) {
    case 'bool': {
      const value = parseBool(text);
      if (value === null) throw new PgError({ code: SqlState.InvalidParameterValue, message: `parameter "${def.name}" requires a Boolean value` });
      return value;
    }
    case 'integer':
    case 'real': {
      const unit = def.type === 'integer' ? def.unit : undefined;
      const value = parseWithUnit(text, unit?.kind ?? null, unit?.base ?? 1, def.type === 'integer');
      if (value === null) throw invalid(def, text, unit === undefined ? undefined : unitHint(unit.kind));
      if (value < def.min || value > def.max) {
        const show = (n: number) => (unit === undefined ? String(n) : `${n} ${unitSuffix(unit)}`);
        throw new PgError({
          code: SqlState.InvalidParameterValue,
          message: `${show(value)} is outside the valid range for parameter "${def.name}" (${show(def.min)} .. ${show(def.max)})`,
        });
      }
      return value;
    }
    case 'enum': {
      const value = def.values.find((v) => v === text.trim().toLowerCase());
      if (value === undefined) throw invalid(def, text, `Available values: ${def.values.join(', ')}.`);
      return value;
    }
    case 'string':
      def.check?.(text);
      return text;
  }
}

function unitSuffix(unit: { readonly kind: UnitKind; readonly base: number }): string {
  if (unit.kind === 'time') return unit.base === 1000 ? 'ms' : unit.base === 1_000_000 ? 's' : 'us';
  return unit.base === 1024 * 1024 ? 'MB' : unit.base === 1024 ? 'kB' : 'B';
}

/** As SHOW prints it: "on", "200ms", "1GB", "read committed". */
export function formatValue(def: SettingDefinition, value: SettingValue): string {
  if (def.type === 'bool') return value ? 'on' : 'off';
  if (def.type === 'integer' && def.unit !== undefined && typeof value === 'number' && value >= 0) {
    return formatWithUnit(value, def.unit.kind, def.unit.base);
  }
  return String(value);
}
