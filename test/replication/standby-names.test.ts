/*
 * synchronous_standby_names: the values a DBA writes, what PostgreSQL 15 makes of them, and
 * the error (SQLSTATE, message, DETAIL) it gives for a value it refuses.
 */
import { expect } from 'chai';
import { PgError } from '../../src/errors.js';
import { formatStandbyNames, parseStandbyNames, type StandbyNames } from '../../src/replication/standby-names.js';

const first = (num: number, ...members: string[]): StandbyNames => ({ method: 'priority', num, members });
const any = (num: number, ...members: string[]): StandbyNames => ({ method: 'quorum', num, members });

function refusal(text: string): [string, string, string | undefined] {
  try {
    parseStandbyNames(text);
  } catch (err) {
    expect(err).to.be.instanceOf(PgError);
    const e = err as PgError;
    return [e.code, e.message, e.detail];
  }
  throw new Error(`accepted: ${text}`);
}

const invalidValue = (text: string): string => `invalid value for parameter "synchronous_standby_names": "${text}"`;

describe('synchronous_standby_names', () => {
  it('is off when empty', () => {
    expect(parseStandbyNames('')).to.equal(null);
  });

  const accepted: [string, StandbyNames][] = [
    ['s1', first(1, 's1')],
    ['s1, s2, s3', first(1, 's1', 's2', 's3')],
    ['FIRST 2 (s1, s2, s3)', first(2, 's1', 's2', 's3')],
    ['first 2(s1,s2)', first(2, 's1', 's2')],
    ['FiRsT 1 (s1)', first(1, 's1')],
    ['2 (s1, s2)', first(2, 's1', 's2')],
    ['ANY 2 (s1, s2, s3)', any(2, 's1', 's2', 's3')],
    ['any 1 (*)', any(1, '*')],
    ['*', first(1, '*')],
    ['FIRST 2 (s1, *)', first(2, 's1', '*')],
    ['FIRST 2 (s1, s1, s2)', first(2, 's1', 's1', 's2')],
    // Unquoted names keep their case: standbys are matched case-insensitively anyway.
    ['Standby_A, s2', first(1, 'Standby_A', 's2')],
    ['"Standby A", "a""b", "FIRST", "any", "*"', first(1, 'Standby A', 'a"b', 'FIRST', 'any', '*')],
    ['""', first(1, '')],
    ['"(,)"', first(1, '(,)')],
    ['1, 2', first(1, '1', '2')],
    ['FIRST 01 (007, 1)', first(1, '007', '1')],
    ['any$, first_1, _x, n$2', first(1, 'any$', 'first_1', '_x', 'n$2')],
    ['réplica, 東京', first(1, 'réplica', '東京')],
    [' \t\n\r\f\vANY\t3\n(\ra ,b\f,\vc )  ', any(3, 'a', 'b', 'c')],
    // The count is read by atoi: past an int it wraps as on a 64-bit Linux server.
    ['FIRST 4294967297 (s1)', first(1, 's1')],
  ];
  for (const [text, expected] of accepted) {
    it(`reads ${JSON.stringify(text)}`, () => {
      expect(parseStandbyNames(text)).to.deep.equal(expected);
    });
  }

  const syntaxErrors: [string, string][] = [
    ['   ', 'syntax error at end of input'],
    ['FIRST', 'syntax error at end of input'],
    ['s1,', 'syntax error at end of input'],
    ['FIRST 1 (s1', 'syntax error at end of input'],
    ['FIRST (s1)', 'syntax error at or near "("'],
    ['FIRST 1 s1', 'syntax error at or near "s1"'],
    ['ANY 2 s1, s2', 'syntax error at or near "s1"'],
    ['FIRST 1 (s1,)', 'syntax error at or near ")"'],
    ['FIRST 1 ()', 'syntax error at or near ")"'],
    ['(s1)', 'syntax error at or near "("'],
    ['s1 s2', 'syntax error at or near "s2"'],
    ['1 s2', 'syntax error at or near "s2"'],
    ['s1; s2', 'syntax error at or near ";"'],
    ['s1, any', 'syntax error at or near "any"'],
    ['ANY FIRST 1 (s1)', 'syntax error at or near "FIRST"'],
    ['FIRST 1 (s1) s2', 'syntax error at or near "s2"'],
    ['FIRST 1 (s1), s2', 'syntax error at or near ","'],
    ['FIRST -1 (s1)', 'syntax error at or near "-"'],
    ['FIRST 1.5 (s1)', 'syntax error at or near "."'],
    ['1abc', 'syntax error at or near "abc"'],
    ['s-1', 'syntax error at or near "-"'],
    // The token PostgreSQL's parser last scanned for a quoted name is its closing quote.
    ['FIRST 1 ("s1") "s2"', 'syntax error at or near """'],
    ['"s1', 'unterminated quoted identifier at end of input'],
    ['s1, "s2""', 'unterminated quoted identifier at end of input'],
    // The scanner reaches the open quote before the parser can object to it.
    ['s1 "s2', 'unterminated quoted identifier at end of input'],
    ['s1 s2 "s3', 'syntax error at or near "s2"'],
  ];
  for (const [text, detail] of syntaxErrors) {
    it(`refuses ${JSON.stringify(text)}: ${detail}`, () => {
      expect(refusal(text)).to.deep.equal(['42601', invalidValue(text), detail]);
    });
  }

  const countErrors: [string, number][] = [
    ['FIRST 0 (s1)', 0],
    ['ANY 0 (s1, s2)', 0],
    ['0 (s1)', 0],
    ['FIRST 000 (s1)', 0],
    ['FIRST 2147483648 (s1)', -2147483648],
    ['ANY 4294967296 (s1)', 0],
    ['ANY 99999999999999999999 (s1)', -1],
  ];
  for (const [text, num] of countErrors) {
    it(`refuses ${JSON.stringify(text)}: ${num} synchronous standbys`, () => {
      expect(refusal(text)).to.deep.equal(['22023', `number of synchronous standbys (${num}) must be greater than zero`, undefined]);
    });
  }

  it('a name that is a number stands for a standby, not a count, unless a list follows', () => {
    expect(parseStandbyNames('2')).to.deep.equal(first(1, '2'));
    expect(parseStandbyNames('0')).to.deep.equal(first(1, '0'));
    expect(parseStandbyNames('2 (3)')).to.deep.equal(first(2, '3'));
  });

  it('prints the explicit form for logs, quoting only where the scanner needs it', () => {
    expect(formatStandbyNames(first(1, 's1', 's2'))).to.equal('FIRST 1 (s1, s2)');
    expect(formatStandbyNames(any(2, 'a', '*', '007'))).to.equal('ANY 2 (a, *, 007)');
    expect(formatStandbyNames(first(1, 'Standby A', 'a"b', 'first', 'Any', '', 'x-y', 'é$1')))
      .to.equal('FIRST 1 ("Standby A", "a""b", "first", "Any", "", "x-y", é$1)');
  });

  it('reads back what it prints', () => {
    for (const [text] of accepted) {
      const parsed = parseStandbyNames(text) as StandbyNames;
      expect(parseStandbyNames(formatStandbyNames(parsed)), text).to.deep.equal(parsed);
    }
  });
});
