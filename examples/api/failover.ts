/*
 * Failover: the primary goes, its standby is promoted onto timeline 2, the old primary comes
 * back fenced and is rewound into a standby of the new one, with a report of what it lost.
 */
import { Cluster, PgError } from '../../src/index.js';

export async function main(dir: string, print: (line: string) => void): Promise<void> {
  const cluster = await Cluster.create({ dir, placement: 'inline' });
  try {
    const primary = await cluster.initPrimary('primary');
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster.addStandby('standby');
    await primary.query('INSERT INTO t VALUES (1)');
    // A write the standby never gets: the network between them is cut first.
    cluster.partition('primary', 'standby');
    await primary.query('INSERT INTO t VALUES (2)');
    await primary.stop();
    print(`promoted: ${await standby.promote()}`);
    await standby.query('INSERT INTO t VALUES (3)');

    await primary.start(); // fenced: it knows timeline 2 exists on the standby
    try {
      await primary.query('INSERT INTO t VALUES (4)');
    } catch (err) {
      if (err instanceof PgError) print(`old primary: ${err.message}; ${err.detail ?? ''}`);
    }
    await primary.stop();
    cluster.heal('primary', 'standby');
    const report = await primary.rewind({ source: standby });
    print(`diverged at ${report.divergedAt}; discarded ${report.discarded.length} transaction(s), acknowledged: ${report.discarded.map((d) => d.acknowledged).join(', ')}`);
    print(`old primary in recovery now: ${String((await primary.query('SELECT pg_is_in_recovery() AS r')).rows[0]!['r'])}`);
  } finally {
    await cluster.destroy();
  }
}
