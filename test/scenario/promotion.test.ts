/*
 * Promotion as a DBA runs it: a standby leaves recovery on a new timeline (history file,
 * .partial segment, end-of-recovery checkpoint) and takes writes, its sessions still
 * connected; it survives a crash right after; the old primary's WAL is not replayed past
 * the switch.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PgError } from '../../src/errors.js';
import { caughtUp, clusterPerTest, eventually, log } from '../helpers.js';

const SEG = 1024 * 1024;

describe('promotion', function () {
  this.timeout(60_000);
  const cluster = clusterPerTest('inline');

  it('promotes a standby onto timeline 2: history file, .partial, writes, sessions kept, pg_promote on a primary refused', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    await primary.query('INSERT INTO t SELECT g FROM generate_series(1, 10) AS g');
    const standby = await cluster().addStandby('standby');
    await caughtUp(primary, standby);
    const session = await standby.connect();
    expect((await session.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(10);
    await primary.stop();

    expect(await standby.promote()).to.equal(true);
    expect((await standby.query('SELECT pg_is_in_recovery() AS r')).rows[0]!['r']).to.equal(false);
    // The session connected before the promotion writes now.
    await session.query('INSERT INTO t VALUES (11)');
    expect((await session.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(11);
    expect((await session.query('SHOW transaction_read_only')).rows[0]!['transaction_read_only']).to.equal('off');

    const walDir = join(standby.dataDir, 'pg_wal');
    const history = readFileSync(join(walDir, '00000002.history'), 'utf8');
    expect(history).to.match(/^1\t[0-9A-F]+\/[0-9A-F]+\tno recovery target specified\n$/);
    const switchpoint = history.split('\t')[1]!;
    const files = readdirSync(walDir);
    expect(files.some((f) => /^000000010000000000000001\.partial$/.test(f) || /^00000001[0-9A-F]{16}\.partial$/.test(f)), `a .partial among ${files.join(', ')}`).to.equal(true);
    expect((await standby.query('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!['f']).to.match(/^00000002/);
    expect((await standby.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${switchpoint}') > 0 AS after`)).rows[0]!['after']).to.equal(true);
    const text = log(standby);
    for (const line of ['received promote request', 'selected new timeline ID: 2', 'archive recovery complete', 'database system is ready to accept connections']) {
      expect(text, line).to.include(line);
    }

    const refused = await standby.query('SELECT pg_promote()').then(() => null, (err: unknown) => err);
    expect(refused).to.be.instanceOf(PgError);
    expect((refused as PgError).toFields()).to.include({ code: '55000', message: 'recovery is not in progress' });
  });

  it('a promoted standby that crashes recovers along its new timeline', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster().addStandby('standby');
    for (let i = 0; i < 30; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await caughtUp(primary, standby);
    await primary.stop();
    expect(await standby.promote()).to.equal(true);
    for (let i = 0; i < 30; i++) await standby.query('INSERT INTO t VALUES ($1)', [100 + i]);
    await standby.crash();
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 60, 'the promoted server to recover');
    await standby.query('INSERT INTO t VALUES (-1)');
    expect((await standby.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(61);
  });

  it('archives the new timeline\'s history file with archive_mode = on', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const archive = join(primary.dataDir, '..', 'archive');
    mkdirSync(archive);
    const standby = await cluster().addStandby('standby', { settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` } });
    await caughtUp(primary, standby);
    await primary.stop();
    expect(await standby.promote()).to.equal(true);
    await eventually(standby, 'SELECT archived_count FROM pg_stat_archiver', (r) => (r.rows[0]!['archived_count'] as number) >= 1, 'the history file to be archived');
    expect(existsSync(join(archive, '00000002.history'))).to.equal(true);
  });

  it('failover under synchronous_commit = on with FIRST 1 (s1, s2): every commit a client saw acknowledged is on the promoted standby', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (id int, client int)');
    const s1 = await cluster().addStandby('s1');
    await cluster().addStandby('s2');
    await primary.query("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (s1, s2)'");
    await primary.query('SELECT pg_reload_conf()');
    await eventually(primary, "SELECT count(*) AS n FROM pg_stat_replication WHERE sync_state = 'sync' AND application_name = 's1'", (r) => r.rows[0]!['n'] === 1, 's1 to be the synchronous standby');
    const acknowledged: number[] = [];
    let stopped = false;
    const sessions = await Promise.all([0, 1, 2, 3].map(() => primary.connect({ settings: { synchronous_commit: 'on' } })));
    const clients = sessions.map(async (session, client) => {
      for (let i = 0; !stopped; i++) {
        const id = client * 1_000_000 + i;
        try {
          await session.query('INSERT INTO t VALUES ($1, $2)', [id, client]);
        } catch {
          return; // the primary went away: this commit was not acknowledged
        }
        acknowledged.push(id);
      }
    });
    try {
      await eventually(s1, 'SELECT count(*) AS n FROM t', (r) => (r.rows[0]!['n'] as number) >= 200, 'the load to run a while');
      await primary.kill();
    } finally {
      stopped = true;
      await Promise.all(clients);
    }
    expect(await s1.promote()).to.equal(true);
    const rows = (await s1.query('SELECT id FROM t')).rows.map((r) => r['id'] as number);
    const present = new Set(rows);
    const lost = acknowledged.filter((id) => !present.has(id));
    expect(lost, `acknowledged commits missing after failover (of ${acknowledged.length})`).to.deep.equal([]);
    await s1.query('INSERT INTO t VALUES (-1, -1)');
  });

  it('fences the old primary: restarted after a standby was promoted, it refuses writes and says why', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster().addStandby('standby');
    await caughtUp(primary, standby);
    await primary.stop();
    expect(await standby.promote()).to.equal(true);
    await primary.start();
    const refused = await primary.query('INSERT INTO t VALUES (1)').then(() => null, (err: unknown) => err);
    expect(refused).to.be.instanceOf(PgError);
    expect((refused as PgError).toFields()).to.include({
      code: '25006', message: 'cannot execute INSERT in a read-only transaction',
      detail: `Timeline 2 exists on the server at port ${standby.port}; this server's timeline 1 was superseded by a promotion.`,
    });
    expect((refused as PgError).hint).to.include('Rewind this server');
    expect((await primary.query('SELECT count(*) AS n FROM t')).rows[0]!['n'], 'reads still work').to.equal(0);
    expect(log(primary)).to.include('WARNING:  this server is fenced: it refuses writes');
  });

  it('rewinds the old primary into a standby of the new one, listing exactly the transactions it discards and which were acknowledged', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1');
    await primary.query("ALTER SYSTEM SET synchronous_standby_names = 's1'");
    await primary.query('SELECT pg_reload_conf()');
    for (let i = 0; i < 10; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await caughtUp(primary, s1);
    // Cut off from its synchronous standby, the primary still commits at synchronous_commit = local...
    cluster().partition('primary', 's1');
    const local = await primary.connect({ settings: { synchronous_commit: 'local' } });
    const acknowledgedXids: number[] = [];
    for (let i = 0; i < 3; i++) {
      await local.query('BEGIN');
      acknowledgedXids.push(Number((await local.query('SELECT txid_current() AS x')).rows[0]!['x']));
      await local.query('INSERT INTO t VALUES ($1)', [100 + i]);
      await local.query('COMMIT');
    }
    // ...while a commit at on waits for s1, flushed here but never acknowledged.
    const waiting = await primary.connect({ settings: { synchronous_commit: 'on' } });
    await waiting.query('BEGIN');
    const unacknowledgedXid = Number((await waiting.query('SELECT txid_current() AS x')).rows[0]!['x']);
    await waiting.query('INSERT INTO t VALUES (-5)');
    const before = (await primary.query('SELECT pg_current_wal_lsn() AS l')).rows[0]!['l'] as string;
    const hanging = waiting.query('COMMIT').catch(() => undefined);
    await eventually(primary, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${before}') > 0 AS moved`, (r) => r.rows[0]!['moved'] === true, 'the commit record to be written');
    // A checkpoint flushes WAL through it: the commit is on disk here, its client still waiting.
    await primary.query('CHECKPOINT');
    await primary.kill();
    await hanging;
    cluster().heal('primary', 's1');
    expect(await s1.promote()).to.equal(true);
    await s1.query('INSERT INTO t VALUES (1000)');

    const report = await primary.rewind({ source: s1 });
    expect(report).to.include({ sourceTimeline: 2, targetTimeline: 1, commonTimeline: 1 });
    const history = readFileSync(join(s1.dataDir, 'pg_wal', '00000002.history'), 'utf8');
    expect(report.divergedAt).to.equal(history.split('\t')[1]);
    expect(report.discarded.map((d) => [d.xid, d.acknowledged, d.level])).to.deep.equal([
      ...acknowledgedXids.map((x) => [x, true, 'local']),
      [unacknowledgedXid, false, null],
    ]);
    // The rewound server is a standby of s1 now, with s1's data.
    await eventually(primary, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 11, 'the rewound server to have s1\'s rows');
    expect((await primary.query('SELECT pg_is_in_recovery() AS r')).rows[0]!['r']).to.equal(true);
    await s1.query('INSERT INTO t VALUES (1001)');
    await eventually(primary, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 12, 'it to stream from s1');
    expect((await primary.query('SELECT x FROM t ORDER BY x')).rows).to.deep.equal((await s1.query('SELECT x FROM t ORDER BY x')).rows);
  });

  it('refuses a rewind that is not one, saying what to do instead', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    const standby = await cluster().addStandby('standby');
    const running = await standby.rewind({ source: primary }).then(() => null, (err: unknown) => err as Error);
    expect(running?.message).to.equal('pg_rewind: error: target server "standby" must be shut down');
    await standby.stop();
    const same = await standby.rewind({ source: primary }).then(() => null, (err: unknown) => err as Error);
    expect(same?.message).to.match(/^source and target cluster are on the same timeline \(1\): no rewind required/);
  });

  it('promotes when promote_trigger_file appears, and removes it', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster().addStandby('standby', { settings: { promote_trigger_file: 'promote.trigger' } });
    await caughtUp(primary, standby);
    await primary.stop();
    writeFileSync(join(standby.dataDir, 'promote.trigger'), '');
    await eventually(standby, 'SELECT pg_is_in_recovery() AS r', (r) => r.rows[0]!['r'] === false, 'the promotion');
    await standby.query('INSERT INTO t VALUES (1)');
    expect(existsSync(join(standby.dataDir, 'promote.trigger'))).to.equal(false);
    expect(log(standby)).to.include(`promote trigger file found: ${join(standby.dataDir, 'promote.trigger')}`);
  });

  it('refuses pg_wal_replay_pause() once a promotion is under way', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG, settings: { wal_writer_delay: '10ms' } });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster().addStandby('standby', { settings: { max_standby_streaming_delay: '-1' } });
    await caughtUp(primary, standby);
    // Replay will wait for this session, so the promotion cannot finish before it commits.
    const session = await standby.connect();
    await session.query('BEGIN');
    await session.query('SELECT count(*) FROM t');
    await primary.query('DROP TABLE t');
    await primary.stop();
    expect(await standby.promote({ wait: false })).to.equal(true);
    const refused = await standby.query('SELECT pg_wal_replay_pause()').then(() => null, (err: unknown) => err);
    expect(refused).to.be.instanceOf(PgError);
    expect((refused as PgError).toFields()).to.include({ code: '55000', message: 'standby promotion is ongoing', hint: 'pg_wal_replay_pause() cannot be executed after promotion is triggered.' });
    await session.query('COMMIT');
    await eventually(standby, 'SELECT pg_is_in_recovery() AS r', (r) => r.rows[0]!['r'] === false, 'the promotion to finish');
  });
});
