/*
 * Hot standby conflicts: a long transaction on the standby is in the way of replay; after
 * max_standby_streaming_delay it is ended, and pg_stat_database_conflicts counts it.
 */
import { Cluster, PgError } from '../../src/index.js';

export async function main(dir: string, print: (line: string) => void): Promise<void> {
  const cluster = await Cluster.create({ dir, placement: 'inline' });
  try {
    const primary = await cluster.initPrimary('primary');
    await primary.query('CREATE TABLE t (x int)');
    const standby = await cluster.addStandby('standby', { settings: { max_standby_streaming_delay: '100ms' } });
    const reader = await standby.connect();
    for (;;) {
      try {
        await reader.query('BEGIN');
        await reader.query('SELECT count(*) FROM t'); // holds a lock on t until the transaction ends
        break;
      } catch {
        await reader.query('ROLLBACK'); // t not replayed yet: try again
      }
    }
    await primary.query('DROP TABLE t'); // replay needs an ACCESS EXCLUSIVE lock on t
    for (;;) {
      const n = (await standby.query("SELECT confl_lock FROM pg_stat_database_conflicts WHERE datname = 'postgres'")).rows[0]!['confl_lock'];
      if (n === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    try {
      await reader.query('SELECT 1');
    } catch (err) {
      if (err instanceof PgError) print(`${err.severity}: ${err.message} (${err.detail ?? ''})`);
    }
  } finally {
    await cluster.destroy();
  }
}
