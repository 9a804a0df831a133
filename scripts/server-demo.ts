/*
 * server-demo.ts — the second half of `walship demo`: one server, in a worker thread, doing
 * what the issue promises: commits at two durability levels, a kill, crash recovery, and
 * the log lines a PostgreSQL DBA expects, in a temporary data directory removed afterwards.
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
    await primary.stop('fast');
    const log = readFileSync(join(primary.dataDir, 'log', 'postgresql.log'), 'utf8').trim().split('\n');
    print('>>> the server log:');
    for (const line of log) print(`    ${line}`);
  } finally {
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
