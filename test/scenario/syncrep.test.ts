/*
 * Synchronous replication as a DBA sees it: which standbys pg_stat_replication calls sync,
 * potential, quorum or async for a series of synchronous_standby_names settings, and commits
 * that wait exactly as long as their synchronous_commit level demands: stalled when a
 * standby's flush or replay is held back, released when it catches up, when the requirement
 * is lowered, when the session cancels, or when the server shuts down.
 */
import { expect } from 'chai';
import type { QueryResult, Server, ServerPlacement } from '../../src/index.js';
import { clusterPerTest, pgError } from '../helpers.js';

const SEG = 1024 * 1024;

async function setStandbyNames(primary: Server, value: string): Promise<void> {
  await primary.query(`ALTER SYSTEM SET synchronous_standby_names = '${value.replace(/'/g, "''")}'`);
  await primary.query('SELECT pg_reload_conf()');
}

/** pg_stat_replication's (application_name, sync_priority, sync_state), once every standby streams. */
async function syncRows(primary: Server, standbys: number): Promise<string[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const r = await primary.query('SELECT application_name, sync_priority, sync_state, state FROM pg_stat_replication ORDER BY application_name');
    if (r.rowCount === standbys && r.rows.every((row) => row['state'] === 'streaming')) {
      return r.rows.map((row) => `${String(row['application_name'])} ${String(row['sync_priority'])} ${String(row['sync_state'])}`);
    }
    if (performance.now() > deadline) throw new Error(`standbys not all streaming: ${JSON.stringify(r.rows)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A query's promise, and whether it has settled yet. */
function track(promise: Promise<QueryResult>): { promise: Promise<QueryResult>; settled: () => boolean } {
  let done = false;
  const watched = promise.finally(() => { done = true; });
  watched.catch(() => undefined);
  return { promise: watched, settled: () => done };
}

describe('synchronous replication: who is synchronous', function () {
  this.timeout(60_000);
  const cluster = clusterPerTest('inline');

  it('shows sync_priority and sync_state as PostgreSQL does for each setting, and as standbys come and go', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { synchronous_standby_names: 'FIRST 1 (s1, s2)' } });
    await cluster().addStandby('s1', { settings: { wal_retrieve_retry_interval: '50ms' } });
    await cluster().addStandby('s2');
    await cluster().addStandby('s3');
    expect(await syncRows(primary, 3)).to.deep.equal(['s1 1 sync', 's2 2 potential', 's3 0 async']);
    await setStandbyNames(primary, 'FIRST 2 (s2, *)');
    expect(await syncRows(primary, 3)).to.deep.equal(['s1 2 sync', 's2 1 sync', 's3 2 potential']);
    await setStandbyNames(primary, 'ANY 2 (s1, s2, s3)');
    expect(await syncRows(primary, 3)).to.deep.equal(['s1 1 quorum', 's2 1 quorum', 's3 1 quorum']);
    await setStandbyNames(primary, 's3, s1');
    expect(await syncRows(primary, 3)).to.deep.equal(['s1 2 potential', 's2 0 async', 's3 1 sync']);
    await setStandbyNames(primary, 'FIRST 5 (S1, "s2", s9)');
    expect(await syncRows(primary, 3)).to.deep.equal(['s1 1 sync', 's2 2 sync', 's3 0 async']);
    await setStandbyNames(primary, 'FIRST 1 (s2, s2, s1)');
    expect(await syncRows(primary, 3)).to.deep.equal(['s1 3 potential', 's2 1 sync', 's3 0 async']);
    await setStandbyNames(primary, '');
    expect(await syncRows(primary, 3)).to.deep.equal(['s1 0 async', 's2 0 async', 's3 0 async']);

    // The synchronous standby goes away: the next potential one takes over; it comes back: it is sync again.
    await setStandbyNames(primary, 'FIRST 1 (s1, s2)');
    await cluster().server('s1').stop();
    expect(await syncRows(primary, 2)).to.deep.equal(['s2 2 sync', 's3 0 async']);
    await cluster().server('s1').start();
    expect(await syncRows(primary, 3)).to.deep.equal(['s1 1 sync', 's2 2 potential', 's3 0 async']);
  });

  it('refuses a malformed synchronous_standby_names with PostgreSQL\'s error', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    const bad = await pgError(primary.query("ALTER SYSTEM SET synchronous_standby_names = 'FIRST x (s1)'"));
    expect([bad.code, bad.message]).to.deep.equal(['42601', 'invalid value for parameter "synchronous_standby_names": "FIRST x (s1)"']);
    expect(bad.detail).to.match(/syntax error at or near/);
    const zero = await pgError(primary.query("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 0 (s1)'"));
    expect(zero.message).to.contain('number of synchronous standbys (0) must be greater than zero');
  });
});

for (const placement of ['inline', 'thread'] as ServerPlacement[]) {
  describe(`synchronous replication: commit waits (${placement} placement)`, function () {
    this.timeout(60_000);
    const cluster = clusterPerTest(placement);

    it('waits for the standby\'s flush at on and for its replay at remote_apply, and no longer', async () => {
      const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { synchronous_standby_names: 'FIRST 1 (s1)', synchronous_commit: 'local' } });
      await primary.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
      const standby = await cluster().addStandby('s1', { settings: { wal_retrieve_retry_interval: '50ms' } });
      await syncRows(primary, 1);
      const applying = await primary.connect({ settings: { synchronous_commit: 'remote_apply' } });
      const flushing = await primary.connect({ settings: { synchronous_commit: 'on' } });
      const observer = await primary.connect();

      // remote_apply: read-your-writes on the standby the moment the commit returns.
      await applying.query("INSERT INTO t VALUES (1, 'applied')");
      expect((await standby.query('SELECT v FROM t WHERE id = 1')).rows).to.deep.equal([{ v: 'applied' }]);

      // Replay held back: an `on` commit (the standby flushes) returns, a remote_apply one waits,
      // invisible to other sessions, until replay resumes.
      await standby.query('SELECT pg_wal_replay_pause()');
      const waiting = track(applying.query("INSERT INTO t VALUES (2, 'waits for replay')"));
      await flushing.query("INSERT INTO t VALUES (3, 'flushed')");
      expect(waiting.settled()).to.equal(false);
      expect((await observer.query('SELECT count(*) AS n FROM t WHERE id = 2')).rows).to.deep.equal([{ n: 0 }]);
      await standby.query('SELECT pg_wal_replay_resume()');
      await waiting.promise;
      expect((await standby.query('SELECT v FROM t WHERE id = 2')).rows).to.deep.equal([{ v: 'waits for replay' }]);

      // The standby's flush held back (it is down): `on` waits, `local` and read-only work do not.
      await standby.stop();
      const onCommit = track(flushing.query("INSERT INTO t VALUES (4, 'waits for flush')"));
      const local = await primary.connect({ settings: { synchronous_commit: 'local' } });
      await local.query("INSERT INTO t VALUES (5, 'local')");
      await observer.query('BEGIN');
      await observer.query("INSERT INTO t VALUES (6, 'rolled back')");
      await observer.query('ROLLBACK');
      await observer.query('SELECT count(*) FROM t');
      // SET LOCAL lowers the level for one transaction only.
      const perTransaction = await primary.connect({ settings: { synchronous_commit: 'on' } });
      await perTransaction.query('BEGIN');
      await perTransaction.query("SET LOCAL synchronous_commit = 'local'");
      await perTransaction.query("INSERT INTO t VALUES (7, 'set local')");
      await perTransaction.query('COMMIT');
      expect(onCommit.settled()).to.equal(false);
      expect((await observer.query('SELECT count(*) AS n FROM t WHERE id = 4')).rows).to.deep.equal([{ n: 0 }]);
      await standby.start();
      await onCommit.promise;
      expect((await observer.query('SELECT count(*) AS n FROM t WHERE id = 4')).rows).to.deep.equal([{ n: 1 }]);
    });
  });
}

describe('synchronous replication: releasing waiters', function () {
  this.timeout(60_000);
  const cluster = clusterPerTest('inline');

  it('waits with no synchronous standby connected, and a reload that lowers the requirement releases it', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { synchronous_standby_names: 'FIRST 1 (nobody)', synchronous_commit: 'local' } });
    await primary.query('CREATE TABLE t (id int)');
    const session = await primary.connect({ settings: { synchronous_commit: 'on' } });
    const waiting = track(session.query('INSERT INTO t VALUES (1)'));
    // Another commit, at local, goes through meanwhile: the first is really waiting, not slow.
    const local = await primary.connect({ settings: { synchronous_commit: 'local' } });
    await local.query('INSERT INTO t VALUES (2)');
    expect(waiting.settled()).to.equal(false);
    await setStandbyNames(primary, '');
    const result = await waiting.promise;
    expect(result.command).to.equal('INSERT');
    expect((await primary.query('SELECT count(*) AS n FROM t')).rows).to.deep.equal([{ n: 2 }]);
  });

  it('a cancelled wait returns with PostgreSQL\'s WARNING and the commit stands locally', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { synchronous_standby_names: 's1', synchronous_commit: 'local' } });
    await primary.query('CREATE TABLE t (id int)');
    const session = await primary.connect({ settings: { synchronous_commit: 'remote_write' } });
    const waiting = track(session.query('INSERT INTO t VALUES (1)'));
    await primary.connect({ settings: { synchronous_commit: 'local' } }).then((s) => s.query('INSERT INTO t VALUES (2)'));
    expect(waiting.settled()).to.equal(false);
    session.cancel();
    const result = await waiting.promise;
    expect(result.notices).to.deep.equal([{
      code: '01000', severity: 'WARNING', message: 'canceling wait for synchronous replication due to user request',
      detail: 'The transaction has already committed locally, but might not have been replicated to the standby.',
    }]);
    expect((await primary.query('SELECT count(*) AS n FROM t WHERE id = 1')).rows).to.deep.equal([{ n: 1 }]);
  });

  it('a cancel sent with the commit (before it starts waiting) still ends the wait', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { synchronous_standby_names: 's1', synchronous_commit: 'local' } });
    await primary.query('CREATE TABLE t (id int)');
    const session = await primary.connect({ settings: { synchronous_commit: 'on' } });
    const waiting = session.query('INSERT INTO t VALUES (1)');
    session.cancel();
    expect((await waiting).notices?.map((n) => n.message)).to.deep.equal(['canceling wait for synchronous replication due to user request']);
  });

  it('a client that leaves while its commit waits does not make it visible', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { synchronous_standby_names: 's1', synchronous_commit: 'local' } });
    await primary.query('CREATE TABLE t (id int)');
    const session = await primary.connect({ settings: { synchronous_commit: 'on' } });
    const waiting = track(session.query('INSERT INTO t VALUES (1)'));
    await primary.connect({ settings: { synchronous_commit: 'local' } }).then((s) => s.query('INSERT INTO t VALUES (2)'));
    session.close();
    await waiting.promise.catch(() => undefined);
    const observer = await primary.connect();
    expect((await observer.query('SELECT count(*) AS n FROM t WHERE id = 1')).rows).to.deep.equal([{ n: 0 }]);
    // Released by the requirement going away: the commit then completes and shows.
    await setStandbyNames(primary, '');
    const deadline = performance.now() + 10_000;
    while ((await observer.query('SELECT count(*) AS n FROM t WHERE id = 1')).rows[0]!['n'] !== 1) {
      if (performance.now() > deadline) throw new Error('the abandoned commit was never released');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  });

  it('a fast shutdown ends the waiting sessions; their commits stand locally', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { synchronous_standby_names: 's1', synchronous_commit: 'local' } });
    await primary.query('CREATE TABLE t (id int)');
    const session = await primary.connect({ settings: { synchronous_commit: 'on' } });
    const waiting = track(session.query('INSERT INTO t VALUES (1)'));
    await primary.connect({ settings: { synchronous_commit: 'local' } }).then((s) => s.query('INSERT INTO t VALUES (2)'));
    expect(waiting.settled()).to.equal(false);
    await primary.stop('fast');
    const ended = await pgError(waiting.promise);
    expect(ended.code).to.equal('57P01');
    await primary.start();
    expect((await primary.query('SELECT count(*) AS n FROM t')).rows).to.deep.equal([{ n: 2 }]);
  });
});
