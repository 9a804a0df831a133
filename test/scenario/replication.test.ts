/*
 * Streaming replication as a DBA sees it: a standby made by base backup streams the
 * primary's WAL, replays it, serves read-only queries, and both servers say so in their
 * views and logs; slots keep WAL for a standby that is away; refused connections are
 * refused with PostgreSQL's texts. The main scenarios run inline and in worker threads.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server, ServerPlacement } from '../../src/index.js';
import { caughtUp, clusterPerTest, currentLsn, eventually, log, pgError, until } from '../helpers.js';

const SEG = 1024 * 1024;

async function dump(server: Server, tables: readonly string[]): Promise<Record<string, readonly unknown[]>> {
  const out: Record<string, readonly unknown[]> = {};
  for (const t of tables) out[t] = (await server.query(`SELECT * FROM ${t} ORDER BY 1`)).rows;
  return out;
}

for (const placement of ['inline', 'thread', 'process'] as ServerPlacement[]) {
  describe(`streaming replication (${placement} placement)`, function () {
    this.timeout(60_000);
    const cluster = clusterPerTest(placement);

    it('makes a standby by base backup that replays every change and serves read-only queries', async () => {
      const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      await primary.query("INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 200) g");
      const progress: number[] = [];
      const standby = await cluster().addStandby('s1', { onProgress: (bytes) => progress.push(bytes) });
      expect(progress.length).to.be.greaterThan(0);
      expect(progress.at(-1)).to.be.greaterThan(SEG);
      const standbyLog = log(standby);
      for (const line of ['entering standby mode', 'redo starts at', 'consistent recovery state reached at', 'database system is ready to accept read only connections']) {
        expect(standbyLog).to.contain(`LOG:  ${line}`);
      }
      await until(() => /started streaming WAL from primary at [0-9A-F]+\/[0-9A-F]+ on timeline 1/.test(log(standby)), 'streaming to start');
      expect((await standby.query('SELECT count(*) AS n FROM kv')).rows).to.deep.equal([{ n: 200 }]);

      // A write workload of every kind: updates, deletes, a new table, a sequence, a drop, a VACUUM.
      await primary.query("UPDATE kv SET v = 'changed' WHERE id <= 50");
      await primary.query('DELETE FROM kv WHERE id > 180');
      await primary.query('CREATE TABLE later (id serial PRIMARY KEY, note text)');
      for (let i = 0; i < 40; i++) await primary.query('INSERT INTO later (note) VALUES ($1)', [`n${i}`]);
      await primary.query('CREATE SEQUENCE counter');
      await primary.query("SELECT nextval('counter') FROM generate_series(1, 5)");
      await primary.query('CREATE TABLE doomed (x int)');
      await primary.query('DROP TABLE doomed');
      await primary.query('VACUUM kv');
      const session = await primary.connect();
      await session.query('BEGIN');
      await session.query("INSERT INTO kv VALUES (1000, 'uncommitted')");
      const lsn = await caughtUp(primary, standby);
      // Same rows at the same replay position, and what is not committed is not seen.
      expect(await dump(standby, ['kv', 'later'])).to.deep.equal(await dump(primary, ['kv', 'later']));
      expect((await standby.query('SELECT count(*) AS n FROM kv WHERE id = 1000')).rows).to.deep.equal([{ n: 0 }]);
      await session.query('COMMIT');
      await caughtUp(primary, standby);
      expect((await standby.query('SELECT v FROM kv WHERE id = 1000')).rows).to.deep.equal([{ v: 'uncommitted' }]);
      expect((await pgError(standby.query('SELECT * FROM doomed'))).code).to.equal('42P01');
      const seq = await pgError(standby.query("SELECT nextval('counter')"));
      expect([seq.code, seq.message]).to.deep.equal(['25006', 'cannot execute nextval() in a read-only transaction']);
      expect(lsn).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);

      // Hot standby: read-only, as PostgreSQL says it.
      expect((await standby.query('SELECT pg_is_in_recovery() AS r')).rows).to.deep.equal([{ r: true }]);
      expect((await primary.query('SELECT pg_is_in_recovery() AS r')).rows).to.deep.equal([{ r: false }]);
      expect((await standby.query('SHOW transaction_read_only')).rows).to.deep.equal([{ transaction_read_only: 'on' }]);
      const insert = await pgError(standby.query("INSERT INTO kv VALUES (5000, 'no')"));
      expect([insert.code, insert.message]).to.deep.equal(['25006', 'cannot execute INSERT in a read-only transaction']);
      const create = await pgError(standby.query('CREATE TABLE nope (x int)'));
      expect([create.code, create.message]).to.deep.equal(['25006', 'cannot execute CREATE TABLE in a read-only transaction']);
      const readWrite = await pgError(standby.query('SET transaction_read_only = off'));
      expect([readWrite.code, readWrite.message]).to.deep.equal(['0A000', 'cannot set transaction read-write mode during recovery']);
    });
  });
}

/** Rows of about `bytes` of WAL in one statement: something to fill segments with. */
async function writeWal(primary: Server, bytes: number): Promise<void> {
  const rows = Math.ceil(bytes / 1100);
  await primary.query(`INSERT INTO filler SELECT g, $1 FROM generate_series(1, ${rows}) g`, ['x'.repeat(1000)]);
}

