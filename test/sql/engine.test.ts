/*
 * The SQL engine without actors: statements, results, PostgreSQL's error texts, MVCC
 * isolation between sessions, waiting on row locks, and commit visibility only after the
 * commit is finished (flushed).
 */
import { expect } from 'chai';
import { PgError } from '../../src/errors.js';
import { Engine } from '../../src/sql/engine.js';
import { parseSql } from '../../src/sql/parse.js';
import type { QueryResult } from '../../src/sql/result.js';
import { DatabaseState } from '../../src/storage/state.js';
import { redo } from '../../src/storage/redo.js';
import { Harness } from './harness.js';

describe('SQL engine', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
    h.ok('a', 'CREATE TABLE kv (id int PRIMARY KEY, v text NOT NULL DEFAULT \'none\', n int)');
  });

  it('inserts, selects, updates and deletes, with results shaped for JavaScript', () => {
    expect(h.ok('a', "INSERT INTO kv VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', NULL)")).to.deep.equal({ command: 'INSERT', rowCount: 3, columns: [], rows: [] });
    const all = h.ok('a', 'SELECT * FROM kv ORDER BY id');
    expect(all.columns).to.deep.equal([{ name: 'id', type: 'int4' }, { name: 'v', type: 'text' }, { name: 'n', type: 'int4' }]);
    expect(all.rows).to.deep.equal([{ id: 1, v: 'a', n: 10 }, { id: 2, v: 'b', n: 20 }, { id: 3, v: 'c', n: null }]);
    expect(h.ok('a', "UPDATE kv SET v = 'bb', n = n + 1 WHERE id = 2").rowCount).to.equal(1);
    expect(h.rows('a', 'SELECT v, n FROM kv WHERE id = 2')).to.deep.equal([{ v: 'bb', n: 21 }]);
    expect(h.ok('a', 'DELETE FROM kv WHERE n IS NULL OR id IN (1)').rowCount).to.equal(2);
    expect(h.rows('a', 'SELECT count(*) FROM kv')).to.deep.equal([{ count: 1 }]);
    expect(h.rows('a', 'INSERT INTO kv (id) VALUES (9) RETURNING id, v')).to.deep.equal([{ id: 9, v: 'none' }]);
  });

  it('answers with aggregates, GROUP BY, ORDER BY, LIMIT and OFFSET', () => {
    h.ok('a', "INSERT INTO kv VALUES (1, 'x', 5), (2, 'y', 7), (3, 'x', 9), (4, 'y', NULL), (5, 'z', 1)");
    expect(h.rows('a', 'SELECT v, count(*), sum(n), max(n) FROM kv GROUP BY v ORDER BY v')).to.deep.equal([
      { v: 'x', count: 2, sum: 14, max: 9 }, { v: 'y', count: 2, sum: 7, max: 7 }, { v: 'z', count: 1, sum: 1, max: 1 },
    ]);
    expect(h.rows('a', 'SELECT id FROM kv ORDER BY n DESC LIMIT 2')).to.deep.equal([{ id: 4 }, { id: 3 }]);
    expect(h.rows('a', 'SELECT id FROM kv ORDER BY id LIMIT 2 OFFSET 3')).to.deep.equal([{ id: 4 }, { id: 5 }]);
    expect(h.rows('a', 'SELECT min(id) AS first, avg(n) FROM kv WHERE n > 1')).to.deep.equal([{ first: 1, avg: 7 }]);
    expect(h.rows('a', "SELECT 1 + 2 AS three, 'a' || 'b' AS ab, txid_current() > 0 AS has_xid")).to.deep.equal([{ three: 3, ab: 'ab', has_xid: true }]);
  });

  it('reads generate_series, and fills tables with INSERT ... SELECT and CREATE TABLE AS', () => {
    expect(h.rows('a', 'SELECT * FROM generate_series(1, 3)')).to.deep.equal([{ generate_series: 1 }, { generate_series: 2 }, { generate_series: 3 }]);
    expect(h.rows('a', 'SELECT x * 10 AS t FROM generate_series(5, 1, -2) AS g(x)')).to.deep.equal([{ t: 50 }, { t: 30 }, { t: 10 }]);
    expect(h.ok('a', "INSERT INTO kv (id, v) SELECT g, 'gen' FROM generate_series(1, 100) AS g").rowCount).to.equal(100);
    expect(h.rows('a', 'SELECT count(*), min(id), max(id) FROM kv')).to.deep.equal([{ count: 100, min: 1, max: 100 }]);
    const ctas = h.ok('a', 'CREATE TABLE evens AS SELECT id, v FROM kv WHERE id % 2 = 0');
    expect([ctas.command, ctas.rowCount]).to.deep.equal(['SELECT', 50]);
    expect(h.rows('a', 'SELECT id, v FROM evens ORDER BY id LIMIT 2')).to.deep.equal([{ id: 2, v: 'gen' }, { id: 4, v: 'gen' }]);
    expect(h.ok('a', 'INSERT INTO kv (id, v) SELECT id + 1000, v FROM evens').rowCount).to.equal(50);
    expect(h.error('a', 'INSERT INTO kv (id, v) SELECT id, v FROM evens').code).to.equal('23505');
    const selectInto = h.ok('a', 'SELECT id AS n INTO small FROM kv WHERE id <= 3');
    expect([selectInto.command, selectInto.rowCount, selectInto.rows]).to.deep.equal(['SELECT', 3, []]);
    expect(h.rows('a', 'SELECT n FROM small ORDER BY n')).to.deep.equal([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('reports errors with PostgreSQL\'s codes and texts', () => {
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1)");
    const dup = h.error('a', "INSERT INTO kv VALUES (1, 'again', 2)");
    expect([dup.code, dup.message, dup.detail]).to.deep.equal(['23505', 'duplicate key value violates unique constraint "kv_pkey"', 'Key (id)=(1) already exists.']);
    const missing = h.error('a', 'SELECT * FROM nope');
    expect([missing.code, missing.message]).to.deep.equal(['42P01', 'relation "nope" does not exist']);
    const nullViolation = h.error('a', 'INSERT INTO kv (id, v) VALUES (5, NULL)');
    expect([nullViolation.code, nullViolation.message, nullViolation.detail]).to.deep.equal(['23502', 'null value in column "v" of relation "kv" violates not-null constraint', 'Failing row contains (5, null, null).']);
    expect(h.error('a', "INSERT INTO kv VALUES ('x', 'a', 1)").message).to.equal('invalid input syntax for type integer: "x"');
    expect(h.error('a', 'INSERT INTO kv VALUES (3000000000, \'a\', 1)').message).to.equal('integer out of range');
    expect(h.error('a', 'SELECT nope FROM kv').message).to.equal('column "nope" does not exist');
    expect(h.error('a', 'CREATE TABLE kv (id int)').message).to.equal('relation "kv" already exists');
    expect(h.error('a', 'SELECT 1/0').message).to.equal('division by zero');
    const syntax = (() => { try { parseSql('SELEC 1'); } catch (e) { return e as PgError; } return null; })()!;
    expect([syntax.code, syntax.message, syntax.position]).to.deep.equal(['42601', 'syntax error at or near "SELEC"', 1]);
  });

  it('keeps a failed transaction failed until ROLLBACK, and rolls its changes back', () => {
    h.ok('a', 'BEGIN');
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1)");
    h.error('a', "INSERT INTO kv VALUES (1, 'b', 1)");
    const aborted = h.error('a', 'SELECT 1');
    expect([aborted.code, aborted.message]).to.deep.equal(['25P02', 'current transaction is aborted, commands ignored until end of transaction block']);
    expect(h.ok('a', 'COMMIT').command).to.equal('ROLLBACK');
    expect(h.rows('b', 'SELECT * FROM kv')).to.deep.equal([]);
  });

  it('hides uncommitted changes from other sessions (READ COMMITTED)', () => {
    h.ok('a', 'BEGIN');
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1)");
    expect(h.rows('a', 'SELECT id FROM kv')).to.deep.equal([{ id: 1 }]);
    expect(h.rows('b', 'SELECT id FROM kv')).to.deep.equal([]);
    h.ok('a', 'COMMIT');
    expect(h.rows('b', 'SELECT id FROM kv')).to.deep.equal([{ id: 1 }]);
  });

  it('keeps one snapshot for a REPEATABLE READ transaction', () => {
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1)");
    h.ok('b', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
    expect(h.rows('b', 'SELECT v FROM kv')).to.deep.equal([{ v: 'a' }]);
    h.ok('a', "UPDATE kv SET v = 'changed' WHERE id = 1");
    expect(h.rows('b', 'SELECT v FROM kv'), 'still the first snapshot').to.deep.equal([{ v: 'a' }]);
    const conflict = h.error('b', "UPDATE kv SET v = 'mine' WHERE id = 1");
    expect([conflict.code, conflict.message]).to.deep.equal(['40001', 'could not serialize access due to concurrent update']);
    h.ok('b', 'ROLLBACK');
    h.ok('c', 'BEGIN');
    expect(h.rows('c', 'SELECT v FROM kv')).to.deep.equal([{ v: 'changed' }]);
  });

  it('makes a writer wait for the running transaction holding its row, then sees the new version', () => {
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1)");
    h.ok('a', 'BEGIN');
    h.ok('a', 'UPDATE kv SET n = n + 10 WHERE id = 1');
    const blocked = h.run('b', 'UPDATE kv SET n = n + 100 WHERE id = 1');
    expect(blocked.kind).to.equal('wait');
    h.ok('a', 'COMMIT');
    expect(h.ok('b', 'UPDATE kv SET n = n + 100 WHERE id = 1').rowCount).to.equal(1);
    expect(h.rows('c', 'SELECT n FROM kv')).to.deep.equal([{ n: 111 }]);
  });

  it('waits on a key being inserted by a running transaction, then reports the duplicate', () => {
    h.ok('a', 'BEGIN');
    h.ok('a', "INSERT INTO kv VALUES (7, 'a', 1)");
    expect(h.run('b', "INSERT INTO kv VALUES (7, 'b', 1)").kind).to.equal('wait');
    h.ok('a', 'COMMIT');
    expect(h.error('b', "INSERT INTO kv VALUES (7, 'b', 1)").code).to.equal('23505');
    h.ok('a', 'BEGIN');
    h.ok('a', 'DELETE FROM kv WHERE id = 7');
    expect(h.run('b', "INSERT INTO kv VALUES (7, 'b', 1)").kind).to.equal('wait');
    h.ok('a', 'ROLLBACK');
    expect(h.error('b', "INSERT INTO kv VALUES (7, 'b', 1)").code).to.equal('23505');
    expect(h.ok('b', "INSERT INTO kv VALUES (7, 'b', 1) ON CONFLICT DO NOTHING").rowCount).to.equal(0);
  });

  it('detects a deadlock between two transactions', () => {
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1), (2, 'b', 2)");
    h.ok('a', 'BEGIN');
    h.ok('b', 'BEGIN');
    h.ok('a', 'UPDATE kv SET n = 0 WHERE id = 1');
    h.ok('b', 'UPDATE kv SET n = 0 WHERE id = 2');
    expect(h.run('a', 'UPDATE kv SET n = 0 WHERE id = 2').kind).to.equal('wait');
    const deadlock = h.error('b', 'UPDATE kv SET n = 0 WHERE id = 1');
    expect([deadlock.code, deadlock.message]).to.deep.equal(['40P01', 'deadlock detected']);
  });

  it('VACUUM removes versions dead to every snapshot and logs the newest removed xid', () => {
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1), (2, 'b', 2)");
    h.ok('a', "UPDATE kv SET v = 'a2' WHERE id = 1");
    h.ok('a', 'DELETE FROM kv WHERE id = 2');
    h.ok('r', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
    h.rows('r', 'SELECT * FROM kv'); // holds a snapshot from before the next change
    h.ok('a', "UPDATE kv SET v = 'a3' WHERE id = 1");
    const heap = () => [...h.engine.state.heap(h.engine.state.catalog.tables[0]!.oid).scan()].length;
    expect(heap()).to.equal(4);
    const first = h.run('a', 'VACUUM kv');
    expect(first.kind).to.equal('done');
    const record = (first as unknown as { records: { body: { ctids: unknown[]; latestRemovedXid: number } }[] }).records[0]!;
    expect(record.body.ctids).to.have.length(2); // the first version of 1, and 2; not the version r still sees
    expect(heap()).to.equal(2);
    expect(h.rows('r', 'SELECT v FROM kv')).to.deep.equal([{ v: 'a2' }]);
    h.ok('r', 'COMMIT');
    h.ok('a', 'VACUUM');
    expect(heap()).to.equal(1);
    h.ok('a', 'BEGIN');
    expect(h.error('a', 'VACUUM').message).to.equal('VACUUM cannot run inside a transaction block');
  });

  it('rolls back to savepoints and releases them', () => {
    h.ok('a', 'BEGIN');
    h.ok('a', "INSERT INTO kv VALUES (1, 'kept', 1)");
    expect(h.ok('a', 'SAVEPOINT s1').command).to.equal('SAVEPOINT');
    h.ok('a', "INSERT INTO kv VALUES (2, 'undone', 2)");
    h.ok('a', 'SAVEPOINT s2');
    h.ok('a', "UPDATE kv SET v = 'undone too' WHERE id = 1");
    expect(h.ok('a', 'ROLLBACK TO SAVEPOINT s1').command).to.equal('ROLLBACK');
    expect(h.rows('a', 'SELECT id, v FROM kv ORDER BY id')).to.deep.equal([{ id: 1, v: 'kept' }]);
    h.ok('a', "INSERT INTO kv VALUES (3, 'after', 3)");
    expect(h.ok('a', 'RELEASE SAVEPOINT s1').command).to.equal('RELEASE');
    h.ok('a', 'COMMIT');
    expect(h.rows('b', 'SELECT id, v FROM kv ORDER BY id')).to.deep.equal([{ id: 1, v: 'kept' }, { id: 3, v: 'after' }]);
  });

  it('recovers a failed transaction with ROLLBACK TO SAVEPOINT', () => {
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1)");
    h.ok('a', 'BEGIN');
    h.ok('a', 'SAVEPOINT before');
    expect(h.error('a', "INSERT INTO kv VALUES (1, 'dup', 1)").code).to.equal('23505');
    expect(h.error('a', 'SELECT 1').code).to.equal('25P02');
    h.ok('a', 'ROLLBACK TO before');
    h.ok('a', "INSERT INTO kv VALUES (4, 'fine', 4)");
    h.ok('a', 'COMMIT');
    expect(h.rows('b', 'SELECT id FROM kv ORDER BY id')).to.deep.equal([{ id: 1 }, { id: 4 }]);
    const outside = h.error('c', 'SAVEPOINT x');
    expect([outside.code, outside.message]).to.deep.equal(['25P01', 'SAVEPOINT can only be used in transaction blocks']);
    h.ok('c', 'BEGIN');
    const unknown = h.error('c', 'ROLLBACK TO SAVEPOINT nope');
    expect([unknown.code, unknown.message]).to.deep.equal(['3B001', 'savepoint "nope" does not exist']);
  });

  it('keeps changes made under a released savepoint invisible until the commit is finished', () => {
    h.ok('a', 'BEGIN');
    h.ok('a', 'SAVEPOINT s');
    h.ok('a', "INSERT INTO kv VALUES (1, 'sub', 1)");
    h.ok('a', 'RELEASE s');
    const [commit] = parseSql('COMMIT');
    const outcome = h.engine.execute('a', commit!, { params: [], defaultIsolation: 'read committed', now: 0, currentWalLsn: 0, inRecovery: false });
    expect(h.rows('b', 'SELECT id FROM kv')).to.deep.equal([]);
    h.engine.finishCommit((outcome as { commit: number }).commit);
    expect(h.rows('b', 'SELECT id FROM kv')).to.deep.equal([{ id: 1 }]);
  });

  it('hands out sequence values outside transactions, logging ahead', () => {
    h.ok('a', 'CREATE SEQUENCE s INCREMENT BY 5 START WITH 10');
    expect(h.rows('a', "SELECT nextval('s') AS v")).to.deep.equal([{ v: 10 }]);
    h.ok('a', 'BEGIN');
    expect(h.rows('a', "SELECT nextval('s') AS v")).to.deep.equal([{ v: 15 }]);
    h.ok('a', 'ROLLBACK');
    expect(h.rows('a', "SELECT nextval('s') AS v, currval('s') AS c")).to.deep.equal([{ v: 20, c: 20 }]);
    expect(h.error('b', "SELECT currval('s')").message).to.equal('currval of sequence "s" is not yet defined in this session');
    expect(h.rows('a', "SELECT setval('s', 100)")).to.deep.equal([{ setval: 100 }]);
    expect(h.rows('b', "SELECT nextval('s')")).to.deep.equal([{ nextval: 105 }]);
    expect(h.error('a', "SELECT nextval('nope')").message).to.equal('relation "nope" does not exist');
    h.ok('a', "INSERT INTO kv VALUES (nextval('s'), 'seq', 0)");
    expect(h.rows('a', 'SELECT id FROM kv')).to.deep.equal([{ id: 110 }]);
  });

  it('takes table locks in PostgreSQL\'s modes and makes conflicting statements wait', () => {
    h.ok('a', 'CREATE TABLE other (id int)');
    const outside = h.error('a', 'LOCK TABLE kv IN SHARE MODE');
    expect([outside.code, outside.message]).to.deep.equal(['25P01', 'LOCK TABLE can only be used in transaction blocks']);
    h.ok('a', 'BEGIN');
    h.ok('a', 'LOCK TABLE kv IN SHARE MODE');
    expect(h.rows('b', 'SELECT count(*) FROM kv'), 'ACCESS SHARE goes with SHARE').to.deep.equal([{ count: 0 }]);
    expect(h.run('b', "INSERT INTO kv VALUES (1, 'x', 1)").kind, 'ROW EXCLUSIVE waits for SHARE').to.equal('wait');
    h.ok('c', 'BEGIN');
    const nowait = h.error('c', 'LOCK TABLE kv IN EXCLUSIVE MODE NOWAIT');
    expect([nowait.code, nowait.message]).to.deep.equal(['55P03', 'could not obtain lock on relation "kv"']);
    expect(h.engine.waitOver('s:a')).to.equal(false);
    h.ok('a', 'COMMIT');
    expect(h.engine.waitOver('s:a')).to.equal(true);
    expect(h.ok('b', "INSERT INTO kv VALUES (1, 'x', 1)").rowCount).to.equal(1);
    h.ok('d', 'BEGIN');
    const exclusive = h.run('d', 'LOCK TABLE other IN ACCESS EXCLUSIVE MODE');
    expect(exclusive.kind).to.equal('done');
    expect((exclusive as { records: readonly { rmgr: number; info: number }[] }).records.map((r) => [r.rmgr, r.info]), 'logged for standbys').to.deep.equal([[8, 0]]);
    expect(h.engine.lockRows()).to.deep.include({ relation: 'other', session: 'd', mode: 'AccessExclusiveLock' });
    expect(h.run('b', 'SELECT * FROM other').kind).to.equal('wait');
    h.ok('d', 'ROLLBACK');
    expect(h.rows('b', 'SELECT * FROM other')).to.deep.equal([]);
  });

  it('detects a deadlock between table locks', () => {
    h.ok('a', 'CREATE TABLE t2 (id int)');
    h.ok('a', 'BEGIN');
    h.ok('b', 'BEGIN');
    h.ok('a', 'LOCK TABLE kv IN EXCLUSIVE MODE');
    h.ok('b', 'LOCK TABLE t2 IN EXCLUSIVE MODE');
    expect(h.run('a', 'LOCK TABLE t2 IN EXCLUSIVE MODE').kind).to.equal('wait');
    expect(h.error('b', 'LOCK TABLE kv IN EXCLUSIVE MODE').code).to.equal('40P01');
  });

  it('declares, fetches from and closes cursors', () => {
    h.ok('a', "INSERT INTO kv SELECT g, 'r', g FROM generate_series(1, 10) AS g");
    expect(h.error('a', 'DECLARE c CURSOR FOR SELECT id FROM kv').message).to.equal('DECLARE CURSOR can only be used in transaction blocks');
    h.ok('a', 'BEGIN');
    expect(h.ok('a', 'DECLARE c CURSOR FOR SELECT id FROM kv ORDER BY id').command).to.equal('DECLARE CURSOR');
    expect(h.rows('a', 'FETCH 3 FROM c')).to.deep.equal([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(h.ok('a', 'MOVE 5 FROM c').rowCount).to.equal(5);
    expect(h.rows('a', 'FETCH ALL FROM c')).to.deep.equal([{ id: 9 }, { id: 10 }]);
    expect(h.rows('a', 'FETCH 1 FROM c')).to.deep.equal([]);
    h.ok('a', 'CLOSE c');
    expect(h.error('a', 'FETCH 1 FROM c').message).to.equal('cursor "c" does not exist');
  });

  it('keeps relation names unique across transactions, and a rolled-back DROP does not count', () => {
    h.ok('a', 'BEGIN');
    h.ok('a', 'CREATE TABLE u (id int)');
    expect(h.run('b', 'CREATE TABLE u (id int)').kind, 'waits for the creator').to.equal('wait');
    h.ok('a', 'COMMIT');
    const dup = h.error('b', 'CREATE TABLE u (id int)');
    expect([dup.code, dup.message]).to.deep.equal(['42P07', 'relation "u" already exists']);
    h.ok('a', 'BEGIN');
    h.ok('a', 'DROP TABLE u');
    h.ok('a', 'ROLLBACK');
    h.ok('a', 'DROP TABLE u');
    expect(h.error('a', 'SELECT * FROM u').message).to.equal('relation "u" does not exist');
  });

  it('computes arithmetic with PostgreSQL\'s types and errors', () => {
    expect(h.rows('a', 'SELECT 1 / 2.5 AS q, 7 / 2 AS i')).to.deep.equal([{ q: 0.4, i: 3 }]);
    expect(h.error('a', 'SELECT 5 % 0').message).to.equal('division by zero');
    expect(h.error('a', 'SELECT 2147483647 + 1').message).to.equal('integer out of range');
  });

  it('never repeats values of a descending sequence after restoring a checkpoint image', () => {
    h.ok('a', 'CREATE SEQUENCE down INCREMENT BY -1');
    expect(h.rows('a', "SELECT nextval('down') AS v")).to.deep.equal([{ v: -1 }]);
    const image = structuredClone(h.engine.state.image());
    expect(h.rows('a', "SELECT nextval('down') AS v, nextval('down') AS w")).to.deep.equal([{ v: -2, w: -3 }]);
    const restored = new Engine(DatabaseState.fromImage(image));
    const [next] = parseSql("SELECT nextval('down') AS v");
    const outcome = restored.execute('x', next!, { params: [], defaultIsolation: 'read committed', now: 0, currentWalLsn: 0, inRecovery: false });
    const value = (outcome as { result: QueryResult }).result.rows[0]!['v'] as number;
    expect(value, 'after the image, never a value handed out before').to.be.lessThan(-3);
  });

  it('rebuilds its tables exactly when its WAL is replayed', () => {
    h.ok('a', "INSERT INTO kv SELECT g, 'v' || g, g FROM generate_series(1, 50) AS g");
    h.ok('a', 'BEGIN');
    h.ok('a', "UPDATE kv SET v = 'changed' WHERE id % 3 = 0");
    h.ok('a', 'SAVEPOINT s');
    h.ok('a', 'DELETE FROM kv WHERE id > 40');
    h.ok('a', 'ROLLBACK TO s');
    h.ok('a', 'DELETE FROM kv WHERE id < 5');
    h.ok('a', 'COMMIT');
    h.ok('b', 'BEGIN');
    h.ok('b', "INSERT INTO kv VALUES (100, 'never', 0)");
    h.ok('b', 'ROLLBACK');
    h.ok('a', 'VACUUM kv');
    const replica = new DatabaseState();
    for (const record of h.wal) redo(replica, record);
    const rows = (state: DatabaseState) => [...state.heap(state.catalog.tables[0]!.oid).scan()].map(([ctid, t]) => [ctid, t.xmin, t.xmax, t.values]);
    expect(rows(replica)).to.deep.equal(rows(h.engine.state));
    expect(replica.clog.snapshot()).to.deep.equal(h.engine.state.clog.snapshot());
    expect(h.wal.length, 'the workload really wrote WAL').to.be.greaterThan(50);
  });

  it('VACUUM FREEZE marks old versions frozen', () => {
    h.ok('a', "INSERT INTO kv VALUES (1, 'a', 1), (2, 'b', 2)");
    h.ok('b', 'BEGIN');
    h.ok('b', "INSERT INTO kv VALUES (3, 'running', 3)");
    h.ok('a', 'VACUUM FREEZE kv');
    const xmins = [...h.engine.state.heap(h.engine.state.catalog.tables[0]!.oid).scan()].map(([, t]) => [t.values[0], t.xmin]);
    expect(xmins.filter(([id]) => id !== 3).map(([, xmin]) => xmin)).to.deep.equal([2, 2]);
    expect(xmins.find(([id]) => id === 3)![1], 'a running insert is not frozen').to.be.greaterThan(2);
    expect(h.rows('c', 'SELECT id FROM kv ORDER BY id')).to.deep.equal([{ id: 1 }, { id: 2 }]);
  });

  it('keeps a commit invisible to others until it is finished (flushed)', () => {
    const [insert] = parseSql("INSERT INTO kv VALUES (1, 'a', 1)");
    const outcome = h.engine.execute('a', insert!, { params: [], defaultIsolation: 'read committed', now: 0, currentWalLsn: 0, inRecovery: false });
    expect(outcome.kind).to.equal('done');
    const xid = (outcome as { commit: number }).commit;
    expect(h.rows('b', 'SELECT id FROM kv'), 'committed in the clog but not yet flushed').to.deep.equal([]);
    h.engine.finishCommit(xid);
    expect(h.rows('b', 'SELECT id FROM kv')).to.deep.equal([{ id: 1 }]);
  });
});
