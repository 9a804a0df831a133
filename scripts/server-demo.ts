/*
 * server-demo.ts — the second half of `walship demo`: one server, in a worker thread, doing
 * what the issue promises: commits at two durability levels, a kill, crash recovery, and
 * the log lines a PostgreSQL DBA expects; then a standby made by base backup, streaming and
 * answering read-only queries, with both sides' views. In a temporary directory removed
 * afterwards.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../src/index.js';

export async function runServerDemo(print: (line: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'walship-demo-'));
  const cluster = await Cluster.create({ dir, placement: 'thread' });
  try {
    const primary = await cluster.initPrimary('primary', { settings: { wal_writer_delay: '10ms' } });
    print(`>>> initdb + start in ${primary.dataDir}`);
    await primary.query('CREATE TABLE kv (id serial PRIMARY KEY, v text NOT NULL)');
    const local = await primary.connect({ settings: { synchronous_commit: 'local' } });
    const off = await primary.connect({ settings: { synchronous_commit: 'off' } });
    for (let i = 0; i < 100; i++) await local.query('INSERT INTO kv (v) VALUES ($1)', [`local ${i}`]);
    for (let i = 0; i < 100; i++) await off.query('INSERT INTO kv (v) VALUES ($1)', [`off ${i}`]);
    const lsn = (await primary.query('SELECT pg_current_wal_lsn()')).rows[0]!['pg_current_wal_lsn'];
    print(`>>> 200 rows committed (100 local, 100 off); pg_current_wal_lsn() = ${String(lsn)}`);
    await primary.kill();
    print('>>> killed (no shutdown checkpoint); starting again');
    await primary.start();
    const count = (await primary.query('SELECT count(*) FROM kv')).rows[0]!['count'];
    print(`>>> after crash recovery: ${String(count)} rows (every local commit is there; off may lose its last wal_writer_delay)`);

    const standby = await cluster.addStandby('standby1', { slot: 'standby1' });
    print(`>>> standby1 made by base backup of primary (slot standby1), streaming from ${primary.conninfo}`);
    for (let i = 0; i < 100; i++) await primary.query('INSERT INTO kv (v) VALUES ($1)', [`streamed ${i}`]);
    const target = (await primary.query('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!['lsn'] as string;
    while ((await standby.query(`SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '${target}') >= 0 AS done`)).rows[0]!['done'] !== true) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    print(`>>> on the standby: ${String((await standby.query('SELECT count(*) FROM kv')).rows[0]!['count'])} rows, replayed to ${target}`);
    const replication = await primary.query('SELECT application_name, state, sent_lsn, replay_lsn, sync_state FROM pg_stat_replication');
    print(`>>> primary's pg_stat_replication: ${JSON.stringify(replication.rows)}`);
    const slots = await primary.query('SELECT slot_name, active, restart_lsn, wal_status FROM pg_replication_slots');
    print(`>>> primary's pg_replication_slots: ${JSON.stringify(slots.rows)}`);
    try {
      await standby.query("INSERT INTO kv (v) VALUES ('no')");
    } catch (err) {
      print(`>>> writing on the standby: ERROR:  ${(err as Error).message}`);
    }
    await standby.stop('fast');
    await primary.stop('fast');
    for (const server of [primary, standby]) {
      print(`>>> ${server.name}'s log:`);
      for (const line of readFileSync(join(server.dataDir, 'log', 'postgresql.log'), 'utf8').trim().split('\n')) print(`    ${line}`);
    }
  } finally {
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