async function slotRow(primary: Server, name: string): Promise<Record<string, unknown>> {
  const result = await primary.query('SELECT slot_name, active, restart_lsn, wal_status, safe_wal_size FROM pg_replication_slots WHERE slot_name = $1', [name]);
  expect(result.rowCount, `slot ${name}`).to.equal(1);
  return result.rows[0]!;
}

for (const placement of ['inline', 'thread'] as ServerPlacement[]) describe(`streaming replication: views, slots, authentication (${placement} placement)`, function () {
  this.timeout(60_000);
  const cluster = clusterPerTest(placement);

  it('reports ordered, converging positions and NULL lag when idle, on both sides', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    const standby = await cluster().addStandby('s1', { settings: { wal_receiver_status_interval: '1s' } });
    await primary.query('CREATE TABLE t (x int)');
    // Positions are NULL until the standby's first reply, as in PostgreSQL.
    const sender = await eventually(primary, 'SELECT * FROM pg_stat_replication',
      (r) => r.rowCount === 1 && r.rows[0]!['state'] === 'streaming' && r.rows[0]!['replay_lsn'] !== null, 'a streaming walsender with a reply');
    expect(sender.rows[0]).to.include({ application_name: 's1', usename: 'postgres', client_addr: '127.0.0.1', sync_state: 'async', sync_priority: 0 });
    expect(sender.columns.map((c) => c.name)).to.include.members(['pid', 'sent_lsn', 'write_lsn', 'flush_lsn', 'replay_lsn', 'write_lag', 'flush_lag', 'replay_lag', 'reply_time']);

    // While WAL flows the lags are measured; the positions never pass one another.
    let sawLag = false;
    const deadline = performance.now() + 15_000;
    for (let i = 0; !sawLag && performance.now() < deadline; i++) {
      await primary.query('INSERT INTO t VALUES ($1)', [i]);
      const row = (await primary.query('SELECT write_lag, replay_lag FROM pg_stat_replication')).rows[0]!;
      if (typeof row['replay_lag'] === 'string') {
        expect(row['replay_lag']).to.match(/^\d\d:\d\d:\d\d(\.\d+)?$/);
        sawLag = true;
      }
      const ordered = await primary.query(
        'SELECT pg_wal_lsn_diff(sent_lsn, write_lsn) >= 0 AND pg_wal_lsn_diff(write_lsn, flush_lsn) >= 0 AND pg_wal_lsn_diff(flush_lsn, replay_lsn) >= 0 AS ok FROM pg_stat_replication');
      expect(ordered.rows[0]!['ok']).to.equal(true);
    }
    expect(sawLag, 'replay_lag measured while WAL flows').to.equal(true);

    // Idle: every position reaches the end of WAL, and the lag columns go NULL, as in PostgreSQL.
    const end = await currentLsn(primary);
    const idle = await eventually(primary, 'SELECT sent_lsn, write_lsn, flush_lsn, replay_lsn, write_lag, flush_lag, replay_lag FROM pg_stat_replication',
      (r) => r.rows[0]!['replay_lsn'] === end && r.rows[0]!['replay_lag'] === null, 'positions to converge and lag to clear');
    expect(idle.rows[0]).to.deep.equal({ sent_lsn: end, write_lsn: end, flush_lsn: end, replay_lsn: end, write_lag: null, flush_lag: null, replay_lag: null });

    const receiver = await standby.query('SELECT status, sender_host, sender_port, slot_name, flushed_lsn FROM pg_stat_wal_receiver');
    expect(receiver.rows).to.deep.equal([{ status: 'streaming', sender_host: '127.0.0.1', sender_port: primary.port, slot_name: null, flushed_lsn: end }]);
    const functions = await standby.query('SELECT pg_last_wal_receive_lsn() AS received, pg_last_wal_replay_lsn() AS replayed, pg_last_xact_replay_timestamp() IS NOT NULL AS has_time');
    expect(functions.rows).to.deep.equal([{ received: end, replayed: end, has_time: true }]);
    const onPrimary = await primary.query('SELECT pg_last_wal_receive_lsn() AS received, pg_last_wal_replay_lsn() AS replayed');
    expect(onPrimary.rows).to.deep.equal([{ received: null, replayed: null }]);
    expect((await primary.query('SELECT * FROM pg_stat_wal_receiver')).rowCount).to.equal(0);
  });

  it('keeps the WAL a stopped standby needs through its slot, across checkpoints, and the standby catches up', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE filler (id int, pad text)');
    const standby = await cluster().addStandby('s1', { slot: 's1' });
    await caughtUp(primary, standby);
    const active = await eventually(primary, "SELECT active FROM pg_replication_slots WHERE slot_name = 's1'", (r) => r.rows[0]!['active'] === true, 'the slot to be active');
    expect(active.rowCount).to.equal(1);
    await standby.stop();
    await eventually(primary, "SELECT active FROM pg_replication_slots WHERE slot_name = 's1'", (r) => r.rows[0]!['active'] === false, 'the slot to be released');
    const held = (await slotRow(primary, 's1'))['restart_lsn'] as string;
    for (let i = 0; i < 4; i++) await writeWal(primary, SEG);
    await primary.query('CHECKPOINT');
    await primary.query('CHECKPOINT');
    expect(log(primary)).to.match(/checkpoint complete: \d+ WAL file\(s\) removed/);
    const slot = await slotRow(primary, 's1');
    expect(slot['restart_lsn']).to.equal(held);
    expect(slot['wal_status']).to.be.oneOf(['reserved', 'extended']);
    await standby.start();
    await caughtUp(primary, standby);
    expect((await standby.query('SELECT count(*) AS n FROM filler')).rows).to.deep.equal((await primary.query('SELECT count(*) AS n FROM filler')).rows);
  });

  it('without a slot, a standby that falls behind wal_keep_size cannot catch up and says why', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { wal_keep_size: '1MB' } });
    await primary.query('CREATE TABLE filler (id int, pad text)');
    const standby = await cluster().addStandby('s1', { settings: { wal_retrieve_retry_interval: '50ms' } });
    await caughtUp(primary, standby);
    await standby.stop();
    for (let i = 0; i < 5; i++) await writeWal(primary, SEG);
    await primary.query('CHECKPOINT');
    await primary.query('CHECKPOINT');
    await standby.start();
    await until(() => /could not receive data from WAL stream: ERROR:  requested WAL segment [0-9A-F]{24} has already been removed/.test(log(standby)), 'the standby to report the missing WAL', 15_000);
    expect(log(primary)).to.match(/ERROR:  requested WAL segment [0-9A-F]{24} has already been removed/);
    const behind = await standby.query('SELECT count(*) AS n FROM filler');
    expect(behind.rows[0]!['n']).to.be.lessThan((await primary.query('SELECT count(*) AS n FROM filler')).rows[0]!['n'] as number);
  });

  it('moves slots through wal_status reserved, unreserved, lost (invalidated) and extended', async () => {
    const primary = await cluster().initPrimary('primary', {
      walSegmentSize: SEG, settings: { max_wal_size: '64MB', max_slot_wal_keep_size: '3MB' },
    });
    await primary.query('CREATE TABLE filler (id int, pad text)');
    const created = await primary.query("SELECT * FROM pg_create_physical_replication_slot('lagging', true)");
    expect(created.columns.map((c) => c.name)).to.deep.equal(['slot_name', 'lsn']);
    expect(created.rows[0]!['slot_name']).to.equal('lagging');
    const fresh = await slotRow(primary, 'lagging');
    expect(fresh['wal_status']).to.equal('reserved');
    expect(fresh['safe_wal_size']).to.be.greaterThan(0);
    // Past max_slot_wal_keep_size, before any checkpoint: still on disk, but no longer kept.
    for (let i = 0; i < 5; i++) await writeWal(primary, SEG);
    const unreserved = await slotRow(primary, 'lagging');
    expect(unreserved['wal_status']).to.equal('unreserved');
    expect(unreserved['safe_wal_size']).to.be.lessThanOrEqual(0);
    await primary.query('CHECKPOINT');
    const lost = await slotRow(primary, 'lagging');
    expect([lost['wal_status'], lost['restart_lsn'], lost['safe_wal_size']]).to.deep.equal(['lost', null, null]);
    expect(log(primary)).to.match(/LOG: {2}invalidating slot "lagging" because its restart_lsn [0-9A-F]+\/[0-9A-F]+ exceeds max_slot_wal_keep_size/);
    // A standby using the invalidated slot is refused with a clear error.
    const refused = await pgError(cluster().addStandby('late', { slot: 'lagging' }));
    expect([refused.code, refused.message, refused.detail]).to.deep.equal(['55000', 'pg_basebackup: error: can no longer access replication slot "lagging"', 'This replication slot has been invalidated due to "wal_removed".']);

    // With no limit and a small max_wal_size, a slot far behind is "extended": kept beyond max_wal_size.
    await primary.query("ALTER SYSTEM SET max_slot_wal_keep_size = -1");
    await primary.query("ALTER SYSTEM SET max_wal_size = '2MB'");
    await primary.query('SELECT pg_reload_conf()');
    await primary.query("SELECT pg_create_physical_replication_slot('keeper', true)");
    for (let i = 0; i < 6; i++) await writeWal(primary, SEG);
    await primary.query('CHECKPOINT');
    const extended = await slotRow(primary, 'keeper');
    expect([extended['wal_status'], extended['safe_wal_size']]).to.deep.equal(['extended', null]);
    // Slots persist across a restart.
    await primary.stop();
    await primary.start();
    expect((await primary.query('SELECT slot_name, wal_status FROM pg_replication_slots ORDER BY slot_name')).rows)
      .to.deep.equal([{ slot_name: 'keeper', wal_status: 'extended' }, { slot_name: 'lagging', wal_status: 'lost' }]);
    await primary.query("SELECT pg_drop_replication_slot('lagging')");
    const gone = await pgError(primary.query("SELECT pg_drop_replication_slot('lagging')"));
    expect([gone.code, gone.message]).to.deep.equal(['42704', 'replication slot "lagging" does not exist']);
    const badName = await pgError(primary.query("SELECT pg_create_physical_replication_slot('Bad-Name')"));
    expect(badName.code).to.equal('42602');
    // A dropped slot stays dropped, whatever checkpoints come after.
    await primary.query('CHECKPOINT');
    await primary.stop();
    await primary.start();
    expect((await primary.query('SELECT slot_name FROM pg_replication_slots')).rows).to.deep.equal([{ slot_name: 'keeper' }]);
  });

  it('refuses replication connections as pg_hba.conf and the roles say, and logs why on the primary', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    writeFileSync(join(primary.dataDir, 'pg_hba.conf'), [
      'local all all trust',
      'host replication rep 127.0.0.1/32 scram-sha-256',
      'host replication norep 127.0.0.1/32 scram-sha-256',
      'host replication outsider 10.0.0.0/8 scram-sha-256',
      '',
    ].join('\n'));
    await primary.query('SELECT pg_reload_conf()');
    await primary.query("CREATE ROLE rep REPLICATION LOGIN PASSWORD 'secret'");
    await primary.query("CREATE ROLE norep LOGIN PASSWORD 'pw'");
    await primary.query("CREATE ROLE outsider REPLICATION LOGIN PASSWORD 'x'");

    const wrong = await pgError(cluster().addStandby('bad1', { conninfo: 'user=rep password=wrong' }));
    expect([wrong.code, wrong.message]).to.deep.equal(['28P01', 'pg_basebackup: error: password authentication failed for user "rep"']);
    expect(log(primary)).to.contain('FATAL:  password authentication failed for user "rep"');
    const noPassword = await pgError(cluster().addStandby('bad2', { conninfo: 'user=rep' }));
    expect(noPassword.message).to.equal('pg_basebackup: error: fe_sendauth: no password supplied');
    const noReplication = await pgError(cluster().addStandby('bad3', { conninfo: 'user=norep password=pw' }));
    expect([noReplication.code, noReplication.message]).to.deep.equal(['42501', 'pg_basebackup: error: must be superuser or replication role to start walsender']);
    const host = await pgError(cluster().addStandby('bad4', { conninfo: 'user=outsider password=x' }));
    expect([host.code, host.message]).to.deep.equal(['28000', 'pg_basebackup: error: no pg_hba.conf entry for replication connection from host "127.0.0.1", user "outsider", no encryption']);
    expect(log(primary)).to.contain('FATAL:  no pg_hba.conf entry for replication connection from host "127.0.0.1", user "outsider", no encryption');

    const standby = await cluster().addStandby('s1', { conninfo: 'user=rep password=secret' });
    await primary.query('CREATE TABLE t (x int)');
    await caughtUp(primary, standby);
    expect((await primary.query('SELECT usename, application_name FROM pg_stat_replication')).rows).to.deep.equal([{ usename: 'rep', application_name: 's1' }]);
  });

  it('enforces max_wal_senders, re-points a standby at reload, and keeps it closed with hot_standby = off', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { max_wal_senders: 2 } });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster().addStandby('s1', { settings: { wal_retrieve_retry_interval: '50ms' } });
    const closed = await cluster().addStandby('s2', { settings: { hot_standby: 'off', wal_retrieve_retry_interval: '50ms' } });
    // Both stream (a base backup's walsender counts too until it is gone): no sender is left.
    await eventually(primary, "SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'", (r) => r.rows[0]!['n'] === 2, 'two streaming standbys');
    const refused = await pgError(closed.query('SELECT 1'));
    expect([refused.code, refused.message, refused.detail]).to.deep.equal(['57P03', 'the database system is not accepting connections', 'Hot standby mode is disabled.']);
    const full = await pgError(cluster().addStandby('s3'));
    expect([full.code, full.message]).to.deep.equal(['53300', 'pg_basebackup: error: number of requested standby connections exceeds max_wal_senders (currently 2)']);

    // Pointed elsewhere (nobody there), then back through a slot: no restart needed.
    await standby.query("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres'");
    await standby.query('SELECT pg_reload_conf()');
    await until(() => log(standby).includes('could not connect to the primary server: connection to server at "127.0.0.1", port 1 failed: Connection refused'), 'the refused connection in the log');
    await primary.query("SELECT pg_create_physical_replication_slot('s1_slot', true)");
    await standby.query(`ALTER SYSTEM SET primary_conninfo = '${primary.conninfo} application_name=s1'`);
    await standby.query("ALTER SYSTEM SET primary_slot_name = 's1_slot'");
    await standby.query('SELECT pg_reload_conf()');
    await eventually(primary, "SELECT active FROM pg_replication_slots WHERE slot_name = 's1_slot'", (r) => r.rows[0]!['active'] === true, 'the standby to stream through its new slot');
    await primary.query('INSERT INTO t VALUES (1)');
    await caughtUp(primary, standby);
    expect((await standby.query('SELECT x FROM t')).rows).to.deep.equal([{ x: 1 }]);
  });
});

