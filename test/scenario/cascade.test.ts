/*
 * Cascading replication: a standby serving its own standbys, and the cascade surviving the
 * loss of the primary: the middle standby is promoted and its downstream follows it onto
 * the new timeline.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from '../../src/index.js';
import { clusterPerTest, eventually, log, until } from '../helpers.js';

const SEG = 1024 * 1024;

async function count(server: Server): Promise<number> {
  return (await server.query('SELECT count(*) AS n FROM t')).rows[0]!['n'] as number;
}

describe('cascading replication', function () {
  this.timeout(60_000);
  const cluster = clusterPerTest('inline');

  it('primary -> s1 -> s2: data reaches s2 through s1, whose walsender is async with priority 0', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1', { settings: { synchronous_standby_names: '*' } });
    const s2 = await cluster().addStandby('s2', { upstream: 's1' });
    for (let i = 0; i < 50; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await eventually(s2, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 50, 'the rows to reach s2');
    const downstream = (await s1.query('SELECT application_name, state, sync_priority, sync_state FROM pg_stat_replication')).rows;
    expect(downstream).to.deep.equal([{ application_name: 's2', state: 'streaming', sync_priority: 0, sync_state: 'async' }]);
    expect((await s2.query('SELECT sender_port FROM pg_stat_wal_receiver')).rows[0]!['sender_port']).to.equal(s1.port);
  });

  it('stop the primary, promote s1: s2 follows onto timeline 2 and receives s1\'s new writes', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1');
    const s2 = await cluster().addStandby('s2', { upstream: 's1', settings: { wal_retrieve_retry_interval: '50ms' } });
    for (let i = 0; i < 50; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await eventually(s2, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 50, 'the rows to reach s2');
    await primary.stop();
    expect(await s1.promote()).to.equal(true);
    for (let i = 0; i < 20; i++) await s1.query('INSERT INTO t VALUES ($1)', [1000 + i]);
    await eventually(s2, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 70, 's1\'s new rows to reach s2');
    await eventually(s2, 'SELECT status, received_tli FROM pg_stat_wal_receiver', (r) => r.rows[0]?.['status'] === 'streaming' && r.rows[0]?.['received_tli'] === 2, 's2 streaming on timeline 2');
    const history = readFileSync(join(s1.dataDir, 'pg_wal', '00000002.history'), 'utf8');
    expect(history).to.match(/^1\t[0-9A-F]+\/[0-9A-F]+\tno recovery target specified\n$/);
    expect(readFileSync(join(s2.dataDir, 'pg_wal', '00000002.history'), 'utf8')).to.equal(history);
    expect(await count(s2)).to.equal(await count(s1));
  });

  it('a sibling standby re-pointed at the promoted one (primary_conninfo + reload) follows it onto timeline 2', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1');
    const s2 = await cluster().addStandby('s2', { settings: { wal_retrieve_retry_interval: '50ms' } });
    for (let i = 0; i < 30; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await eventually(s2, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 30, 'the rows to reach s2');
    await eventually(s1, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 30, 'the rows to reach s1');
    await primary.stop();
    expect(await s1.promote()).to.equal(true);
    await s1.query('INSERT INTO t VALUES (-1)');
    await s2.query(`ALTER SYSTEM SET primary_conninfo = '${s1.conninfo}'`);
    await s2.query('SELECT pg_reload_conf()');
    await eventually(s2, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 31, 's2 to follow s1');
    expect(log(s2)).to.include('new target timeline is 2');
  });

  /**
   * s1 cut off from the primary and promoted while the old primary goes on writing to s2:
   * s2's WAL goes past where timeline 2 forked off.
   */
  async function forkedOff(): Promise<{ primary: Server; s1: Server; s2: Server }> {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1');
    const s2 = await cluster().addStandby('s2', { settings: { wal_retrieve_retry_interval: '50ms' } });
    await eventually(s1, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 0, 's1 to have t');
    cluster().partition('primary', 's1');
    expect(await s1.promote()).to.equal(true);
    for (let i = 0; i < 10; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await eventually(s2, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 10, 's2 to have the old primary\'s rows');
    return { primary, s1, s2 };
  }

  it('refuses to follow a new timeline that forked off before what the standby already has', async () => {
    const { s1, s2 } = await forkedOff();
    await s2.query(`ALTER SYSTEM SET primary_conninfo = '${s1.conninfo}'`);
    await s2.query('SELECT pg_reload_conf()');
    await until(() => /new timeline 2 forked off current database system timeline 1 before current recovery point [0-9A-F]+\/[0-9A-F]+/.test(log(s2)), 'the refusal in s2\'s log');
    expect((await s2.query('SELECT count(*) AS n FROM t')).rows[0]!['n'], 'nothing of the other timeline applied').to.equal(10);
  });

  it('refuses the new timeline also when the standby restarts pointed at it, having replayed past the fork', async () => {
    const { primary, s1, s2 } = await forkedOff();
    await s1.query('INSERT INTO t VALUES (-1)');
    await s2.query(`ALTER SYSTEM SET primary_conninfo = '${s1.conninfo}'`);
    await primary.stop();
    await s2.stop();
    await s2.start();
    await until(() => /new timeline 2 forked off current database system timeline 1 before current recovery point/.test(log(s2)), 'the refusal after the restart');
    expect(log(s2)).to.not.include('new target timeline is 2');
    expect((await s2.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(10);
  });
});
