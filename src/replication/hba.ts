/*
 * hba.ts — pg_hba.conf: which connections may try to authenticate, and by which method.
 *
 * The postmaster reads the file (parseHba) at start and at reload; a backend or walsender
 * that has received a startup packet asks matchHba for the first record whose connection
 * type, address, database and user fit, as PostgreSQL's check_hba does, and turns "no record"
 * or a `reject` record into PostgreSQL's FATAL 28000 with hbaRejection. What the method then
 * asks of the client (a SCRAM exchange, a password) is scram.ts's business, not this file's.
 *
 * The file reads as PostgreSQL 15 reads it: records of `TYPE DATABASE USER [ADDRESS [MASK]]
 * METHOD [name=value ...]`, `#` comments, double-quoted tokens ("" for a quote inside),
 * comma-separated lists, and a backslash at the very end of a line continuing the record on
 * the next one. A quoted keyword is a name: `"all"` is the database called all. The first bad
 * record stops the parse with PostgreSQL's message, SQLSTATE F0000, and the record's first
 * line as the detail, `line 3 of configuration file "/data/pg_hba.conf"` (PostgreSQL's
 * CONTEXT); PostgreSQL would go on to report every bad line before refusing the file.
 *
 * Deliberate differences, each because walship lacks the machinery:
 *   - no TLS and no GSSAPI: hostssl and hostgssenc records are accepted with PostgreSQL's
 *     warning and never match; hostnossl and hostnogssenc match as host does.
 *   - no DNS: an address must be numeric. A host name is refused as an invalid IP address
 *     (PostgreSQL would resolve it), or with a CIDR mask as PostgreSQL refuses that. IPv4
 *     addresses are dotted quads of decimal numbers without leading zeros: glibc would also
 *     take `127.1` or octal `010.0.0.1`, which are refused here rather than read otherwise.
 *   - no network interfaces: samehost is the loopback addresses 127.0.0.1 and ::1, samenet
 *     the loopback networks 127.0.0.0/8 and ::1/128.
 *   - no role membership: a role is a member of itself only, so `+name` and `samerole`
 *     match when the name is the user's own.
 *   - no files besides this one: `@file` inclusions are refused.
 *   - methods other than trust, reject, scram-sha-256, md5 and password are refused as
 *     "not supported by this build". An md5 record is reported as md5; the caller
 *     authenticates it with SCRAM, as PostgreSQL does for a role with a SCRAM verifier.
 *   - a client address in IPv4-mapped IPv6 form (::ffff:127.0.0.1, how Node reports IPv4
 *     clients of a dual-stack socket) is matched and reported as the IPv4 address, as
 *     PostgreSQL, whose IPv6 sockets are IPv6-only, sees such a client.
 *   - a replication connection here is a physical one: it matches only the `replication`
 *     keyword. Logical walsenders connect to a database and match as ordinary connections.
 */
import { assert } from '../assert.js';
import { PgError, SqlState } from '../errors.js';

/** Longest token PostgreSQL accepts (its MAX_TOKEN buffer, 10240 bytes, less the NUL). */
export const MAX_HBA_TOKEN_LENGTH = 10_239;

export type HbaConnectionType = 'local' | 'host' | 'hostssl' | 'hostnossl' | 'hostgssenc' | 'hostnogssenc';
export type HbaAuthMethod = 'trust' | 'reject' | 'scram-sha-256' | 'md5' | 'password';

export interface HbaToken {
  readonly text: string;
  /** Quoted from its first character: never a keyword. */
  readonly quoted: boolean;
}

export type IpFamily = 4 | 6;

interface IpAddress {
  readonly family: IpFamily;
  readonly bytes: readonly number[];
}

export type HbaAddress =
  | { readonly kind: 'all' }
  | { readonly kind: 'samehost' }
  | { readonly kind: 'samenet' }
  | { readonly kind: 'mask'; readonly family: IpFamily; readonly address: readonly number[]; readonly netmask: readonly number[] };

/** One record, with the names of the file's own header: TYPE DATABASE USER ADDRESS METHOD. */
export interface HbaRule {
  /** The record's first line. */
  readonly lineNumber: number;
  readonly type: HbaConnectionType;
  readonly database: readonly HbaToken[];
  readonly user: readonly HbaToken[];
  /** null for local records. */
  readonly address: HbaAddress | null;
  readonly method: HbaAuthMethod;
  readonly options: Readonly<Record<string, string>>;
  /** PostgreSQL's warning for a record that can never match (hostssl, hostgssenc). */
  readonly warning: string | null;
}

