/*
 * Rewind's report of what it discards, at its edges: a commit whose wait for its standby a
 * shutdown ended (its client never heard of it), commits at synchronous_commit = off just
 * before a shutdown (acknowledged), and a former primary that already removed the WAL past
 * the divergence (refused: nothing could be listed).
 */
import { expect } from 'chai';
import type { Server } from '../../src/index.js';
import { caughtUp, clusterPerTest, eventually, pgError } from '../helpers.js';

const SEG = 1024 * 1024;

async function xidOf(session: { query: Server['query'] }): Promise<number> {
  return Number((await session.query('SELECT txid_current() AS x')).rows[0]!['x']);
}

describe('rewind: what was acknowledged', function () {
  this.timeout(60_000);
  const cluster = clusterPerTest('inline');

  it('a commit whose wait for its synchronous standby a fast shutdown ended (57P01) is not acknowledged', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1');
    await primary.query("ALTER SYSTEM SET synchronous_standby_names = 's1'");
    await primary.query('SELECT pg_reload_conf()');
    await caughtUp(primary, s1);
    cluster().partition('primary', 's1');
    const session = await primary.connect({ settings: { synchronous_commit: 'on' } });
    await session.query('BEGIN');
    const xid = await xidOf(session);
    await session.query('INSERT INTO t VALUES (2)');
    const before = (await primary.query('SELECT pg_current_wal_lsn() AS l')).rows[0]!['l'] as string;
    const waiting = session.query('COMMIT');
    waiting.catch(() => undefined);
    await eventually(primary, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${before}') > 0 AS moved`, (r) => r.rows[0]!['moved'] === true, 'the commit record');
    await primary.stop('fast');
    expect((await pgError(waiting)).code).to.equal('57P01');
    cluster().heal('primary', 's1');
    expect(await s1.promote()).to.equal(true);
    const report = await primary.rewind({ source: s1 });
    expect(report.discarded.map((d) => [d.xid, d.acknowledged])).to.deep.equal([[xid, false]]);
  });

  it('commits at synchronous_commit = off right before a fast shutdown are acknowledged', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1');
    await caughtUp(primary, s1);
    cluster().partition('primary', 's1');
    const session = await primary.connect({ settings: { synchronous_commit: 'off' } });
    const xids: number[] = [];
    for (let i = 0; i < 3; i++) {
      await session.query('BEGIN');
      xids.push(await xidOf(session));
      await session.query('INSERT INTO t VALUES (1)');
      await session.query('COMMIT');
    }
    await primary.stop('fast');
    cluster().heal('primary', 's1');
    expect(await s1.promote()).to.equal(true);
    const report = await primary.rewind({ source: s1 });
    expect(report.discarded.map((d) => [d.xid, d.acknowledged, d.level])).to.deep.equal(xids.map((x) => [x, true, 'off']));
  });

  it('refuses when the former primary removed the WAL past the divergence, saying what to do instead', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1');
    await caughtUp(primary, s1);
    cluster().partition('primary', 's1');
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 5; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
      await primary.query('SELECT pg_switch_wal()');
      await primary.query('CHECKPOINT');
    }
    await primary.kill();
    cluster().heal('primary', 's1');
    expect(await s1.promote()).to.equal(true);
    const refused = await primary.rewind({ source: s1 }).then(() => null, (err: unknown) => err as Error);
    expect(refused?.message).to.match(/^could not read the target's WAL from [0-9A-F]+\/[0-9A-F]+: WAL segment [0-9A-F]{24} has been removed, so the transactions it would discard cannot be listed: make the standby again from a base backup of the source$/);
  });

  it('a server removed from the cluster no longer fences the others', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const drill = await cluster().addStandby('drill');
    await caughtUp(primary, drill);
    await primary.stop();
    expect(await drill.promote()).to.equal(true);
    await cluster().remove('drill');
    await primary.start();
    await primary.query('INSERT INTO t VALUES (1)');
    expect((await primary.query('SELECT count(*) AS n FROM t')).rows[0]!['n']).to.equal(1);
  });
});
