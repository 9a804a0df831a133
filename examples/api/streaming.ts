/*
 * A primary and a streaming standby: write on one, read on the other, look at both sides.
 */
import { Cluster } from '../../src/index.js';

export async function main(dir: string, print: (line: string) => void): Promise<void> {
  const cluster = await Cluster.create({ dir, placement: 'thread' });
  try {
    const primary = await cluster.initPrimary('primary');
    await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
    const standby = await cluster.addStandby('standby', { slot: 'standby' });
    await primary.query('INSERT INTO kv VALUES ($1, $2)', [1, 'one']);
    const lsn = (await primary.query('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!['lsn'];
    // Wait until the standby has replayed it (poll with a deadline, never a blind sleep).
    const deadline = Date.now() + 10_000;
    while ((await standby.query(`SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '${String(lsn)}') >= 0 AS done`)).rows[0]!['done'] !== true) {
      if (Date.now() > deadline) throw new Error('the standby did not catch up');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    print(JSON.stringify((await standby.query('SELECT * FROM kv')).rows));
    print(JSON.stringify((await primary.query('SELECT application_name, state, sync_state FROM pg_stat_replication')).rows));
    print(JSON.stringify((await standby.query('SELECT status, sender_port FROM pg_stat_wal_receiver')).rows));
  } finally {
    await cluster.destroy();
  }
}