export interface HbaConnection {
  readonly type: 'local' | 'host';
  readonly database: string;
  readonly user: string;
  /** The client's numeric IP address; required for host connections. */
  readonly address?: string;
  /** A physical replication connection (replication=true in the startup packet). */
  readonly replication: boolean;
}

/** PostgreSQL's invalid_authorization_specification. */
const INVALID_AUTHORIZATION_SPECIFICATION = '28000';

/** pg_hba.conf as PostgreSQL 15's initdb writes it with the default (trust) authentication. */
export const DEFAULT_HBA_CONF = `# PostgreSQL Client Authentication Configuration File
# ===================================================
#
# Refer to the "Client Authentication" section in the PostgreSQL
# documentation for a complete description of this file.

# CAUTION: Configuring the system for local "trust" authentication
# allows any local user to connect as any PostgreSQL user, including
# the database superuser.  If you do not trust all your local users,
# use another authentication method.


# TYPE  DATABASE        USER            ADDRESS                 METHOD

# "local" is for Unix domain socket connections only
local   all             all                                     trust
# IPv4 local connections:
host    all             all             127.0.0.1/32            trust
# IPv6 local connections:
host    all             all             ::1/128                 trust
# Allow replication connections from localhost, by a user with the
# replication privilege.
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
`;

const CONNECTION_TYPES: readonly HbaConnectionType[] = ['local', 'host', 'hostssl', 'hostnossl', 'hostgssenc', 'hostnogssenc'];
const AUTH_METHODS: readonly HbaAuthMethod[] = ['trust', 'reject', 'scram-sha-256', 'md5', 'password'];
/** Methods PostgreSQL knows that this build lacks. */
const UNSUPPORTED_AUTH_METHODS = ['ident', 'peer', 'gss', 'sspi', 'pam', 'bsd', 'ldap', 'cert', 'radius'];

/** Options PostgreSQL knows that belong to methods walship lacks, with the methods it names. */
const METHOD_OPTIONS: Readonly<Record<string, string>> = {
  map: 'ident, peer, gssapi, sspi, and cert',
  pamservice: 'pam', pam_use_hostname: 'pam',
  ldapurl: 'ldap', ldaptls: 'ldap', ldapscheme: 'ldap', ldapserver: 'ldap', ldapport: 'ldap',
  ldapbinddn: 'ldap', ldapbindpasswd: 'ldap', ldapsearchattribute: 'ldap', ldapsearchfilter: 'ldap',
  ldapbasedn: 'ldap', ldapprefix: 'ldap', ldapsuffix: 'ldap',
  krb_realm: 'gssapi and sspi', include_realm: 'gssapi and sspi',
  compat_realm: 'sspi', upn_username: 'sspi',
  radiusservers: 'radius', radiusports: 'radius', radiussecrets: 'radius', radiusidentifiers: 'radius',
};

const WARNINGS: Partial<Record<HbaConnectionType, string>> = {
  hostssl: 'hostssl record cannot match because SSL is not supported by this build',
  hostgssenc: 'hostgssenc record cannot match because GSSAPI is not supported by this build',
};

function configError(path: string, lineNumber: number, message: string, hint?: string): PgError {
  return new PgError({
    code: SqlState.ConfigFileError, message,
    detail: `line ${lineNumber} of configuration file "${path}"`,
    ...(hint === undefined ? {} : { hint }),
  });
}

// ---- Reading records and tokens ----

/** Records with the line each starts on; a trailing backslash joins the next line. */
function records(text: string): { lineNumber: number; text: string }[] {
  const lines = text.split('\n').map((line) => line.replace(/[\r\n]+$/, ''));
  const out: { lineNumber: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const lineNumber = i + 1;
    let record = lines[i]!;
    while (record.endsWith('\\')) {
      record = record.slice(0, -1);
      if (i + 1 >= lines.length) break;
      record += lines[++i]!;
    }
    out.push({ lineNumber, text: record });
  }
  return out;
}

const isBlank = (c: string): boolean => c === ' ' || c === '\t' || c === '\r';

