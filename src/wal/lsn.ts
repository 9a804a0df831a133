/*
 * lsn.ts — log sequence numbers: byte positions in the WAL stream.
 *
 * An LSN is a plain number (exact up to 2^53 bytes, 8 PiB of WAL, far past anything a
 * server writes), printed as PostgreSQL prints it (`%X/%X`): the high and low 32 bits in
 * upper-case hex without padding, `16/B374D848`, `0/3000060`. Positions are "last byte + 1": a record that starts at `start` and is
 * `n` bytes long ends at `start + n`, which is where the next one may begin. Positions only
 * move forward; whoever owns one asserts that where it moves.
 */
import { assert } from '../assert.js';

export type Lsn = number;

export const InvalidLsn: Lsn = 0;

const TWO_32 = 2 ** 32;

export function isValidLsn(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** `X/X`, exactly as PostgreSQL's `%X/%X`. */
export function formatLsn(lsn: Lsn): string {
  assert(isValidLsn(lsn), `not an LSN: ${lsn}`);
  const hi = Math.floor(lsn / TWO_32);
  const lo = lsn - hi * TWO_32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

export class LsnSyntaxError extends Error {
  override readonly name = 'LsnSyntaxError';
}

/**
 * Parses `X/X` as pg_lsn input does (1 to 8 hex digits each side, case-insensitive).
 * Throws with PostgreSQL's text: invalid input syntax for type pg_lsn: "...".
 */
export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (match === null) throw new LsnSyntaxError(`invalid input syntax for type pg_lsn: "${text}"`);
  const lsn = parseInt(match[1]!, 16) * TWO_32 + parseInt(match[2]!, 16);
  if (!isValidLsn(lsn)) throw new LsnSyntaxError(`pg_lsn value "${text}" is beyond what walship can address (2^53 bytes)`);
  return lsn;
}

/** `pg_wal_lsn_diff(a, b)`: bytes from b to a (negative when a is earlier). */
export function lsnDiff(a: Lsn, b: Lsn): number {
  return a - b;
}

export const MAXIMUM_ALIGNOF = 8;

/** Rounds up to the next multiple of 8, as records are placed (PostgreSQL's MAXALIGN). */
export function maxAlign(n: number): number {
  return Math.ceil(n / MAXIMUM_ALIGNOF) * MAXIMUM_ALIGNOF;
}
