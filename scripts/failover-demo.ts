/*
 * failover-demo.ts — `walship demo`: a small HA topology doing what walship is for, checked
 * as it goes.
 *
 * A primary archiving into a directory archive; s1 its synchronous standby and s2 a
 * potential one with a slot (synchronous_standby_names = 'FIRST 1 (s1, s2)'); s3 cascaded
 * from s1. A short load at each synchronous_commit level prints commit latency by level and
 * both sides' pg_stat_replication. Then the primary is killed in the middle of a load at
 * `on`, s1 is promoted, and the demo checks that every commit a client saw acknowledged is
 * there, that s3 followed s1 onto timeline 2 by itself, that s2 follows once re-pointed, and
 * that the old primary, restarted, is fenced. Every step is checked: `ok` is false (and the
 * command exits 1) if any check failed. In a temporary directory removed afterwards.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, PgError, type Server, type ServerPlacement } from '../src/index.js';

export interface FailoverDemoOptions {
  readonly placement: ServerPlacement;
  /** Commits per level in the latency round. */
  readonly commitsPerLevel: number;
}

const LEVELS = ['off', 'local', 'on', 'remote_apply'] as const;

export async function runFailoverDemo(options: FailoverDemoOptions, print: (line: string) => void): Promise<{ ok: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), 'walship-demo-'));
  const archive = join(dir, 'archive');
  mkdirSync(archive);
  const cluster = await Cluster.create({ dir, placement: options.placement });
  // Ctrl-C mid-demo: the servers stop and the directory goes, as at the end.
  const onInterrupt = (): void => {
    void cluster.destroy().finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onInterrupt);
  let ok = true;
  const check = (passed: boolean, what: string): void => {
    print(`${passed ? 'ok  ' : 'FAIL'} ${what}`);
    if (!passed) ok = false;
  };
  const until = async (server: Server, sql: string, test: (row: Record<string, unknown>) => boolean, what: string): Promise<boolean> => {
    const deadline = performance.now() + 20_000;
    for (;;) {
      const row = (await server.query(sql)).rows[0] ?? {};
      if (test(row)) return true;
      if (performance.now() > deadline) {
        print(`     gave up waiting for ${what}; last: ${JSON.stringify(row)}`);
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const table = (rows: readonly Record<string, unknown>[]): void => {
    if (rows.length === 0) return print('     (no rows)');
    const columns = Object.keys(rows[0]!);
    const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
    print(`     ${columns.map((c, i) => c.padEnd(widths[i]!)).join(' | ')}`);
    print(`     ${widths.map((w) => '-'.repeat(w)).join('-+-')}`);
    for (const r of rows) print(`     ${columns.map((c, i) => String(r[c] ?? '').padEnd(widths[i]!)).join(' | ')}`);
  };
  try {
    print(`>>> a primary archiving to ${archive}, s1 and s2 standbys of it, s3 cascaded from s1 (placement: ${options.placement})`);
    const primary = await cluster.initPrimary('primary', {
      settings: { wal_writer_delay: '10ms', archive_mode: 'on', archive_library: 'basic_archive', 'basic_archive.archive_directory': archive },
    });
    await primary.query('CREATE TABLE kv (id int, level text)');
    const s1 = await cluster.addStandby('s1', { settings: { wal_retrieve_retry_interval: '100ms' } });
    const s2 = await cluster.addStandby('s2', { slot: 's2', settings: { wal_retrieve_retry_interval: '100ms' } });
    const s3 = await cluster.addStandby('s3', { upstream: 's1', settings: { wal_retrieve_retry_interval: '100ms' } });
    await primary.query("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (s1, s2)'");
    await primary.query('SELECT pg_reload_conf()');
    check(await until(primary, "SELECT count(*) AS n FROM pg_stat_replication WHERE application_name = 's1' AND sync_state = 'sync'", (r) => r['n'] === 1, 's1 to be synchronous'),
      "synchronous_standby_names = 'FIRST 1 (s1, s2)': s1 is sync, s2 potential");

    print(`>>> commit latency by synchronous_commit level (${options.commitsPerLevel} single-row commits each)`);
    let id = 0;
    const latency: Record<string, unknown>[] = [];
    for (const level of LEVELS) {
      const session = await primary.connect({ settings: { synchronous_commit: level } });
      const times: number[] = [];
      for (let i = 0; i < options.commitsPerLevel; i++) {
        const t0 = performance.now();
        await session.query('INSERT INTO kv VALUES ($1, $2)', [id++, level]);
        times.push(performance.now() - t0);
      }
      session.close();
      times.sort((a, b) => a - b);
      const at = (q: number): string => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(2);
      latency.push({ synchronous_commit: level, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: times.at(-1)!.toFixed(2) });
    }
    table(latency);
    print(">>> the primary's pg_stat_replication");
    table((await primary.query('SELECT application_name, state, sent_lsn, replay_lsn, sync_priority, sync_state FROM pg_stat_replication ORDER BY application_name')).rows);
    check(await until(s3, 'SELECT count(*) AS n FROM kv', (r) => r['n'] === id, 'the rows to reach s3'), `the ${id} rows reached s3 through s1`);
    print(">>> s1's pg_stat_replication (it serves s3)");
    table((await s1.query('SELECT application_name, state, sync_priority, sync_state FROM pg_stat_replication')).rows);

    print('>>> four clients commit at synchronous_commit = on; the primary is killed under them');
    const acknowledged: number[] = [];
    let stopped = false;
    const clients = await Promise.all([0, 1, 2, 3].map(() => primary.connect({ settings: { synchronous_commit: 'on' } })));
    const loads = clients.map(async (session, c) => {
      for (let i = 0; !stopped; i++) {
        const row = 1_000_000 * (c + 1) + i;
        try {
          await session.query('INSERT INTO kv VALUES ($1, $2)', [row, 'failover']);
        } catch (err) {
          if (err instanceof PgError) return;
          throw err;
        }
        acknowledged.push(row);
      }
    });
    try {
      await until(s1, "SELECT count(*) AS n FROM kv WHERE level = 'failover'", (r) => (r['n'] as number) >= 100, 'the load to run');
      await primary.kill();
    } finally {
      stopped = true;
      await Promise.all(loads);
    }
    print(`>>> primary killed after ${acknowledged.length} acknowledged commits; promoting s1`);
    const t0 = performance.now();
    check(await s1.promote(), `s1 promoted (pg_promote() took ${(performance.now() - t0).toFixed(0)} ms)`);
    const present = new Set((await s1.query("SELECT id FROM kv WHERE level = 'failover'")).rows.map((r) => r['id'] as number));
    const lost = acknowledged.filter((row) => !present.has(row));
    check(lost.length === 0, `every one of the ${acknowledged.length} acknowledged commits is on s1 (${lost.length} lost)`);
    await s1.query("INSERT INTO kv VALUES (-1, 'after failover')");
    check(await until(s3, "SELECT count(*) AS n FROM kv WHERE level = 'after failover'", (r) => r['n'] === 1, 's3 to follow'),
      's3 followed s1 onto the new timeline by itself and has its first new row');
    const s3Receiver = (await s3.query('SELECT status, received_tli, sender_port FROM pg_stat_wal_receiver')).rows[0] ?? {};
    check(s3Receiver['received_tli'] === 2, `s3 streams timeline ${String(s3Receiver['received_tli'])} from port ${String(s3Receiver['sender_port'])}`);
    // s2 streams through its slot: the new primary needs one of that name first, as in PostgreSQL.
    await s1.query("SELECT pg_create_physical_replication_slot('s2', true)");
    await s2.query(`ALTER SYSTEM SET primary_conninfo = '${s1.conninfo} application_name=s2'`);
    await s2.query('SELECT pg_reload_conf()');
    check(await until(s2, "SELECT count(*) AS n FROM kv WHERE level = 'after failover'", (r) => r['n'] === 1, 's2 to follow'),
      's2, re-pointed at s1 (primary_conninfo + reload; slot s2 made there), follows it too');
    print(`>>> s1's timeline history (pg_wal/00000002.history): ${JSON.stringify(readFileSync(join(s1.dataDir, 'pg_wal', '00000002.history'), 'utf8'))}`);

    await primary.start();
    const fenced = await primary.query("INSERT INTO kv VALUES (-2, 'split brain?')").then(() => null, (err: unknown) => err);
    check(fenced instanceof PgError && fenced.code === '25006', `the old primary, restarted, is fenced: ${fenced instanceof PgError ? `${fenced.message} (${fenced.detail ?? ''})` : 'it took the write!'}`);
    print(">>> s1's pg_stat_archiver");
    table((await s1.query('SELECT archived_count, last_archived_wal, failed_count FROM pg_stat_archiver')).rows);
    print(ok ? '>>> every step checked out' : '>>> some steps FAILED (see above)');
    return { ok };
  } finally {
    process.off('SIGINT', onInterrupt);
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
