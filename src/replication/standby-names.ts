/*
 * standby-names.ts — synchronous_standby_names, read as PostgreSQL 15 reads it.
 *
 * The primary's postmaster checks the setting when it is set or reloaded (PostgreSQL's
 * check_synchronous_standby_names); every walsender and syncrep.ts then work from the parsed
 * form, never from the text. The forms are
 *
 *   FIRST n (name, ...)    priority: the n listed standbys that come first are synchronous
 *   n (name, ...)          the same as FIRST n
 *   ANY n (name, ...)      quorum: any n of the listed standbys
 *   name, ...              the form before 9.6: FIRST 1 of the list
 *
 * and the empty string, which turns synchronous replication off (null here).
 *
 * Tokens follow PostgreSQL's syncrep_scanner.l: FIRST and ANY in any case are keywords,
 * whitespace is space, tab, newline, carriage return, form feed and vertical tab, a name is
 * a letter, underscore or non-ASCII character followed by those, digits or `$`, a run of
 * digits is a number (and may also stand as a name), `*` is a name that matches every
 * standby, and a double-quoted name keeps any characters, with "" for a quote inside.
 * Names are kept as written, unquoted ones too: PostgreSQL folds no case here, because
 * standbys are matched against their application_name case-insensitively anyway (quoted
 * or not). A value of only whitespace is not empty: it is a syntax error, as in PostgreSQL.
 *
 * A bad value raises the error a user sees when a setting's check hook refuses it. A
 * syntax error is SQLSTATE 42601 with GUC's standard message, `invalid value for parameter
 * "synchronous_standby_names": "<value>"`, and the parser's text as the DETAIL, which names
 * the offending token: `syntax error at or near "x"`, `syntax error at end of input`, or
 * `unterminated quoted identifier at end of input`. Like PostgreSQL's bison parser, the
 * token shown for a quoted name is its closing quote. A count that is not positive is
 * 22023 with the hook's own message, `number of synchronous standbys (0) must be greater
 * than zero`. The count is read as C's atoi reads it on a 64-bit Linux server, so a count
 * past the range of an int wraps as it does there.
 */
import { PgError, SqlState } from '../errors.js';

export interface StandbyNames {
  /** FIRST (and the forms without a keyword) is 'priority'; ANY is 'quorum'. */
  readonly method: 'priority' | 'quorum';
  /** How many synchronous standbys a commit waits for; always at least 1. */
  readonly num: number;
  /** The names in the order written; `*` matches every standby. */
  readonly members: readonly string[];
}

const SETTING = 'synchronous_standby_names';

type TokenKind = 'NAME' | 'NUM' | 'ANY' | 'FIRST' | ',' | '(' | ')' | 'JUNK' | 'END';

interface Token {
  readonly kind: TokenKind;
  /** The name or the digits, for NAME and NUM. */
  readonly value: string;
  /** What PostgreSQL's scanner last matched (its yytext): "" at the end of the input. */
  readonly matched: string;
  /** Set when the scanner itself reported the problem (an unterminated quote). */
  readonly scanError?: string;
}

const isSpace = (c: string): boolean => ' \t\n\r\f\v'.includes(c);
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
/** The scanner's [A-Za-z\200-\377_]: any non-ASCII character is a letter of a name. */
const isNameStart = (c: string): boolean =>
  (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c.charCodeAt(0) >= 0x80;
const isNameChar = (c: string): boolean => isNameStart(c) || isDigit(c) || c === '$';

function scan(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (isSpace(c)) {
      i++;
    } else if (c === '"') {
      let name = '';
      let j = i + 1;
      for (;;) {
        const close = text.indexOf('"', j);
        if (close < 0) {
          const scanError = 'unterminated quoted identifier at end of input';
          tokens.push({ kind: 'JUNK', value: '', matched: '', scanError });
          return tokens;
        }
        name += text.slice(j, close);
        if (text[close + 1] !== '"') {
          j = close + 1;
          break;
        }
        name += '"';
        j = close + 2;
      }
      tokens.push({ kind: 'NAME', value: name, matched: '"' });
      i = j;
    } else if (isNameStart(c)) {
      let j = i + 1;
      while (j < text.length && isNameChar(text[j] as string)) j++;
      const word = text.slice(i, j);
      const lower = word.toLowerCase();
      const kind: TokenKind = lower === 'any' ? 'ANY' : lower === 'first' ? 'FIRST' : 'NAME';
      tokens.push({ kind, value: word, matched: word });
      i = j;
    } else if (isDigit(c)) {
      let j = i + 1;
      while (j < text.length && isDigit(text[j] as string)) j++;
      const digits = text.slice(i, j);
      tokens.push({ kind: 'NUM', value: digits, matched: digits });
      i = j;
    } else if (c === '*') {
      tokens.push({ kind: 'NAME', value: '*', matched: '*' });
      i++;
    } else if (c === ',' || c === '(' || c === ')') {
      tokens.push({ kind: c, value: c, matched: c });
      i++;
    } else {
      tokens.push({ kind: 'JUNK', value: c, matched: c });
      i++;
    }
  }
  tokens.push({ kind: 'END', value: '', matched: '' });
  return tokens;
}

