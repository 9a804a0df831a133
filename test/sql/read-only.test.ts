/*
 * Read-only transactions and hot standby, as PostgreSQL 15 enforces them: on a standby
 * queries, cursors and weak locks work and nothing writes WAL or takes an xid; writes fail
 * with 25006 and the command's name; on a primary, BEGIN READ ONLY and
 * default_transaction_read_only refuse the same writes.
 */
import { expect } from 'chai';
import { Harness, seen, type Standby } from './harness.js';

/** A primary with a table, a sequence and committed rows, and a standby that replayed its WAL. */
function primaryAndStandby(): { primary: Harness; standby: Standby } {
  const primary = new Harness();
  primary.ok('a', 'CREATE TABLE kv (id serial PRIMARY KEY, v text)');
  primary.ok('a', "INSERT INTO kv (v) VALUES ('one'), ('two'), ('three')");
  return { primary, standby: primary.standby() };
}

const readOnly = (command: string) => ({ code: '25006', message: `cannot execute ${command} in a read-only transaction` });
const duringRecovery = (command: string) => ({ code: '25006', message: `cannot execute ${command} during recovery` });

describe('hot standby', () => {
  it('answers queries, cursors, savepoints and weak locks without writing WAL or taking an xid', () => {
    const { standby } = primaryAndStandby();
    const nextXid = standby.engine.state.clog.nextXid;
    expect(standby.rows('s', 'SELECT id, v FROM kv WHERE id > 1 ORDER BY id DESC')).to.deep.equal([{ id: 3, v: 'three' }, { id: 2, v: 'two' }]);
    expect(standby.rows('s', 'SELECT count(*), pg_is_in_recovery() AS standby FROM kv')).to.deep.equal([{ count: 3, standby: true }]);
    standby.ok('s', 'BEGIN');
    standby.ok('s', 'LOCK TABLE kv IN ACCESS SHARE MODE');
    standby.ok('s', 'LOCK TABLE kv IN ROW SHARE MODE');
    standby.ok('s', 'LOCK TABLE kv IN ROW EXCLUSIVE MODE');
    standby.ok('s', 'SAVEPOINT sp');
    standby.ok('s', 'DECLARE c CURSOR FOR SELECT v FROM kv ORDER BY id');
    expect(standby.ok('s', 'FETCH 2 FROM c').rows).to.deep.equal([{ v: 'one' }, { v: 'two' }]);
    standby.ok('s', 'ROLLBACK TO SAVEPOINT sp');
    standby.ok('s', 'RELEASE SAVEPOINT sp');
    expect(standby.ok('s', 'COMMIT').command).to.equal('COMMIT');
    expect(standby.wal).to.deep.equal([]);
    expect(standby.engine.state.clog.nextXid).to.equal(nextXid);
  });

  it('refuses every write with PostgreSQL\'s 25006 texts', () => {
    const { standby } = primaryAndStandby();
    const refused: [string, { code: string; message: string }][] = [
      ["INSERT INTO kv (v) VALUES ('four')", readOnly('INSERT')],
      ["UPDATE kv SET v = 'x'", readOnly('UPDATE')],
      ['DELETE FROM kv', readOnly('DELETE')],
      ['SELECT * FROM kv FOR UPDATE', readOnly('SELECT FOR UPDATE')],
      ['SELECT * FROM kv FOR SHARE', readOnly('SELECT FOR SHARE')],
      ['CREATE TABLE t (a int)', readOnly('CREATE TABLE')],
      ['CREATE TABLE kv (a int)', readOnly('CREATE TABLE')],
      ['CREATE TABLE t AS SELECT * FROM kv', readOnly('CREATE TABLE AS')],
      ['SELECT * INTO t FROM kv', readOnly('SELECT INTO')],
      ['DROP TABLE kv', readOnly('DROP TABLE')],
      ['DROP TABLE IF EXISTS nope', readOnly('DROP TABLE')],
      ['CREATE SEQUENCE s', readOnly('CREATE SEQUENCE')],
      ['CREATE DATABASE d', readOnly('CREATE DATABASE')],
      ['DROP DATABASE d', readOnly('DROP DATABASE')],
      ["CREATE TABLESPACE ts LOCATION '/ts'", readOnly('CREATE TABLESPACE')],
      ['DROP TABLESPACE ts', readOnly('DROP TABLESPACE')],
      ['CREATE ROLE r', readOnly('CREATE ROLE')],
      ['CREATE USER u', readOnly('CREATE ROLE')],
      ['ALTER ROLE postgres NOLOGIN', readOnly('ALTER ROLE')],
      ['DROP ROLE r', readOnly('DROP ROLE')],
      ['TRUNCATE kv', readOnly('TRUNCATE TABLE')],
      ['CREATE INDEX ON kv (v)', readOnly('CREATE INDEX')],
      ['VACUUM', duringRecovery('VACUUM')],
      ['VACUUM kv', duringRecovery('VACUUM')],
      ['ANALYZE kv', duringRecovery('ANALYZE')],
      ["SELECT nextval('kv_id_seq')", readOnly('nextval()')],
      ["SELECT setval('kv_id_seq', 10)", readOnly('setval()')],
      ['SELECT txid_current()', duringRecovery('pg_current_xact_id()')],
    ];
    for (const [sql, expected] of refused) expect(seen(standby.error('s', sql)), sql).to.deep.equal(expected);
    expect(seen(standby.error('s', 'SELECT pg_current_wal_lsn()'))).to.deep.equal({
      code: '55000', message: 'recovery is in progress', hint: 'WAL control functions cannot be executed during recovery.',
    });
    // What does not exist is reported as such first, as PostgreSQL's parser does.
    expect(seen(standby.error('s', 'INSERT INTO nope VALUES (1)'))).to.deep.equal({ code: '42P01', message: 'relation "nope" does not exist' });
    expect(seen(standby.error('s', "SELECT nextval('nope')"))).to.deep.equal({ code: '42P01', message: 'relation "nope" does not exist' });
    expect(standby.wal).to.deep.equal([]);
    expect(standby.rows('s', 'SELECT count(*) FROM kv')).to.deep.equal([{ count: 3 }]);
  });

  it('refuses LOCK above ROW EXCLUSIVE, the short form included, before asking for a transaction block', () => {
    const { standby } = primaryAndStandby();
    expect(seen(standby.error('s', 'LOCK TABLE kv'))).to.deep.equal(duringRecovery('LOCK TABLE'));
    standby.ok('s', 'BEGIN');
    expect(seen(standby.error('s', 'LOCK TABLE kv IN SHARE MODE'))).to.deep.equal(duringRecovery('LOCK TABLE'));
    expect(seen(standby.error('s', 'SELECT 1'))).to.deep.equal({ code: '25P02', message: 'current transaction is aborted, commands ignored until end of transaction block' });
    standby.ok('s', 'ROLLBACK');
    expect(standby.engine.lockRows()).to.deep.equal([]);
  });

  it('refuses BEGIN READ WRITE, leaving a failed transaction block as PostgreSQL does', () => {
    const { standby } = primaryAndStandby();
    for (const begin of ['BEGIN READ WRITE', 'START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE']) {
      expect(seen(standby.error('s', begin)), begin).to.deep.equal({ code: '0A000', message: 'cannot set transaction read-write mode during recovery' });
      expect(standby.engine.transactionStatus('s')).to.equal('failed');
      expect(standby.error('s', 'SELECT 1').code).to.equal('25P02');
      expect(standby.ok('s', 'ROLLBACK').command).to.equal('ROLLBACK');
    }
    standby.ok('s', 'BEGIN READ ONLY');
    expect(seen(standby.error('s', 'DELETE FROM kv'))).to.deep.equal(readOnly('DELETE'));
    standby.ok('s', 'ROLLBACK');
  });

  it('takes snapshots from the xids the replaying side lists as running, owned by no session here', () => {
    const { primary, standby } = primaryAndStandby();
    primary.ok('w', 'BEGIN');
    primary.ok('w', "INSERT INTO kv (v) VALUES ('four')");
    const [xid] = [...primary.engine.procarray.xids()];
    standby.catchUp();
    standby.engine.procarray.add(xid!);
    standby.ok('r', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
    expect(standby.rows('r', 'SELECT count(*) FROM kv')).to.deep.equal([{ count: 3 }]);
    primary.ok('w', 'COMMIT');
    standby.catchUp();
    standby.engine.procarray.remove(xid!);
    expect(standby.rows('r', 'SELECT count(*) FROM kv'), 'the older snapshot still sees it running').to.deep.equal([{ count: 3 }]);
    expect(standby.rows('n', 'SELECT count(*) FROM kv'), 'a new snapshot sees the commit').to.deep.equal([{ count: 4 }]);
    standby.ok('r', 'COMMIT');
    expect(standby.rows('r', "SELECT v FROM kv WHERE v = 'four'")).to.deep.equal([{ v: 'four' }]);
    expect(standby.wal).to.deep.equal([]);
  });
});

describe('read-only transactions on a primary', () => {
  it('refuses writes in BEGIN READ ONLY, and the next transaction may write again', () => {
    const { primary } = primaryAndStandby();
    primary.ok('a', 'START TRANSACTION READ ONLY, ISOLATION LEVEL REPEATABLE READ');
    expect(primary.rows('a', 'SELECT count(*) FROM kv')).to.deep.equal([{ count: 3 }]);
    expect(seen(primary.error('a', "INSERT INTO kv (v) VALUES ('four')"))).to.deep.equal(readOnly('INSERT'));
    expect(primary.error('a', 'SELECT 1').code).to.equal('25P02');
    primary.ok('a', 'ROLLBACK');
    primary.ok('a', 'BEGIN READ ONLY');
    expect(seen(primary.error('a', "SELECT nextval('kv_id_seq')"))).to.deep.equal(readOnly('nextval()'));
    primary.ok('a', 'ROLLBACK');
    expect(primary.ok('a', "INSERT INTO kv (v) VALUES ('four')").rowCount).to.equal(1);
    expect(primary.rows('a', "SELECT currval('kv_id_seq') AS id")).to.deep.equal([{ id: 4 }]);
  });

  it('starts read-only under default_transaction_read_only unless BEGIN READ WRITE says otherwise', () => {
    const { primary } = primaryAndStandby();
    primary.options = { defaultReadOnly: true };
    expect(seen(primary.error('a', "UPDATE kv SET v = 'x'"))).to.deep.equal(readOnly('UPDATE'));
    expect(seen(primary.error('a', 'CREATE TABLE t (a int)'))).to.deep.equal(readOnly('CREATE TABLE'));
    expect(seen(primary.error('a', 'CREATE ROLE r'))).to.deep.equal(readOnly('CREATE ROLE'));
    // Fine in a read-only transaction, unlike during recovery.
    expect(primary.ok('a', 'VACUUM kv').command).to.equal('VACUUM');
    primary.ok('a', 'BEGIN');
    expect(primary.rows('a', 'SELECT txid_current() > 0 AS assigned')).to.deep.equal([{ assigned: true }]);
    expect(primary.ok('a', 'LOCK TABLE kv').command).to.equal('LOCK TABLE');
    primary.ok('a', 'COMMIT');
    primary.ok('a', 'BEGIN READ WRITE');
    expect(primary.ok('a', "UPDATE kv SET v = 'x' WHERE id = 1").rowCount).to.equal(1);
    primary.ok('a', 'COMMIT');
    expect(primary.rows('a', 'SELECT v FROM kv WHERE id = 1')).to.deep.equal([{ v: 'x' }]);
    primary.options = {};
    expect(primary.ok('a', 'DELETE FROM kv WHERE id = 1').rowCount).to.equal(1);
  });
});
