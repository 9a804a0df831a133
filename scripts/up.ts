/*
 * up.ts — `walship up FILE`: starts a topology file's servers and shows their state, refreshed
 * in place (on a terminal), until Ctrl-C stops them cleanly; `--once` shows it once and stops.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from '../src/index.js';
import { startTopology } from '../src/topology/start.js';
import { parseTopology, TopologyError } from '../src/topology/topology.js';

export interface UpOptions {
  readonly file: string;
  /** Where the data directories go (kept); default a temporary directory, removed at the end. */
  readonly dir?: string;
  readonly once: boolean;
  readonly refreshMs: number;
}

/** Exit status: 0 stopped cleanly, 2 a bad topology file or a failure to start. */
export async function runUp(options: UpOptions, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  let topology;
  try {
    topology = parseTopology(readFileSync(options.file, 'utf8'), options.file);
  } catch (e) {
    err(e instanceof TopologyError ? `walship up: ${e.message}` : `walship up: cannot read ${options.file}: ${(e as Error).message}`);
    return 2;
  }
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'walship-up-'));
  let started;
  try {
    started = await startTopology(topology, dir, (line) => out(`started ${line}\n`));
  } catch (e) {
    err(`walship up: could not start ${options.file}: ${(e as Error).message}`);
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    return 2;
  }
  const { cluster, servers } = started;
  const tty = process.stdout.isTTY === true && !options.once;
  let stopping = false;
  const stop = new Promise<void>((resolve) => {
    const onSignal = (): void => {
      stopping = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    if (options.once) onSignal();
  });
  try {
    do {
      const screen = await statusScreen(options.file, dir, servers);
      out(tty ? `\x1b[H\x1b[2J${screen}` : screen);
      if (stopping) break;
      await Promise.race([stop, new Promise((resolve) => setTimeout(resolve, options.refreshMs))]);
    } while (!stopping);
  } finally {
    out('stopping...\n');
    await cluster.destroy();
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
  out('stopped\n');
  return 0;
}

/** One line per server: role, position, streaming state, sync state, conflicts, archiving. */
async function statusScreen(file: string, dir: string, servers: ReadonlyMap<string, Server>): Promise<string> {
  const rows: string[][] = [['server', 'role', 'lsn', 'receiver', 'upstream', 'sync_state', 'conflicts', 'archived/failed']];
  const syncStates = new Map<string, string>();
  for (const server of servers.values()) {
    const replication = await server.query('SELECT application_name, sync_state FROM pg_stat_replication').catch(() => null);
    for (const r of replication?.rows ?? []) syncStates.set(String(r['application_name']), String(r['sync_state']));
  }
  for (const [name, server] of servers) {
    const row = async (sql: string): Promise<Record<string, unknown>> => (await server.query(sql).catch(() => null))?.rows[0] ?? {};
    const recovery = (await row('SELECT pg_is_in_recovery() AS r'))['r'] === true;
    const lsn = recovery ? (await row('SELECT pg_last_wal_replay_lsn() AS l'))['l'] : (await row('SELECT pg_current_wal_lsn() AS l'))['l'];
    const receiver = recovery ? await row('SELECT status, sender_port FROM pg_stat_wal_receiver') : {};
    const conflicts = (await row("SELECT conflicts FROM pg_stat_database WHERE datname = 'postgres'"))['conflicts'];
    const archiver = await row('SELECT archived_count, failed_count FROM pg_stat_archiver');
    rows.push([
      name, recovery ? 'standby' : 'primary', String(lsn ?? ''), recovery ? String(receiver['status'] ?? 'archive') : '',
      recovery && receiver['sender_port'] != null ? `port ${String(receiver['sender_port'])}` : '', syncStates.get(name) ?? '',
      String(conflicts ?? 0), `${String(archiver['archived_count'] ?? 0)}/${String(archiver['failed_count'] ?? 0)}`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  return `walship up ${file} (data in ${dir}) at ${new Date().toISOString()}; Ctrl-C stops\n\n${lines.join('\n')}\n\n`;
}
