/*
 * conninfo.ts — connection strings as libpq reads them: `host=127.0.0.1 port=5432
 * user=repl application_name=s1`, the form primary_conninfo takes.
 *
 * Keywords and values are separated by `=` with optional spaces around it; a value may be
 * single-quoted, with `\'` and `\\` as escapes inside quotes or out. Unknown keywords and
 * malformed strings fail with libpq's messages ("invalid connection option", "missing "="
 * after ...", "unterminated quoted string in connection info string"). Rendering quotes
 * values when needed, so parse(render(x)) == x.
 */
import { PgError, SqlState } from '../errors.js';

/** The keywords walship understands (a subset of libpq's, the ones replication uses). */
export const CONNINFO_KEYWORDS = [
  'host', 'hostaddr', 'port', 'user', 'password', 'dbname', 'application_name', 'connect_timeout',
  'sslmode', 'options', 'channel_binding', 'target_session_attrs', 'passfile',
] as const;

export type ConninfoKeyword = (typeof CONNINFO_KEYWORDS)[number];
export type Conninfo = Partial<Record<ConninfoKeyword, string>>;

function invalid(message: string): PgError {
  return new PgError({ code: SqlState.InvalidParameterValue, message });
}

export function parseConninfo(text: string): Conninfo {
  const out: Conninfo = {};
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= text.length) return out;
    const keyStart = i;
    while (i < text.length && text[i] !== '=' && !/\s/.test(text[i]!)) i++;
    const keyword = text.slice(keyStart, i);
    skipSpace();
    if (text[i] !== '=') throw invalid(`missing "=" after "${keyword}" in connection info string`);
    i++;
    skipSpace();
    let value = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= text.length) throw invalid('unterminated quoted string in connection info string');
        const c = text[i]!;
        if (c === '\\' && i + 1 < text.length) { value += text[i + 1]; i += 2; continue; }
        if (c === "'") { i++; break; }
        value += c;
        i++;
      }
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < text.length) { value += text[i + 1]; i += 2; continue; }
        value += text[i];
        i++;
      }
    }
    if (!(CONNINFO_KEYWORDS as readonly string[]).includes(keyword)) throw invalid(`invalid connection option "${keyword}"`);
    out[keyword as ConninfoKeyword] = value;
  }
}

/** A connection string for `info`, quoting values that need it. */
export function renderConninfo(info: Conninfo): string {
  return Object.entries(info)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const needsQuotes = v === '' || /[\s'\\]/.test(v!);
      return `${k}=${needsQuotes ? `'${v!.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : v}`;
    })
    .join(' ');
}