const LONG_MAX = (1n << 63n) - 1n;

/** C's atoi on 64-bit Linux: strtol, saturating at LONG_MAX, then cut to a 32-bit int. */
function atoi(digits: string): number {
  let value = BigInt(digits);
  if (value > LONG_MAX) value = LONG_MAX;
  return Number(BigInt.asIntN(32, value));
}

/** Thrown by the parser with the DETAIL PostgreSQL's syncrep_yyerror would write. */
class SyntaxDetail extends Error {
  override readonly name = 'SyntaxDetail';
  constructor(readonly detail: string) {
    super(detail);
  }
}

function syntaxDetail(token: Token): SyntaxDetail {
  if (token.scanError !== undefined) return new SyntaxDetail(token.scanError);
  if (token.matched === '') return new SyntaxDetail('syntax error at end of input');
  return new SyntaxDetail(`syntax error at or near "${token.matched}"`);
}

/** The grammar of syncrep_gram.y, failing at the first token no valid value could have. */
function parseTokens(tokens: readonly Token[]): { method: 'priority' | 'quorum'; count: string; members: string[] } {
  let at = 0;
  const next = (): Token => tokens[at++] as Token;
  const peek = (): Token => tokens[at] as Token;
  const expect = (kind: TokenKind): Token => {
    const token = next();
    if (token.kind !== kind) throw syntaxDetail(token);
    return token;
  };
  const list = (): string[] => {
    const members: string[] = [];
    for (;;) {
      const token = next();
      if (token.kind !== 'NAME' && token.kind !== 'NUM') throw syntaxDetail(token);
      members.push(token.value);
      if (peek().kind !== ',') return members;
      next();
    }
  };
  const parenthesized = (): string[] => {
    expect('(');
    const members = list();
    expect(')');
    return members;
  };

  const first = peek();
  let result: { method: 'priority' | 'quorum'; count: string; members: string[] };
  if (first.kind === 'ANY' || first.kind === 'FIRST') {
    next();
    const count = expect('NUM').value;
    result = { method: first.kind === 'ANY' ? 'quorum' : 'priority', count, members: parenthesized() };
  } else if (first.kind === 'NUM' && tokens[at + 1]?.kind === '(') {
    next();
    result = { method: 'priority', count: first.value, members: parenthesized() };
  } else {
    result = { method: 'priority', count: '1', members: list() };
  }
  expect('END');
  return result;
}

/**
 * The parsed setting, or null when it is empty (no synchronous replication). Throws the
 * PgError PostgreSQL reports for a value its check hook refuses.
 */
export function parseStandbyNames(text: string): StandbyNames | null {
  if (text.length === 0) return null;
  let parsed: ReturnType<typeof parseTokens>;
  try {
    parsed = parseTokens(scan(text));
  } catch (err) {
    if (!(err instanceof SyntaxDetail)) throw err;
    throw new PgError({
      code: SqlState.SyntaxError,
      message: `invalid value for parameter "${SETTING}": "${text}"`,
      detail: err.detail,
    });
  }
  const num = atoi(parsed.count);
  if (num <= 0) {
    throw new PgError({
      code: SqlState.InvalidParameterValue,
      message: `number of synchronous standbys (${num}) must be greater than zero`,
    });
  }
  return { method: parsed.method, num, members: parsed.members };
}

/** A name as it can be written back: bare when the scanner would read it back unchanged. */
function quoteName(name: string): string {
  if (name === '*') return name;
  if (name.length > 0 && [...name].every(isDigit)) return name;
  const bare = name.length > 0 && isNameStart(name[0] as string) && [...name].every(isNameChar);
  const keyword = ['any', 'first'].includes(name.toLowerCase());
  if (bare && !keyword) return name;
  return `"${name.replaceAll('"', '""')}"`;
}

/** The setting in its explicit form, for logs: `FIRST 2 (s1, "Standby 2", *)`. */
export function formatStandbyNames(n: StandbyNames): string {
  const keyword = n.method === 'priority' ? 'FIRST' : 'ANY';
  return `${keyword} ${n.num} (${n.members.map(quoteName).join(', ')})`;
}
