/*
 * Hot standby query conflicts as a standby's users meet them: replay waits for the sessions
 * in its way as long as max_standby_streaming_delay allows, then cancels the running
 * statement (ERROR) or ends the session idle in its transaction (FATAL), counts it in
 * pg_stat_database_conflicts, and goes on until the standby's data is the primary's.
 */
import { expect } from 'chai';
import type { Server, Session } from '../../src/index.js';
import { PgError } from '../../src/errors.js';
import { caughtUp, clusterPerTest, eventually, log, received, until } from '../helpers.js';

const SEG = 1024 * 1024;

async function conflicts(standby: Server): Promise<Record<string, unknown>> {
  return (await standby.query("SELECT confl_tablespace, confl_lock, confl_snapshot, confl_bufferpin, confl_deadlock FROM pg_stat_database_conflicts WHERE datname = 'postgres'")).rows[0]!;
}

async function failure(work: Promise<unknown>): Promise<PgError> {
  const outcome = await work.then(() => null, (err: unknown) => err);
  expect(outcome, 'the statement fails').to.be.instanceOf(PgError);
  return outcome as PgError;
}

describe('hot standby query conflicts', function () {
  this.timeout(60_000);
  const cluster = clusterPerTest('inline');

  async function pair(delay: string, standbySettings: Record<string, string> = {}): Promise<{ primary: Server; standby: Server }> {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { wal_writer_delay: '10ms' } });
    await primary.query('CREATE TABLE t (x int)');
    await primary.query('INSERT INTO t SELECT g FROM generate_series(1, 100) AS g');
    const standby = await cluster().addStandby('standby', { settings: { max_standby_streaming_delay: delay, ...standbySettings } });
    await caughtUp(primary, standby);
    return { primary, standby };
  }

  /** A standby session idle in a transaction that has read t (and holds its lock). */
  async function reader(standby: Server, isolation = 'READ COMMITTED'): Promise<Session> {
    const session = await standby.connect();
    await session.query(`BEGIN ISOLATION LEVEL ${isolation}`);
    expect((await session.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(100);
    return session;
  }

  it('lock: a session idle in its transaction on a dropped table is terminated after the delay, counted, and replay goes on', async () => {
    const { primary, standby } = await pair('100ms');
    const session = await reader(standby);
    await primary.query('DROP TABLE t');
    await primary.query('CREATE TABLE after_drop (x int)');
    await eventually(standby, "SELECT count(*) AS n FROM pg_stat_database_conflicts WHERE confl_lock = 1 AND datname = 'postgres'", (r) => r.rows[0]!['n'] === 1, 'the conflict to be counted');
    const fatal = await failure(session.query('SELECT 1'));
    expect(fatal.toFields()).to.include({
      severity: 'FATAL', code: '40001', message: 'terminating connection due to conflict with recovery',
      detail: 'User was holding a relation lock for too long.', hint: 'In a moment you should be able to reconnect to the database and repeat your command.',
    });
    expect(session.ended, 'the session is closed').to.equal(true);
    await caughtUp(primary, standby);
    expect((await standby.query('SELECT count(*) AS n FROM after_drop')).rows[0]!['n']).to.equal(0);
    expect((await failure(standby.query('SELECT * FROM t'))).code).to.equal('42P01');
    expect(await conflicts(standby)).to.deep.equal({ confl_tablespace: 0, confl_lock: 1, confl_snapshot: 0, confl_bufferpin: 0, confl_deadlock: 0 });
    expect((await standby.query("SELECT conflicts FROM pg_stat_database WHERE datname = 'postgres'")).rows[0]!['conflicts']).to.equal(1);
    expect(log(standby)).to.include('FATAL:  terminating connection due to conflict with recovery');
  });

  it('lock: with a long delay replay waits for the transaction, which finishes, and nothing is counted', async () => {
    const { primary, standby } = await pair('-1');
    const session = await reader(standby);
    await primary.query('DROP TABLE t');
    await received(primary, standby);
    // The drop arrived but waits: the table is still there, for this session and for others.
    expect((await session.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(100);
    expect((await standby.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(100);
    await session.query('COMMIT');
    await caughtUp(primary, standby);
    expect((await failure(standby.query('SELECT * FROM t'))).code).to.equal('42P01');
    expect(await conflicts(standby)).to.deep.equal({ confl_tablespace: 0, confl_lock: 0, confl_snapshot: 0, confl_bufferpin: 0, confl_deadlock: 0 });
    expect((await session.query('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
  });

  /**
   * A standby session that read t, now waiting for u, which a primary transaction (`locker`)
   * holds exclusively (its lock replayed); then t is dropped: replay needs the session's lock
   * on t while the session waits for replay's on u. Resolves to the session's outcome.
   */
  async function waitingOnReplay(primary: Server, standby: Server): Promise<{ session: Session; locker: Session; outcome: PgError }> {
    await primary.query('CREATE TABLE u (x int)');
    await caughtUp(primary, standby);
    const session = await reader(standby);
    const locker = await primary.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE u IN ACCESS EXCLUSIVE MODE');
    await primary.query('CREATE TABLE flush_marker (x int)');
    await caughtUp(primary, standby);
    const waiting = failure(session.query('SELECT count(*) FROM u'));
    await primary.query('DROP TABLE t');
    return { session, locker, outcome: await waiting };
  }

  it('lock: a statement waiting for a lock replay holds is cancelled with an ERROR; the session runs the next transaction', async () => {
    const { primary, standby } = await pair('100ms');
    const { session, locker, outcome: cancelled } = await waitingOnReplay(primary, standby);
    expect(cancelled.toFields()).to.include({
      severity: 'ERROR', code: '40001', message: 'canceling statement due to conflict with recovery', detail: 'User was holding a relation lock for too long.',
    });
    expect(session.ended).to.equal(false);
    expect((await failure(session.query('SELECT 1'))).code, 'the transaction is aborted').to.equal('25P02');
    await session.query('ROLLBACK');
    await locker.query('COMMIT');
    await caughtUp(primary, standby);
    expect((await session.query('SELECT count(*) AS n FROM u')).rows[0]!['n']).to.equal(0);
    expect((await conflicts(standby))['confl_lock']).to.equal(1);
  });

  it('deadlock: replay waiting forever for a session that waits for a lock replay holds cancels it after deadlock_timeout', async () => {
    const { primary, standby } = await pair('-1', { deadlock_timeout: '100ms' });
    const { session, locker, outcome: cancelled } = await waitingOnReplay(primary, standby);
    expect(cancelled.toFields()).to.include({
      severity: 'ERROR', code: '40001', message: 'canceling statement due to conflict with recovery', detail: 'User transaction caused buffer deadlock with recovery.',
    });
    await session.query('ROLLBACK');
    await caughtUp(primary, standby);
    expect(await conflicts(standby)).to.deep.equal({ confl_tablespace: 0, confl_lock: 0, confl_snapshot: 0, confl_bufferpin: 0, confl_deadlock: 1 });
    await locker.query('COMMIT');
  });

  it('snapshot: VACUUM removing rows an old snapshot sees ends that transaction after the delay; before that, it sees the primary as of its snapshot', async () => {
    const { primary, standby } = await pair('300ms');
    const session = await reader(standby, 'REPEATABLE READ');
    await primary.query('DELETE FROM t WHERE x <= 50');
    await caughtUp(primary, standby);
    // The delete is replayed; the snapshot still sees the rows as they were.
    expect((await session.query('SELECT count(*) AS n, sum(x) AS s FROM t')).rows[0]).to.deep.equal({ n: 100, s: 5050 });
    await primary.query('VACUUM t');
    await eventually(standby, "SELECT confl_snapshot FROM pg_stat_database_conflicts WHERE datname = 'postgres'", (r) => r.rows[0]!['confl_snapshot'] === 1, 'the snapshot conflict');
    const fatal = await failure(session.query('SELECT count(*) FROM t'));
    expect(fatal.toFields()).to.include({ severity: 'FATAL', code: '40001', detail: 'User query might have needed to see row versions that must be removed.' });
    await caughtUp(primary, standby);
    expect((await standby.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(50);
  });

  it('snapshot: a running query is cancelled with an ERROR (the session idle in its transaction would be ended); the session goes on', async () => {
    const { primary, standby } = await pair('100ms');
    const session = await reader(standby, 'REPEATABLE READ');
    const running = failure(session.query('SELECT pg_sleep(60)'));
    await primary.query('DELETE FROM t WHERE x <= 50');
    await primary.query('VACUUM t');
    const cancelled = await running;
    expect(cancelled.toFields()).to.include({
      severity: 'ERROR', code: '40001', message: 'canceling statement due to conflict with recovery',
      detail: 'User query might have needed to see row versions that must be removed.',
    });
    expect((await failure(session.query('SELECT 1'))).code).to.equal('25P02');
    await session.query('ROLLBACK');
    await caughtUp(primary, standby);
    expect((await session.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(50);
    expect((await conflicts(standby))['confl_snapshot']).to.equal(1);
  });

  it('waits from when the WAL arrived, not from when the conflict began: WAL older than the delay ends the session at once', async () => {
    const { primary, standby } = await pair('1s');
    const session = await reader(standby);
    await standby.query('SELECT pg_wal_replay_pause()');
    await eventually(standby, 'SELECT pg_is_wal_replay_paused() AS p', (r) => r.rows[0]!['p'] === true, 'replay to pause');
    await primary.query('DROP TABLE t');
    await received(primary, standby);
    const arrived = performance.now();
    // More than max_standby_streaming_delay passes while replay is paused and the drop waits.
    await until(() => performance.now() - arrived > 1_200, 'the delay to pass since the WAL arrived');
    expect((await session.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(100);
    // Resumed, replay finds the delay spent already: the session is ended in the same step.
    await standby.query('SELECT pg_wal_replay_resume()');
    expect((await failure(session.query('SELECT 1'))).toFields()).to.include({ severity: 'FATAL', detail: 'User was holding a relation lock for too long.' });
  });

  it('pg_sleep() is a running statement a user can cancel', async () => {
    const { standby } = await pair('100ms');
    const session = await standby.connect();
    await session.query('BEGIN');
    const sleeping = failure(session.query('SELECT pg_sleep(60)'));
    session.cancel();
    expect((await sleeping).toFields()).to.include({ severity: 'ERROR', code: '57014', message: 'canceling statement due to user request' });
    await session.query('ROLLBACK');
    expect((await session.query('SELECT pg_sleep(0.01) AS s')).rows).to.deep.equal([{ s: '' }]);
  });

  it('bufferpin: a cursor open on a table VACUUM cleans ends its session after the delay', async () => {
    const { primary, standby } = await pair('100ms');
    const session = await standby.connect();
    await session.query('BEGIN');
    await session.query('DECLARE c CURSOR FOR SELECT x FROM t');
    expect((await session.query('FETCH 1 FROM c')).rowCount).to.equal(1);
    await primary.query('DELETE FROM t WHERE x <= 50');
    await primary.query('VACUUM t');
    await eventually(standby, "SELECT confl_bufferpin FROM pg_stat_database_conflicts WHERE datname = 'postgres'", (r) => r.rows[0]!['confl_bufferpin'] === 1, 'the buffer pin conflict');
    const fatal = await failure(session.query('FETCH 1 FROM c'));
    expect(fatal.toFields()).to.include({ severity: 'FATAL', code: '40001', detail: 'User was holding shared buffer pin for too long.' });
    await caughtUp(primary, standby);
    expect((await standby.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(50);
  });

  it('tablespace: DROP TABLESPACE ends the sessions in a transaction after the delay', async () => {
    const { primary, standby } = await pair('100ms');
    await primary.query("CREATE TABLESPACE spare LOCATION '/tmp/walship-spare'");
    await caughtUp(primary, standby);
    const session = await reader(standby);
    const idle = await standby.connect();
    expect((await idle.query('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
    await primary.query('DROP TABLESPACE spare');
    await eventually(standby, "SELECT confl_tablespace FROM pg_stat_database_conflicts WHERE datname = 'postgres'", (r) => r.rows[0]!['confl_tablespace'] === 1, 'the tablespace conflict');
    expect((await failure(session.query('SELECT 1'))).toFields()).to.include({ severity: 'FATAL', detail: 'User was or might have been using tablespace that must be dropped.' });
    // A session not in a transaction could not be using it.
    expect((await idle.query('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
  });

  it('database: DROP DATABASE terminates the sessions connected to it at once, whatever the delay', async () => {
    const { primary, standby } = await pair('-1');
    await primary.query('CREATE DATABASE other');
    await caughtUp(primary, standby);
    const inOther = await standby.connect({ database: 'other' });
    await inOther.query('BEGIN');
    expect((await inOther.query('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
    const inPostgres = await reader(standby);
    await primary.query('DROP DATABASE other');
    await caughtUp(primary, standby);
    expect((await failure(inOther.query('SELECT 1'))).toFields()).to.include({
      severity: 'FATAL', code: '57P04', message: 'terminating connection due to conflict with recovery', detail: 'User was connected to a database that must be dropped.',
    });
    expect((await inPostgres.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(100);
    await until(() => log(standby).includes('DETAIL:  User was connected to a database that must be dropped.'), 'the FATAL in the log');
  });

  describe('hot_standby_feedback', () => {
    async function deadRows(primary: Server): Promise<number> {
      return (await primary.query("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 't'")).rows[0]!['n_dead_tup'] as number;
    }

    it('keeps on the primary the rows a standby snapshot sees: no conflict, and they go once it ends', async () => {
      const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { wal_writer_delay: '10ms' } });
      await primary.query('CREATE TABLE t (x int)');
      await primary.query('INSERT INTO t SELECT g FROM generate_series(1, 100) AS g');
      const standby = await cluster().addStandby('standby', { settings: { max_standby_streaming_delay: '100ms', hot_standby_feedback: 'on' } });
      await caughtUp(primary, standby);
      const session = await reader(standby, 'REPEATABLE READ');
      const xmin = await eventually(primary, 'SELECT backend_xmin FROM pg_stat_replication', (r) => r.rows[0]?.['backend_xmin'] != null, 'the standby\'s xmin');
      await primary.query('DELETE FROM t WHERE x <= 50');
      await primary.query('VACUUM t');
      expect(await deadRows(primary), 'VACUUM kept what the standby may see').to.equal(50);
      await caughtUp(primary, standby);
      expect((await session.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(100);
      expect(await conflicts(standby)).to.deep.equal({ confl_tablespace: 0, confl_lock: 0, confl_snapshot: 0, confl_bufferpin: 0, confl_deadlock: 0 });
      await session.query('COMMIT');
      await eventually(primary, 'SELECT backend_xmin FROM pg_stat_replication', (r) => (r.rows[0]!['backend_xmin'] as number) > (xmin.rows[0]!['backend_xmin'] as number), 'the xmin to advance');
      await primary.query('VACUUM t');
      expect(await deadRows(primary)).to.equal(0);
      await caughtUp(primary, standby);
      expect((await standby.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(50);
    });

    it('with a slot the xmin is kept while the standby is away; without one it goes with the connection', async () => {
      const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { wal_writer_delay: '10ms' } });
      await primary.query('CREATE TABLE t (x int)');
      await primary.query('INSERT INTO t SELECT g FROM generate_series(1, 100) AS g');
      await primary.query("SELECT pg_create_physical_replication_slot('keeper')");
      const slotted = await cluster().addStandby('slotted', { slot: 'keeper', settings: { hot_standby_feedback: 'on' } });
      const plain = await cluster().addStandby('plain', { settings: { hot_standby_feedback: 'on' } });
      await caughtUp(primary, slotted);
      await caughtUp(primary, plain);
      await eventually(primary, "SELECT xmin FROM pg_replication_slots WHERE slot_name = 'keeper'", (r) => r.rows[0]!['xmin'] != null, 'the slot to take the xmin');
      await slotted.stop();
      await plain.stop();
      await eventually(primary, 'SELECT count(*) AS n FROM pg_stat_replication', (r) => r.rows[0]!['n'] === 0, 'both standbys to be gone');
      expect((await primary.query("SELECT xmin FROM pg_replication_slots WHERE slot_name = 'keeper'")).rows[0]!['xmin']).to.not.equal(null);
      await primary.query('DELETE FROM t WHERE x <= 50');
      await primary.query('VACUUM t');
      expect(await deadRows(primary), 'the slot holds them').to.equal(50);
      await primary.query("SELECT pg_drop_replication_slot('keeper')");
      await primary.query('VACUUM t');
      expect(await deadRows(primary), 'nothing holds them now').to.equal(0);
    });

    it('vacuum_defer_cleanup_age holds VACUUM back by that many transactions', async () => {
      const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { vacuum_defer_cleanup_age: '5' } });
      await primary.query('CREATE TABLE t (x int)');
      await primary.query('INSERT INTO t SELECT g FROM generate_series(1, 10) AS g');
      await primary.query('DELETE FROM t WHERE x <= 5');
      await primary.query('VACUUM t');
      expect(await deadRows(primary)).to.equal(5);
      for (let i = 0; i < 6; i++) await primary.query('INSERT INTO t VALUES (0)');
      await primary.query('VACUUM t');
      expect(await deadRows(primary)).to.equal(0);
    });
  });
});
