/*
 * pg_hba.conf: the records a DBA writes, the errors PostgreSQL gives for bad ones, which
 * record a connection meets first, and the FATAL texts a refused client sees.
 */
import { expect } from 'chai';
import { PgError } from '../../src/errors.js';
import {
  DEFAULT_HBA_CONF, hbaRejection, matchHba, parseHba, type HbaConnection, type HbaRule,
} from '../../src/replication/hba.js';

const PATH = '/data/pg_hba.conf';

function parseError(text: string): [string, string, string | undefined, string | undefined] {
  try {
    parseHba(text, PATH);
  } catch (err) {
    expect(err).to.be.instanceOf(PgError);
    const e = err as PgError;
    return [e.code, e.message, e.detail, e.hint];
  }
  throw new Error(`parsed without error: ${text}`);
}

const line = (n: number): string => `line ${n} of configuration file "${PATH}"`;

const replication = (address: string, user = 'rep'): HbaConnection =>
  ({ type: 'host', database: 'replication', user, address, replication: true });
const ordinary = (address: string, user = 'u', database = 'd'): HbaConnection =>
  ({ type: 'host', database, user, address, replication: false });

/** The line number of the record a connection meets first, or null. */
function matchedLine(text: string, conn: HbaConnection): number | null {
  return matchHba(parseHba(text, PATH), conn)?.lineNumber ?? null;
}

