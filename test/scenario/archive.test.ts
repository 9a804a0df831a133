/*
 * Continuous archiving as a DBA sees it: completed segments (pg_switch_wal, archive_timeout)
 * archived by archive_command or the built-in directory archive, in order; a failing command
 * keeps the segment and counts the failure; two servers sharing an archive never overwrite
 * each other's files.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Server } from '../../src/index.js';
import { eventually, log, until } from '../helpers.js';

const SEG = 1024 * 1024;

/** Ends the current segment and returns its file name. */
async function switchSegment(primary: Server): Promise<string> {
  await primary.query('INSERT INTO t VALUES (1)');
  const name = (await primary.query('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!['f'] as string;
  await primary.query('SELECT pg_switch_wal()');
  return name;
}

describe('continuous archiving', function () {
  this.timeout(60_000);
  let dir = '';
  let cluster: Cluster;
  let archive = '';

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'walship-archive-'));
    archive = join(dir, 'archive');
    mkdirSync(archive);
    cluster = await Cluster.create({ dir, placement: 'inline' });
  });
  afterEach(async () => {
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('archives each completed segment with archive_command, marks it done and counts it', async () => {
    const primary = await cluster.initPrimary('primary', {
      walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` },
    });
    await primary.query('CREATE TABLE t (x int)');
    const first = await switchSegment(primary);
    const second = await switchSegment(primary);
    await eventually(primary, 'SELECT last_archived_wal FROM pg_stat_archiver', (r) => r.rows[0]!['last_archived_wal'] === second, 'the second segment to be archived');
    const stats = (await primary.query('SELECT archived_count, failed_count, last_archived_time IS NOT NULL AS t FROM pg_stat_archiver')).rows[0]!;
    expect(stats).to.deep.equal({ archived_count: 2, failed_count: 0, t: true });
    expect(readdirSync(archive).sort()).to.deep.equal([first, second]);
    expect(readFileSync(join(archive, first)).equals(readFileSync(join(primary.dataDir, 'pg_wal', first)))).to.equal(true);
    expect(existsSync(join(primary.dataDir, 'pg_wal', 'archive_status', `${first}.done`))).to.equal(true);
    // Nothing new written: pg_switch_wal() does not switch again.
    const lsn = (await primary.query('SELECT pg_current_wal_lsn() AS l')).rows[0]!['l'];
    expect((await primary.query('SELECT pg_switch_wal()')).rows[0]!['pg_switch_wal']).to.equal(lsn);
  });

  it('keeps a segment whose archive_command fails, retries, counts the failures, then archives the backlog in order', async () => {
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: 'exit 1' } });
    await primary.query('CREATE TABLE t (x int)');
    const first = await switchSegment(primary);
    const second = await switchSegment(primary);
    await eventually(primary, 'SELECT failed_count FROM pg_stat_archiver', (r) => (r.rows[0]!['failed_count'] as number) >= 2, 'failures to be counted');
    expect(log(primary)).to.contain('archive command failed with exit code 1');
    expect(log(primary)).to.contain('DETAIL:  The failed archive command was: exit 1');
    await primary.query('CHECKPOINT');
    await primary.query('CHECKPOINT');
    for (const name of [first, second]) {
      expect(existsSync(join(primary.dataDir, 'pg_wal', name)), `${name} kept`).to.equal(true);
      expect(existsSync(join(primary.dataDir, 'pg_wal', 'archive_status', `${name}.ready`)), `${name}.ready kept`).to.equal(true);
    }
    expect((await primary.query('SELECT last_failed_wal, archived_count FROM pg_stat_archiver')).rows).to.deep.equal([{ last_failed_wal: first, archived_count: 0 }]);
    await primary.query(`ALTER SYSTEM SET archive_command = 'cp %p ${archive}/%f'`);
    await primary.query('SELECT pg_reload_conf()');
    await eventually(primary, 'SELECT archived_count FROM pg_stat_archiver', (r) => r.rows[0]!['archived_count'] === 2, 'the backlog to be archived');
    expect(readdirSync(archive).sort()).to.deep.equal([first, second]);
    await primary.query('CHECKPOINT');
    expect(existsSync(join(primary.dataDir, 'pg_wal', first)), 'archived and past the redo point: removed').to.equal(false);
  });

  it('shares a directory archive: the identical file twice is fine, a different one under the same name is refused, never overwritten', async () => {
    const settings = { archive_mode: 'on', archive_library: 'basic_archive', 'basic_archive.archive_directory': archive };
    const a = await cluster.initPrimary('a', { walSegmentSize: SEG, settings });
    await a.query('CREATE TABLE t (x int)');
    const name = await switchSegment(a);
    await eventually(a, 'SELECT archived_count FROM pg_stat_archiver', (r) => r.rows[0]!['archived_count'] === 1, 'a to archive');
    const archived = readFileSync(join(archive, name));
    // The same segment archived again (back in pg_wal, marked .ready): identical, accepted.
    await a.stop();
    writeFileSync(join(a.dataDir, 'pg_wal', name), archived);
    writeFileSync(join(a.dataDir, 'pg_wal', 'archive_status', `${name}.ready`), '');
    await a.start();
    await eventually(a, 'SELECT archived_count, failed_count FROM pg_stat_archiver', (r) => r.rows[0]!['archived_count'] === 1 && r.rows[0]!['failed_count'] === 0, 'a to archive it again');
    // Another cluster's segment of the same name: refused and reported, the archived file untouched.
    const b = await cluster.initPrimary('b', { walSegmentSize: SEG, settings });
    await b.query('CREATE TABLE t (x int)');
    expect(await switchSegment(b)).to.equal(name);
    await eventually(b, 'SELECT failed_count FROM pg_stat_archiver', (r) => (r.rows[0]!['failed_count'] as number) >= 1, 'b to be refused');
    await until(() => log(b).includes(`archive file "${join(archive, name)}" already exists`), 'the refusal in b\'s log');
    expect(readFileSync(join(archive, name)).equals(archived)).to.equal(true);
    expect(existsSync(join(b.dataDir, 'pg_wal', 'archive_status', `${name}.ready`))).to.equal(true);
  });

  it('feeds a warm standby from the archive alone: it reaches the primary\'s state after pg_switch_wal()', async () => {
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` } });
    await primary.query('CREATE TABLE t (x int)');
    const warm = await cluster.addStandby('warm', { streaming: false, settings: { restore_command: `cp ${archive}/%f %p`, wal_retrieve_retry_interval: '50ms' } });
    for (let i = 0; i < 50; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await primary.query('SELECT pg_switch_wal()');
    await eventually(warm, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 50, 'the warm standby to replay the archived segment');
    expect(log(warm)).to.match(/restored log file "[0-9A-F]{24}" from archive/);
    expect((await warm.query('SELECT * FROM pg_stat_wal_receiver')).rowCount, 'no streaming at all').to.equal(0);
  });

  it('a streaming standby cut off while its slot-less primary removed the WAL it needs catches up from the archive, then streams again', async () => {
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` } });
    await primary.query('CREATE TABLE t (x int)');
    // The archive answers only once the gate is open: first the standby must find the primary's WAL gone.
    const gate = join(dir, 'archive-open');
    const standby = await cluster.addStandby('standby', {
      settings: { restore_command: `test -f ${gate} && cp ${archive}/%f %p`, wal_retrieve_retry_interval: '50ms' },
    });
    await eventually(standby, 'SELECT status FROM pg_stat_wal_receiver', (r) => r.rows[0]?.['status'] === 'streaming', 'streaming');
    const needed = (await primary.query('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!['f'] as string;

    cluster.partition('primary', 'standby');
    await until(() => log(standby).includes('No route to host'), 'the standby to find the primary unreachable');
    let last = '';
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 25; j++) await primary.query('INSERT INTO t VALUES ($1)', [i * 25 + j]);
      last = await switchSegment(primary);
    }
    await eventually(primary, 'SELECT last_archived_wal FROM pg_stat_archiver', (r) => r.rows[0]!['last_archived_wal'] === last, 'the backlog to be archived');
    await primary.query('CHECKPOINT');
    expect(existsSync(join(primary.dataDir, 'pg_wal', needed)), 'the primary removed the segment the standby needs').to.equal(false);

    cluster.heal('primary', 'standby');
    await until(() => log(standby).includes(`requested WAL segment ${needed} has already been removed`), 'the standby to be refused the removed WAL', 15_000);
    writeFileSync(gate, '');
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 104, 'the standby to catch up from the archive');
    expect(log(standby)).to.include(`restored log file "${needed}" from archive`);
    await eventually(standby, 'SELECT status FROM pg_stat_wal_receiver', (r) => r.rows[0]?.['status'] === 'streaming', 'streaming again');
    // What comes next arrives by streaming, with no segment switch to archive it.
    await primary.query('INSERT INTO t VALUES (-1)');
    await eventually(standby, 'SELECT count(*) AS n FROM t WHERE x = -1', (r) => r.rows[0]!['n'] === 1, 'the new row, streamed');
  });

  it('archive_cleanup_command removes from the archive only what the standby no longer needs to restart', async () => {
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` } });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster.addStandby('standby', {
      settings: {
        restore_command: `cp ${archive}/%f %p`, wal_retrieve_retry_interval: '50ms',
        // PostgreSQL's own tool: removes every segment older than %r.
        archive_cleanup_command: `/usr/lib/postgresql/15/bin/pg_archivecleanup ${archive} %r`,
      },
    });
    // Three segments the standby replays, then it stops halfway through the fourth (replay
    // paused) while the primary goes on: its restartpoint lies in a segment already archived.
    let last = '';
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 25; j++) await primary.query('INSERT INTO t VALUES ($1)', [i * 25 + j]);
      await switchSegment(primary);
    }
    await primary.query('INSERT INTO t VALUES (-2)');
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 79, 'the standby to replay the first segments');
    await standby.query('SELECT pg_wal_replay_pause()');
    await eventually(standby, 'SELECT pg_is_wal_replay_paused() AS p', (r) => r.rows[0]!['p'] === true, 'replay to pause');
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 25; j++) await primary.query('INSERT INTO t VALUES ($1)', [j]);
      last = await switchSegment(primary);
    }
    await eventually(primary, 'SELECT last_archived_wal FROM pg_stat_archiver', (r) => r.rows[0]!['last_archived_wal'] === last, 'the segments to be archived');
    const archivedBefore = readdirSync(archive).sort();
    await standby.query('CHECKPOINT');
    const point = /recovery restart point at ([0-9A-F]+\/[0-9A-F]+)/.exec(log(standby));
    expect(point, 'a restartpoint').to.not.equal(null);
    const kept = (await primary.query('SELECT pg_walfile_name($1) AS f', [point![1]])).rows[0]!['f'] as string;
    await until(() => readdirSync(archive).every((f) => f >= kept), 'the archive to be cleaned up to the restartpoint');
    expect(readdirSync(archive).sort()).to.deep.equal(archivedBefore.filter((f) => f >= kept));
    expect(archivedBefore.filter((f) => f < kept).length, 'something was old enough to go').to.be.greaterThan(0);
    expect(archivedBefore.filter((f) => f > kept).length, 'something newer stays').to.be.greaterThan(0);

    // What is left is enough: without its own pg_wal, the standby restarts from the archive.
    await standby.stop();
    for (const f of readdirSync(join(standby.dataDir, 'pg_wal'))) if (/^[0-9A-F]{24}$/.test(f)) rmSync(join(standby.dataDir, 'pg_wal', f));
    await primary.query('INSERT INTO t VALUES (-1)');
    await standby.start();
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 158, 'the restarted standby to catch up');
    expect(log(standby)).to.include(`restored log file "${kept}" from archive`);
  });

  it('a standby with archive_mode = always archives every segment it receives; with on, none (marked done)', async () => {
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` } });
    await primary.query('CREATE TABLE t (x int)');
    const own = join(dir, 'standby-archive');
    mkdirSync(own);
    const always = await cluster.addStandby('always', { settings: { archive_mode: 'always', archive_command: `cp %p ${own}/%f` } });
    const on = await cluster.addStandby('on', { settings: { archive_mode: 'on', archive_command: 'exit 1' } });
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 20; j++) await primary.query('INSERT INTO t VALUES ($1)', [j]);
      names.push(await switchSegment(primary));
    }
    await eventually(always, 'SELECT last_archived_wal FROM pg_stat_archiver', (r) => r.rows[0]!['last_archived_wal'] === names.at(-1), 'the standby to archive the last segment');
    await eventually(primary, 'SELECT last_archived_wal FROM pg_stat_archiver', (r) => r.rows[0]!['last_archived_wal'] === names.at(-1), 'the primary to archive the last segment');
    for (const name of names) {
      expect(readFileSync(join(own, name)).equals(readFileSync(join(archive, name))), `${name} as the primary archived it`).to.equal(true);
    }
    expect((await always.query('SELECT archived_count, failed_count FROM pg_stat_archiver')).rows[0]).to.deep.equal({ archived_count: readdirSync(own).length, failed_count: 0 });
    // archive_mode = on waits for a promotion: what it receives is marked done, never tried.
    await eventually(on, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 63, 'the other standby to replay it all');
    await until(() => names.every((n) => existsSync(join(on.dataDir, 'pg_wal', 'archive_status', `${n}.done`))), 'its segments marked done');
    expect((await on.query('SELECT archived_count, failed_count FROM pg_stat_archiver')).rows[0]).to.deep.equal({ archived_count: 0, failed_count: 0 });
  });

  it('restores from the built-in archive without a command (restore_library), gzip-compressed segments included', async () => {
    const library = { archive_library: 'basic_archive', 'basic_archive.archive_directory': archive };
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { archive_mode: 'on', ...library, 'basic_archive.compression': 'gzip' } });
    await primary.query('CREATE TABLE t (x int)');
    const warm = await cluster.addStandby('warm', { streaming: false, settings: { restore_library: 'basic_archive', ...library, wal_retrieve_retry_interval: '50ms' } });
    for (let i = 0; i < 50; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    const name = await switchSegment(primary);
    await eventually(warm, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 51, 'the warm standby to replay the archived segment');
    expect(existsSync(join(archive, `${name}.gz`)) && !existsSync(join(archive, name)), 'archived compressed').to.equal(true);
    expect(log(warm)).to.include(`restored log file "${name}" from archive`);

    // One way to restore, not two.
    await warm.stop();
    writeFileSync(join(warm.dataDir, 'postgresql.auto.conf'), `restore_command = 'cp ${archive}/%f %p'\n`, { flag: 'a' });
    const failed = await warm.start().then(() => null, (err: unknown) => err);
    expect(failed, 'the start fails').to.not.equal(null);
    expect(log(warm)).to.include('FATAL:  both restore_command and restore_library set');
    expect(log(warm)).to.include('DETAIL:  Only one of restore_command, restore_library may be set.');
  });

  it('follows primary_conninfo at reload: emptied, the standby lives on the archive; set again, it streams', async () => {
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` } });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster.addStandby('standby', { settings: { restore_command: `cp ${archive}/%f %p`, wal_retrieve_retry_interval: '50ms' } });
    await eventually(standby, 'SELECT status FROM pg_stat_wal_receiver', (r) => r.rows[0]?.['status'] === 'streaming', 'streaming');
    const conninfo = (await standby.query('SHOW primary_conninfo')).rows[0]!['primary_conninfo'] as string;
    await standby.query("ALTER SYSTEM SET primary_conninfo = ''");
    await standby.query('SELECT pg_reload_conf()');
    await eventually(standby, 'SELECT count(*) AS n FROM pg_stat_wal_receiver', (r) => r.rows[0]!['n'] === 0, 'the walreceiver to go');
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 20; j++) await primary.query('INSERT INTO t VALUES ($1)', [j]);
      await switchSegment(primary);
    }
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 63, 'the standby to replay the archived segments');
    await standby.query(`ALTER SYSTEM SET primary_conninfo = '${conninfo}'`);
    await standby.query('SELECT pg_reload_conf()');
    await eventually(standby, 'SELECT status FROM pg_stat_wal_receiver', (r) => r.rows[0]?.['status'] === 'streaming', 'streaming again');
    await primary.query('INSERT INTO t VALUES (-1)');
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 64, 'the new row, streamed');
  });

  it('restores the next segment, not the current one again, when a record runs on into a segment pg_wal lacks', async () => {
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: `cp %p ${archive}/%f` } });
    await primary.query('CREATE TABLE t (x int, y text)');
    const standby = await cluster.addStandby('standby');
    const big = 'x'.repeat(3000);
    const first = (await primary.query('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!['f'] as string;
    let rows = 0;
    // Rows of 3 kB until one crosses into the next segment, then a few more there.
    while ((await primary.query('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!['f'] === first) await primary.query('INSERT INTO t VALUES ($1, $2)', [rows++, big]);
    for (let i = 0; i < 5; i++) await primary.query('INSERT INTO t VALUES ($1, $2)', [rows++, big]);
    const last = await switchSegment(primary);
    rows++;
    await eventually(primary, 'SELECT last_archived_wal FROM pg_stat_archiver', (r) => r.rows[0]!['last_archived_wal'] === last, 'the segments to be archived');
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === rows, 'the standby to replay them');
    // The standby keeps only the first segment, and comes back fed by the archive alone.
    await standby.kill();
    for (const f of readdirSync(join(standby.dataDir, 'pg_wal'))) if (/^[0-9A-F]{24}$/.test(f) && f > first) rmSync(join(standby.dataDir, 'pg_wal', f));
    writeFileSync(join(standby.dataDir, 'postgresql.auto.conf'), `primary_conninfo = ''\nrestore_command = 'cp ${archive}/%f %p'\nwal_retrieve_retry_interval = '50ms'\n`, { flag: 'a' });
    await standby.start();
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === rows, 'the standby to catch up from the archive');
  });

  it('a standby that does not archive removes the archive marks with the segments', async () => {
    const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster.addStandby('standby');
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 10; j++) await primary.query('INSERT INTO t VALUES ($1)', [j]);
      await switchSegment(primary);
    }
    await primary.query('CHECKPOINT');
    await eventually(standby, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 44, 'the standby to replay it all');
    await standby.query('CHECKPOINT');
    const marksWithoutSegments = (): string[] => {
      const wal = readdirSync(join(standby.dataDir, 'pg_wal'));
      return readdirSync(join(standby.dataDir, 'pg_wal', 'archive_status')).filter((f) => !wal.includes(f.replace(/\.(done|ready)$/, '')));
    };
    await until(() => marksWithoutSegments().length === 0, 'no mark left without its segment');
  });
});
