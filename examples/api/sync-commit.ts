/*
 * Synchronous replication: a commit at `on` waits for the synchronous standby's flush; with
 * the standby cut off it waits, and the client can cancel the wait (the commit stands locally).
 */
import { Cluster } from '../../src/index.js';

export async function main(dir: string, print: (line: string) => void): Promise<void> {
  const cluster = await Cluster.create({ dir, placement: 'inline' });
  try {
    const primary = await cluster.initPrimary('primary');
    await primary.query('CREATE TABLE t (x int)');
    await cluster.addStandby('s1');
    await primary.query("ALTER SYSTEM SET synchronous_standby_names = 's1'");
    await primary.query('SELECT pg_reload_conf()');
    const session = await primary.connect({ settings: { synchronous_commit: 'on' } });
    await session.query('INSERT INTO t VALUES (1)'); // returns once s1 has flushed it
    cluster.partition('primary', 's1');
    const waiting = session.query('INSERT INTO t VALUES (2)'); // waits for s1
    session.cancel();
    const result = await waiting;
    print(`${result.notices?.[0]?.message ?? 'no notice'}`); // canceling wait for synchronous replication due to user request
    cluster.heal('primary', 's1');
  } finally {
    await cluster.destroy();
  }
}