/** The fields of one record, each a list of tokens; empty for a blank or comment line. */
function tokenize(text: string, fail: (message: string, hint?: string) => PgError): HbaToken[][] {
  let pos = 0;
  const nextToken = (): { token: HbaToken; terminatingComma: boolean } | null => {
    while (pos < text.length && (isBlank(text[pos]!) || text[pos] === ',')) pos++;
    let buf = '';
    let inQuote = false;
    let wasQuote = false;
    let sawQuote = false;
    let initialQuote = false;
    let terminatingComma = false;
    while (pos < text.length) {
      const c = text[pos]!;
      if (isBlank(c) && !inQuote) break;
      if (c === '#' && !inQuote) {
        pos = text.length;
        break;
      }
      if (buf.length >= MAX_HBA_TOKEN_LENGTH) throw fail(`authentication file token too long, skipping: "${buf}"`);
      pos++;
      if (c === ',' && !inQuote) {
        terminatingComma = true;
        break;
      }
      if (c !== '"' || wasQuote) buf += c;
      // Inside quotes, "" stands for one literal quote.
      wasQuote = inQuote && c === '"' ? !wasQuote : false;
      if (c === '"') {
        inQuote = !inQuote;
        sawQuote = true;
        if (buf === '') initialQuote = true;
      }
    }
    if (!sawQuote && buf === '') return null;
    return { token: { text: buf, quoted: initialQuote }, terminatingComma };
  };

  const fields: HbaToken[][] = [];
  while (pos < text.length) {
    const field: HbaToken[] = [];
    for (;;) {
      const next = nextToken();
      if (next === null) break;
      if (!next.token.quoted && next.token.text.length > 1 && next.token.text.startsWith('@')) {
        throw fail(`secondary authentication file "${next.token.text}" is not supported`,
          'walship reads pg_hba.conf alone: list the names in the record itself.');
      }
      field.push(next.token);
      if (!next.terminatingComma) break;
    }
    if (field.length > 0) fields.push(field);
  }
  return fields;
}

// ---- IP addresses ----

function parseIpv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes.push(value);
  }
  return bytes;
}

function parseIpv6(text: string): number[] | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (half: string, allowIpv4Tail: boolean): number[] | null => {
    if (half === '') return [];
    const out: number[] = [];
    const pieces = half.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (allowIpv4Tail && i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4(piece);
        if (v4 === null) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1]!, true) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

function parseIp(text: string): IpAddress | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { family: 4, bytes: v4 };
  const v6 = text.includes(':') ? parseIpv6(text) : null;
  return v6 === null ? null : { family: 6, bytes: v6 };
}

/** The netmask of `/bits`, null when bits is not a whole number within the family's width. */
function cidrMask(bits: string, family: IpFamily): number[] | null {
  if (!/^[+-]?[0-9]+$/.test(bits)) return null;
  let remaining = Number(bits);
  const width = family === 4 ? 32 : 128;
  if (remaining < 0 || remaining > width) return null;
  const mask: number[] = [];
  for (let i = 0; i < width / 8; i++) {
    const take = Math.min(8, remaining);
    mask.push((0xff << (8 - take)) & 0xff);
    remaining -= take;
  }
  return mask;
}

/** The address as getnameinfo prints it: dotted quad, or compressed lower-case IPv6. */
function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return ip.bytes.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

const LOOPBACK_V4: IpAddress = { family: 4, bytes: [127, 0, 0, 1] };
const LOOPBACK_V6: IpAddress = { family: 6, bytes: [...new Array<number>(15).fill(0), 1] };

const sameIp = (a: IpAddress, b: IpAddress): boolean => a.family === b.family && a.bytes.every((byte, i) => byte === b.bytes[i]);

function inRange(client: IpAddress, family: IpFamily, address: readonly number[], netmask: readonly number[]): boolean {
  if (client.family !== family) return false;
  return client.bytes.every((b, i) => ((b ^ address[i]!) & netmask[i]!) === 0);
}

// ---- Records ----

