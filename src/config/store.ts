/*
 * store.ts — the values in force: defaults, then postgresql.conf, then postgresql.auto.conf,
 * then what the server was started with, then (per session) SET and SET LOCAL.
 *
 * A ServerConfig is the server-wide layer, rebuilt from the files at start and at reload;
 * a SessionConfig layers a session's SET values over it. Changing a `postmaster` setting at
 * reload is refused for now, as PostgreSQL does ("parameter ... cannot be changed without
 * restarting the server"), and the old value stays in force; bad values in a file name the
 * file and line. SHOW, RESET and ALTER SYSTEM all go through here, so their errors are the
 * same everywhere.
 */
import { PgError, SqlState } from '../errors.js';
import { parseConfFile, type ConfEntry } from './conffile.js';
import { checkValue, formatValue, requireSetting, SETTINGS, type SettingDefinition, type SettingValue } from './settings.js';

export type SettingSource = 'default' | 'configuration file' | 'command line' | 'session' | 'override';

export interface AppliedFile {
  readonly path: string;
  readonly text: string;
}

export interface ReloadReport {
  /** Settings whose value changed. */
  readonly changed: readonly string[];
  /** Problems, as PostgreSQL logs them at reload (the rest of the file still applies). */
  readonly problems: readonly string[];
}

export class ServerConfig {
  private values = new Map<string, { value: SettingValue; source: SettingSource }>();
  private started = false;

  constructor(private readonly overrides: Readonly<Record<string, string>> = {}, private readonly internal: Readonly<Record<string, SettingValue>> = {}) {
    for (const def of SETTINGS) this.values.set(def.name, { value: def.default, source: 'default' });
  }

  /**
   * Loads the files (postgresql.conf, then postgresql.auto.conf) and the start options.
   * At start, any bad entry is fatal (thrown); at reload, bad entries are reported and skipped.
   */
  load(files: readonly AppliedFile[]): ReloadReport {
    const next = new Map<string, { value: SettingValue; source: SettingSource }>();
    for (const def of SETTINGS) next.set(def.name, { value: def.default, source: 'default' });
    const problems: string[] = [];
    const apply = (name: string, text: string, source: SettingSource, where: string): void => {
      try {
        const def = requireSetting(name);
        if (def.context === 'internal') {
          throw new PgError({ code: SqlState.CantChangeRuntimeParam, message: `parameter "${def.name}" cannot be changed` });
        }
        next.set(def.name, { value: checkValue(def, text), source });
      } catch (err) {
        if (!(err instanceof PgError)) throw err;
        const located = `${err.message}${where}`;
        if (!this.started) throw new PgError({ code: err.code, severity: 'FATAL', message: located, ...(err.hint === undefined ? {} : { hint: err.hint }) });
        problems.push(located);
      }
    };
    for (const file of files) {
      let entries: ConfEntry[];
      try {
        entries = parseConfFile(file.text, file.path);
      } catch (err) {
        if (!(err instanceof PgError) || !this.started) throw err;
        problems.push(err.message);
        continue;
      }
      for (const e of entries) apply(e.name, e.value, 'configuration file', ` (in file "${file.path}" line ${e.line})`);
    }
    for (const [name, text] of Object.entries(this.overrides)) apply(name, text, 'command line', '');
    for (const [name, value] of Object.entries(this.internal)) next.set(name, { value, source: 'override' });
    const changed: string[] = [];
    for (const def of SETTINGS) {
      const before = this.values.get(def.name)!;
      const after = next.get(def.name)!;
      if (before.value === after.value) continue;
      if (this.started && def.context === 'postmaster') {
        problems.push(`parameter "${def.name}" cannot be changed without restarting the server`);
        next.set(def.name, before);
        continue;
      }
      changed.push(def.name);
    }
    this.values = next;
    this.started = true;
    return { changed, problems };
  }

  get(name: string): SettingValue {
    return this.values.get(requireSetting(name).name)!.value;
  }

  source(name: string): SettingSource {
    return this.values.get(requireSetting(name).name)!.source;
  }
}

/** A session's view: SET and SET LOCAL over the server's values. */
export class SessionConfig {
  private readonly session = new Map<string, SettingValue>();
  private local = new Map<string, SettingValue>();

  constructor(private readonly server: ServerConfig) {}

  get(name: string): SettingValue {
    const def = requireSetting(name);
    return this.local.get(def.name) ?? this.session.get(def.name) ?? this.server.get(def.name);
  }

  /** SHOW name. */
  show(name: string): string {
    const def = requireSetting(name);
    return formatValue(def, this.get(def.name));
  }

  /** SET [LOCAL] name = value; `local` lasts until the end of the current transaction. */
  set(name: string, text: string, local: boolean): void {
    const def = this.settable(name);
    const value = checkValue(def, text);
    (local ? this.local : this.session).set(def.name, value);
  }

  /** RESET name (and SET name TO DEFAULT). */
  reset(name: string): void {
    const def = this.settable(name);
    this.session.delete(def.name);
    this.local.delete(def.name);
  }

  /** End of transaction: SET LOCAL values go away. */
  endTransaction(): void {
    this.local = new Map();
  }

  private settable(name: string): SettingDefinition {
    const def = requireSetting(name);
    if (def.context === 'postmaster' || def.context === 'internal') {
      throw new PgError({
        code: SqlState.CantChangeRuntimeParam,
        message: def.context === 'internal' ? `parameter "${def.name}" cannot be changed` : `parameter "${def.name}" cannot be changed without restarting the server`,
      });
    }
    if (def.context === 'sighup') throw new PgError({ code: SqlState.CantChangeRuntimeParam, message: `parameter "${def.name}" cannot be changed now` });
    return def;
  }
}