describe('pg_hba.conf', () => {
  describe('reading records', () => {
    it('reads the file initdb writes: local and host records for all and for replication', () => {
      const rules = parseHba(DEFAULT_HBA_CONF, PATH);
      expect(rules.map((r) => [r.type, r.database.map((t) => t.text).join(','), r.method])).to.deep.equal([
        ['local', 'all', 'trust'], ['host', 'all', 'trust'], ['host', 'all', 'trust'],
        ['local', 'replication', 'trust'], ['host', 'replication', 'trust'], ['host', 'replication', 'trust'],
      ]);
      expect(rules[1]!.address).to.deep.equal({ kind: 'mask', family: 4, address: [127, 0, 0, 1], netmask: [255, 255, 255, 255] });
      expect(rules.every((r) => r.warning === null)).to.equal(true);
    });

    it('reads lists, quoted names, comments, separate netmasks and continued lines', () => {
      const rules = parseHba([
        '# a comment line',
        '',
        'host  "My DB","all",db2   alice,+ops   10.0.0.0/8   scram-sha-256   # trailing comment',
        'hostnossl all "bob ""the"" builder" 192.168.1.0 255.255.255.0 md5',
        'host all \\',
        '     all ::1/128 password',
      ].join('\n'), PATH);
      expect(rules.map((r) => r.lineNumber)).to.deep.equal([3, 4, 5]);
      expect(rules[0]!.database).to.deep.equal([
        { text: 'My DB', quoted: true }, { text: 'all', quoted: true }, { text: 'db2', quoted: false },
      ]);
      expect(rules[0]!.user.map((t) => t.text)).to.deep.equal(['alice', '+ops']);
      expect(rules[1]!.user).to.deep.equal([{ text: 'bob "the" builder', quoted: true }]);
      expect(rules[1]!.address).to.deep.equal({ kind: 'mask', family: 4, address: [192, 168, 1, 0], netmask: [255, 255, 255, 0] });
      expect(rules[2]!.method).to.equal('password');
      expect(rules[2]!.address).to.deep.include({ family: 6 });
    });

    it('keeps md5 as md5 (the caller authenticates it with SCRAM) and accepts hostssl with a warning', () => {
      const [md5, ssl] = parseHba('host all all all md5\nhostssl all all all trust clientcert=verify-full', PATH);
      expect(md5!.method).to.equal('md5');
      expect(ssl!.warning).to.equal('hostssl record cannot match because SSL is not supported by this build');
      expect(ssl!.options).to.deep.equal({ clientcert: 'verify-full' });
    });

    it('reports bad records as PostgreSQL does, with the line in the file', () => {
      const text = '# header\nlocal all all trust\nhots all all 127.0.0.1/32 trust';
      expect(parseError(text)).to.deep.equal(['F0000', 'invalid connection type "hots"', line(3), undefined]);
      const cases: [string, string][] = [
        ['local', 'end-of-line before database specification'],
        ['local all', 'end-of-line before role specification'],
        ['local all all', 'end-of-line before authentication method'],
        ['host all all', 'end-of-line before IP address specification'],
        ['host all all 127.0.0.1', 'end-of-line before netmask specification'],
        ['host all all 300.1.1.1 trust', 'invalid IP address "300.1.1.1"'],
        ['host all all 300.1.1.1/32 trust', 'invalid IP address "300.1.1.1"'],
        ['host all all db.example.com trust', 'invalid IP address "db.example.com"'],
        ['host all all .example.com/24 trust', 'specifying both host name and CIDR mask is invalid: ".example.com/24"'],
        ['host all all 10.0.0.0/33 trust', 'invalid CIDR mask in address "10.0.0.0/33"'],
        ['host all all ::1/129 trust', 'invalid CIDR mask in address "::1/129"'],
        ['host all all 10.0.0.0 255.0.0.x trust', 'invalid IP mask "255.0.0.x": Name or service not known'],
        ['host all all 127.0.0.1 trust', 'invalid IP mask "trust": Name or service not known'],
        ['host all all 10.0.0.0 ffff:: trust', 'IP address and mask do not match'],
        ['host all all 10.0.0.1/32,10.0.0.2/32 trust', 'multiple values specified for host address'],
        ['local,host all all trust', 'multiple values specified for connection type'],
        ['local all all foo', 'invalid authentication method "foo"'],
        ['local all all trust,md5', 'multiple values specified for authentication type'],
        ['local all all peer', 'invalid authentication method "peer": not supported by this build'],
        ['local all all trust extra', 'authentication option not in name=value format: extra'],
        ['local all all trust frob=1', 'unrecognized authentication option name: "frob"'],
        ['local all all trust map=x', 'authentication option "map" is only valid for authentication methods ident, peer, gssapi, sspi, and cert'],
        ['host all all all trust clientcert=verify-ca', 'clientcert can only be configured for "hostssl" rows'],
      ];
      for (const [record, message] of cases) {
        const [code, got, detail] = parseError(`# header\n\n${record}\n`);
        expect([code, got, detail], record).to.deep.equal(['F0000', message, line(3)]);
      }
      expect(parseError('host all all 127.0.0.1')[3])
        .to.equal('Specify an address range in CIDR notation, or provide a separate netmask.');
    });

    it('numbers a continued record by its first line', () => {
      expect(parseError('local all all trust\nhost all \\\nall \\\n10.0.0.0/8 foo')[2]).to.equal(line(2));
    });

    it('refuses a file with no records', () => {
      expect(parseError('# nothing here\n\n')).to.deep.equal(
        ['F0000', `configuration file "${PATH}" contains no entries`, undefined, undefined]);
    });
  });

  describe('matching a connection', () => {
    it('lets only the replication keyword match a replication connection, and never an ordinary one', () => {
      const text = 'host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 md5';
      expect(matchedLine(text, replication('127.0.0.1'))).to.equal(2);
      expect(matchedLine(text, ordinary('127.0.0.1', 'u', 'replication'))).to.equal(1);
      expect(matchedLine('host replication all all trust', ordinary('127.0.0.1', 'u', 'replication'))).to.equal(null);
      expect(matchedLine('host all all all trust', replication('127.0.0.1'))).to.equal(null);
      expect(matchedLine('host "replication" all all trust', replication('127.0.0.1'))).to.equal(null);
    });

    it('matches IPv4 and IPv6 ranges, and an IPv4 client seen through a dual-stack socket', () => {
      const text = 'host all all 10.1.0.0/16 trust\nhost all all fd00::/8 trust\nhost all all 192.168.0.0 255.255.0.0 trust';
      expect(matchedLine(text, ordinary('10.1.200.3'))).to.equal(1);
      expect(matchedLine(text, ordinary('10.2.0.1'))).to.equal(null);
      expect(matchedLine(text, ordinary('fd12:3456::1'))).to.equal(2);
      expect(matchedLine(text, ordinary('fe80::1'))).to.equal(null);
      expect(matchedLine(text, ordinary('192.168.77.1'))).to.equal(3);
      expect(matchedLine(text, ordinary('::ffff:10.1.0.9'))).to.equal(1);
      expect(matchedLine('host all all ::1/128 trust', ordinary('127.0.0.1'))).to.equal(null);
    });

    it('matches samehost and samenet against the loopback addresses', () => {
      expect(matchedLine('host all all samehost trust', ordinary('127.0.0.1'))).to.equal(1);
      expect(matchedLine('host all all samehost trust', ordinary('::1'))).to.equal(1);
      expect(matchedLine('host all all samehost trust', ordinary('127.0.0.2'))).to.equal(null);
      expect(matchedLine('host all all samenet trust', ordinary('127.0.0.2'))).to.equal(1);
      expect(matchedLine('host all all samenet trust', ordinary('10.0.0.1'))).to.equal(null);
    });

    it('matches user and database lists, sameuser, and quoted keywords as plain names', () => {
      const text = [
        'host sales,hr alice,bob all trust',
        'host sameuser all all trust',
        'host all "all" all trust',
        'host all +carol all trust',
      ].join('\n');
      expect(matchedLine(text, ordinary('10.0.0.1', 'bob', 'hr'))).to.equal(1);
      expect(matchedLine(text, ordinary('10.0.0.1', 'bob', 'bob'))).to.equal(2);
      expect(matchedLine(text, ordinary('10.0.0.1', 'all', 'x'))).to.equal(3);
      expect(matchedLine(text, ordinary('10.0.0.1', 'carol', 'x'))).to.equal(4);
      expect(matchedLine(text, ordinary('10.0.0.1', 'dave', 'x'))).to.equal(null);
    });

    it('uses the first record that fits, even a reject; local and host records meet only their kind', () => {
      const text = [
        'local all all reject',
        'host all rep 10.0.0.5/32 reject',
        'host replication rep 10.0.0.0/8 scram-sha-256',
        'hostssl replication all all trust',
        'hostnossl replication all all password',
      ].join('\n');
      expect(matchedLine(text, replication('10.0.0.5'))).to.equal(3);
      expect(matchedLine(text, replication('172.16.0.1'))).to.equal(5);
      expect(matchedLine(text, { type: 'local', database: 'replication', user: 'rep', replication: true })).to.equal(null);
      expect(matchedLine(text, { type: 'local', database: 'd', user: 'u', replication: false })).to.equal(1);
      expect(matchedLine(text, ordinary('10.0.0.5', 'rep'))).to.equal(2);
    });
  });

  describe('refusing a connection', () => {
    const rules: HbaRule[] = parseHba('host replication rep 127.0.0.1/32 reject\nhost d u ::1/128 reject\nhost all all 10.0.0.0/8 trust', PATH);
    const refusal = (conn: HbaConnection): [string, string, string] | null => {
      const err = hbaRejection(conn, matchHba(rules, conn));
      return err === null ? null : [err.code, err.severity, err.message];
    };

    it('says there is no entry when nothing matches', () => {
      expect(refusal(replication('192.168.0.9', 'other'))).to.deep.equal(['28000', 'FATAL',
        'no pg_hba.conf entry for replication connection from host "192.168.0.9", user "other", no encryption']);
      expect(refusal(ordinary('192.168.0.9'))).to.deep.equal(['28000', 'FATAL',
        'no pg_hba.conf entry for host "192.168.0.9", user "u", database "d", no encryption']);
      expect(refusal({ type: 'local', database: 'replication', user: 'rep', replication: true })?.[2]).to.equal(
        'no pg_hba.conf entry for replication connection from host "[local]", user "rep", no encryption');
      expect(refusal({ type: 'local', database: 'd', user: 'u', replication: false })?.[2]).to.equal(
        'no pg_hba.conf entry for host "[local]", user "u", database "d", no encryption');
    });

    it('says pg_hba.conf rejects the connection when a reject record matches', () => {
      expect(refusal(replication('127.0.0.1'))).to.deep.equal(['28000', 'FATAL',
        'pg_hba.conf rejects replication connection for host "127.0.0.1", user "rep", no encryption']);
      expect(refusal(ordinary('0:0:0:0:0:0:0:1'))?.[2]).to.equal(
        'pg_hba.conf rejects connection for host "::1", user "u", database "d", no encryption');
      expect(refusal(replication('::ffff:127.0.0.1'))?.[2]).to.equal(
        'pg_hba.conf rejects replication connection for host "127.0.0.1", user "rep", no encryption');
    });

    it('lets a connection that meets an authenticating record go on', () => {
      expect(refusal(ordinary('10.9.9.9'))).to.equal(null);
    });
  });
});