function parseAddress(
  fields: readonly HbaToken[][], at: number, fail: (message: string, hint?: string) => PgError,
): { address: HbaAddress; next: number } {
  const field = fields[at];
  if (field === undefined) throw fail('end-of-line before IP address specification');
  if (field.length > 1) throw fail('multiple values specified for host address', 'Specify one address range per line.');
  const token = field[0]!;
  if (!token.quoted && (token.text === 'all' || token.text === 'samehost' || token.text === 'samenet')) {
    return { address: { kind: token.text }, next: at + 1 };
  }
  const slash = token.text.indexOf('/');
  const addressText = slash < 0 ? token.text : token.text.slice(0, slash);
  const ip = parseIp(addressText);
  if (ip === null) {
    const numeric = /^[0-9.]*$/.test(addressText) || addressText.includes(':');
    if (slash >= 0 && !numeric) throw fail(`specifying both host name and CIDR mask is invalid: "${token.text}"`);
    throw fail(`invalid IP address "${addressText}"`, numeric
      ? 'Write an IPv4 address as four decimal numbers from 0 to 255 without leading zeros, or an IPv6 address.'
      : 'walship does not resolve host names: write a numeric address with a CIDR mask, or all, samehost or samenet.');
  }
  if (slash >= 0) {
    const netmask = cidrMask(token.text.slice(slash + 1), ip.family);
    if (netmask === null) throw fail(`invalid CIDR mask in address "${token.text}"`);
    return { address: { kind: 'mask', family: ip.family, address: ip.bytes, netmask }, next: at + 1 };
  }
  const maskField = fields[at + 1];
  if (maskField === undefined) {
    throw fail('end-of-line before netmask specification',
      'Specify an address range in CIDR notation, or provide a separate netmask.');
  }
  if (maskField.length > 1) throw fail('multiple values specified for netmask');
  const mask = parseIp(maskField[0]!.text);
  if (mask === null) throw fail(`invalid IP mask "${maskField[0]!.text}": Name or service not known`);
  if (mask.family !== ip.family) throw fail('IP address and mask do not match');
  return { address: { kind: 'mask', family: ip.family, address: ip.bytes, netmask: mask.bytes }, next: at + 2 };
}

function parseOption(token: HbaToken, type: HbaConnectionType, fail: (message: string) => PgError): [string, string] {
  const eq = token.text.indexOf('=');
  if (eq < 0) throw fail(`authentication option not in name=value format: ${token.text}`);
  const name = token.text.slice(0, eq);
  const value = token.text.slice(eq + 1);
  if (name === 'clientcert' || name === 'clientname') {
    if (type !== 'hostssl') throw fail(`${name} can only be configured for "hostssl" rows`);
    const allowed = name === 'clientcert' ? ['verify-ca', 'verify-full'] : ['CN', 'DN'];
    if (!allowed.includes(value)) throw fail(`invalid value for ${name}: "${value}"`);
  } else if (METHOD_OPTIONS[name] !== undefined) {
    throw fail(`authentication option "${name}" is only valid for authentication methods ${METHOD_OPTIONS[name]}`);
  } else {
    throw fail(`unrecognized authentication option name: "${name}"`);
  }
  return [name, value];
}

function parseRecord(fields: readonly HbaToken[][], fail: (message: string, hint?: string) => PgError, lineNumber: number): HbaRule {
  const typeField = fields[0]!;
  if (typeField.length > 1) throw fail('multiple values specified for connection type', 'Specify exactly one connection type per line.');
  const type = CONNECTION_TYPES.find((t) => t === typeField[0]!.text);
  if (type === undefined) throw fail(`invalid connection type "${typeField[0]!.text}"`);

  const database = fields[1];
  if (database === undefined) throw fail('end-of-line before database specification');
  const user = fields[2];
  if (user === undefined) throw fail('end-of-line before role specification');

  let at = 3;
  let address: HbaAddress | null = null;
  if (type !== 'local') ({ address, next: at } = parseAddress(fields, at, fail));

  const methodField = fields[at];
  if (methodField === undefined) throw fail('end-of-line before authentication method');
  if (methodField.length > 1) throw fail('multiple values specified for authentication type', 'Specify exactly one authentication type per line.');
  const methodText = methodField[0]!.text;
  const method = AUTH_METHODS.find((m) => m === methodText);
  if (method === undefined) {
    if (UNSUPPORTED_AUTH_METHODS.includes(methodText)) throw fail(`invalid authentication method "${methodText}": not supported by this build`);
    throw fail(`invalid authentication method "${methodText}"`);
  }

  const options: Record<string, string> = {};
  for (const field of fields.slice(at + 1)) {
    for (const token of field) {
      const [name, value] = parseOption(token, type, fail);
      options[name] = value;
    }
  }
  return { lineNumber, type, database, user, address, method, options, warning: WARNINGS[type] ?? null };
}

/**
 * The records of pg_hba.conf, in file order. Throws PostgreSQL's error for the first bad
 * record, and for a file with no records at all (nobody could connect).
 */
