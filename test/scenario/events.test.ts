/*
 * cluster.on(): what the servers report, as a program subscribes to it — state changes,
 * promotion, a hot standby conflict, an archiver failure, a slot invalidation.
 */
import { expect } from 'chai';
import type { ClusterEvent } from '../../src/index.js';
import { caughtUp, clusterPerTest, eventually, until } from '../helpers.js';

const SEG = 1024 * 1024;

for (const placement of ['inline', 'thread'] as const) {
  describe(`cluster events (${placement} placement)`, function () {
    this.timeout(60_000);
    const cluster = clusterPerTest(placement);

    it('reports states, a promotion, a conflict, an archiver failure and a slot invalidation', async () => {
      const events: ClusterEvent[] = [];
      const unsubscribe = cluster().on((event) => events.push(event));
      const seen = (test: (e: ClusterEvent) => boolean): boolean => events.some(test);
      const primary = await cluster().initPrimary('primary', {
        walSegmentSize: SEG, settings: { archive_mode: 'on', archive_command: 'exit 1', max_slot_wal_keep_size: '1MB' },
      });
      await primary.query('CREATE TABLE t (x int)');
      await primary.query("SELECT pg_create_physical_replication_slot('lagging', true)");
      const standby = await cluster().addStandby('standby', { settings: { max_standby_streaming_delay: '0' } });
      await until(() => seen((e) => e.server === 'primary' && e.type === 'state' && e.state === 'primary'), "the primary's state");
      await until(() => seen((e) => e.server === 'standby' && e.type === 'state' && e.state === 'standby'), "the standby's state");

      // A segment switch the archive_command fails to archive.
      await primary.query('INSERT INTO t VALUES (1)');
      await primary.query('SELECT pg_switch_wal()');
      await until(() => seen((e) => e.type === 'archiver_failed' && e.server === 'primary'), 'the archiver failure');

      // The slot falls behind max_slot_wal_keep_size: a checkpoint invalidates it.
      for (let i = 0; i < 3; i++) {
        await primary.query('INSERT INTO t SELECT g FROM generate_series(1, 2000) AS g');
        await primary.query('SELECT pg_switch_wal()');
      }
      await primary.query('CHECKPOINT');
      await until(() => seen((e) => e.type === 'slot_invalidated' && e.slot === 'lagging'), 'the slot invalidation');

      // A standby transaction in replay's way, ended at once (delay 0).
      await eventually(standby, "SELECT count(*) AS n FROM pg_stat_database WHERE datname = 'postgres'", (r) => r.rows[0]!['n'] === 1, 'the standby');
      const reader = await standby.connect();
      await caughtUp(primary, standby);
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM t');
      await primary.query('DROP TABLE t');
      await until(() => seen((e) => e.type === 'conflict' && e.server === 'standby' && e.kind === 'lock' && e.terminated), 'the conflict');

      await primary.stop();
      await until(() => seen((e) => e.server === 'primary' && e.type === 'state' && e.state === 'stopped'), 'the primary stopped');
      expect(await standby.promote()).to.equal(true);
      await until(() => seen((e) => e.server === 'standby' && e.type === 'promoted'), 'the promotion');
      const promoted = events.find((e) => e.type === 'promoted')!;
      expect(promoted).to.include({ server: 'standby', timeline: 2, message: 'database system is ready to accept connections' });
      expect(seen((e) => e.server === 'standby' && e.type === 'state' && e.state === 'primary')).to.equal(true);
      unsubscribe();
      const count = events.length;
      await standby.stop();
      expect(events.length, 'nothing after unsubscribing').to.equal(count);
    });
  });
}