describe('streaming replication (thread placement): servers that die', function () {
  this.timeout(60_000);
  const cluster = clusterPerTest('thread');

  it('is restarted and resumes streaming from where it had flushed', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster().addStandby('s1', { slot: 's1', settings: { wal_retrieve_retry_interval: '50ms' } });
    for (let i = 0; i < 100; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    const flushedBefore = await caughtUp(primary, standby);
    await standby.crash();
    // The primary sees the connection drop at once (not after wal_sender_timeout), and the slot is free again.
    await until(() => log(primary).includes('LOG:  unexpected EOF on standby connection'), 'the walsender to notice');
    for (let i = 100; i < 200; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await caughtUp(primary, standby);
    expect((await standby.query('SELECT count(*) AS n, sum(x) AS s FROM t')).rows).to.deep.equal([{ n: 200, s: 19900 }]);
    // It streamed again from what it had on disk, not from the start.
    const restarts = [...log(standby).matchAll(/started streaming WAL from primary at ([0-9A-F]+\/[0-9A-F]+)/g)].map((m) => m[1]!);
    expect(restarts.length).to.be.greaterThanOrEqual(2);
    const resumedAt = (await primary.query(`SELECT pg_wal_lsn_diff('${flushedBefore}', '${restarts.at(-1)}') AS behind`)).rows[0]!['behind'] as number;
    expect(resumedAt).to.be.within(0, SEG);
  });

  it('a standby sees its primary crash at once, reconnects after the retry interval and streams on', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster().addStandby('s1', { slot: 's1', settings: { wal_retrieve_retry_interval: '50ms' } });
    await primary.query('INSERT INTO t VALUES (1)');
    await caughtUp(primary, standby);
    await primary.crash();
    await until(() => log(standby).includes('could not receive data from WAL stream: server closed the connection unexpectedly'), 'the standby to notice');
    await primary.query('INSERT INTO t VALUES (2)');
    await caughtUp(primary, standby);
    expect((await standby.query('SELECT x FROM t ORDER BY x')).rows).to.deep.equal([{ x: 1 }, { x: 2 }]);
    expect([...log(standby).matchAll(/started streaming WAL from primary/g)].length).to.equal(2);
  });
});