export function parseHba(text: string, path: string): HbaRule[] {
  const rules: HbaRule[] = [];
  for (const record of records(text)) {
    const fail = (message: string, hint?: string): PgError => configError(path, record.lineNumber, message, hint);
    const fields = tokenize(record.text, fail);
    if (fields.length > 0) rules.push(parseRecord(fields, fail, record.lineNumber));
  }
  if (rules.length === 0) {
    throw new PgError({ code: SqlState.ConfigFileError, message: `configuration file "${path}" contains no entries` });
  }
  return rules;
}

// ---- Matching ----

const isKeyword = (token: HbaToken, keyword: string): boolean => !token.quoted && token.text === keyword;

function databaseMatches(tokens: readonly HbaToken[], conn: HbaConnection): boolean {
  for (const token of tokens) {
    if (conn.replication) {
      // A physical replication connection names no database: only the keyword can match.
      if (isKeyword(token, 'replication')) return true;
    } else if (isKeyword(token, 'all')) {
      return true;
    } else if (isKeyword(token, 'sameuser') || isKeyword(token, 'samerole') || isKeyword(token, 'samegroup')) {
      if (conn.database === conn.user) return true;
    } else if (isKeyword(token, 'replication')) {
      continue;
    } else if (token.text === conn.database) {
      return true;
    }
  }
  return false;
}

function userMatches(tokens: readonly HbaToken[], user: string): boolean {
  return tokens.some((token) => {
    if (!token.quoted && token.text.startsWith('+')) return token.text.slice(1) === user;
    return isKeyword(token, 'all') || token.text === user;
  });
}

function addressMatches(address: HbaAddress, client: IpAddress): boolean {
  switch (address.kind) {
    case 'all':
      return true;
    case 'samehost':
      return sameIp(client, LOOPBACK_V4) || sameIp(client, LOOPBACK_V6);
    case 'samenet':
      return inRange(client, 4, LOOPBACK_V4.bytes, [255, 0, 0, 0]) || sameIp(client, LOOPBACK_V6);
    case 'mask':
      return inRange(client, address.family, address.address, address.netmask);
  }
}

/** The client's address as PostgreSQL would see it: an IPv4-mapped IPv6 address is IPv4. */
function clientAddress(conn: HbaConnection): IpAddress {
  assert(conn.address !== undefined, 'a host connection has a client address');
  const ip = parseIp(conn.address);
  assert(ip !== null, `client address is numeric: ${conn.address}`);
  const mapped = ip.family === 6 && ip.bytes.slice(0, 10).every((b) => b === 0) && ip.bytes[10] === 0xff && ip.bytes[11] === 0xff;
  return mapped ? { family: 4, bytes: ip.bytes.slice(12) } : ip;
}

/** The first record that applies to `conn`, or null (PostgreSQL's implicit reject). */
export function matchHba(rules: readonly HbaRule[], conn: HbaConnection): HbaRule | null {
  const client = conn.type === 'host' ? clientAddress(conn) : null;
  for (const rule of rules) {
    if (conn.type === 'local') {
      if (rule.type !== 'local') continue;
    } else {
      // No TLS and no GSSAPI encryption: every TCP connection is unencrypted.
      if (rule.type === 'local' || rule.type === 'hostssl' || rule.type === 'hostgssenc') continue;
      if (!addressMatches(rule.address!, client!)) continue;
    }
    if (!databaseMatches(rule.database, conn)) continue;
    if (!userMatches(rule.user, conn.user)) continue;
    return rule;
  }
  return null;
}

/**
 * PostgreSQL's FATAL for a connection pg_hba.conf turns away: no record matched, or the
 * record says reject. null when the record lets the connection go on to authenticate.
 */
export function hbaRejection(conn: HbaConnection, rule: HbaRule | null): PgError | null {
  if (rule !== null && rule.method !== 'reject') return null;
  const host = conn.type === 'local' ? '[local]' : formatIp(clientAddress(conn));
  let message: string;
  if (rule === null) {
    message = conn.replication
      ? `no pg_hba.conf entry for replication connection from host "${host}", user "${conn.user}", no encryption`
      : `no pg_hba.conf entry for host "${host}", user "${conn.user}", database "${conn.database}", no encryption`;
  } else {
    message = conn.replication
      ? `pg_hba.conf rejects replication connection for host "${host}", user "${conn.user}", no encryption`
      : `pg_hba.conf rejects connection for host "${host}", user "${conn.user}", database "${conn.database}", no encryption`;
  }
  return new PgError({ code: INVALID_AUTHORIZATION_SPECIFICATION, severity: 'FATAL', message });
}
