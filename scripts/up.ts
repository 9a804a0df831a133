/*
 * up.ts — `walship up FILE`: starts a topology file's servers and shows their state, refreshed
 * in place (on a terminal), until Ctrl-C stops them cleanly; `--once` shows it once and stops.
 * `--detach` starts them in a process of their own and returns; `walship status`, `sql`,
 * `promote`, `stop`, ... reach it through its state file (scripts/control.ts).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processAlive, readState, serveControl } from './control.js';
import type { Server } from '../src/index.js';
import { startTopology } from '../src/topology/start.js';
import { parseTopology, TopologyError } from '../src/topology/topology.js';

export interface UpOptions {
  readonly file: string;
  /** Where the data directories go (kept); default a temporary directory, removed at the end. */
  readonly dir?: string;
  readonly once: boolean;
  readonly refreshMs: number;
  /** The state file of a detached topology (default .walship/state.json). */
  readonly statePath?: string;
  /** Start the topology in a process of its own and return once it runs. */
  readonly detach?: boolean;
  /** (The detached process itself.) Serve commands; `removeDir`: the directory is a temporary one. */
  readonly serve?: { readonly removeDir: boolean };
}

export const DEFAULT_STATE_PATH = '.walship/state.json';

/** `walship up --detach`: the topology in its own process, which this one waits to see running. */
async function detach(options: UpOptions, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const statePath = resolve(options.statePath ?? DEFAULT_STATE_PATH);
  const running = readState(statePath);
  if (running !== null && processAlive(running.pid)) {
    err(`walship up: a topology is already running (pid ${running.pid}, ${running.file}); stop it first with: walship stop`);
    return 2;
  }
  mkdirSync(dirname(statePath), { recursive: true });
  rmSync(statePath, { force: true });
  const temporary = options.dir === undefined;
  const dir = resolve(options.dir ?? mkdtempSync(join(tmpdir(), 'walship-up-')));
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, 'walship-up.log');
  const log = openSync(logPath, 'a');
  const cli = fileURLToPath(new URL('./walship.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'up', resolve(options.file), '--serve', '--state', statePath, '--dir', dir, ...(temporary ? ['--temporary-dir'] : [])], {
    detached: true, stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code) => {
    exited = code ?? 1;
  });
  const deadline = performance.now() + 120_000;
  while (readState(statePath) === null) {
    if (exited !== null || performance.now() > deadline) {
      err(`walship up: the topology did not start; its output (${logPath}):\n${readFileSync(logPath, 'utf8')}`);
      if (exited === null) child.kill('SIGTERM');
      return 2;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.unref();
  out(`${options.file} runs in the background (pid ${child.pid}, data in ${dir}, output in ${logPath}); state in ${statePath}\n`);
  out('walship status | sql SERVER "..." | promote SERVER | stop [SERVER] | kill SERVER | start SERVER | rewind SERVER --source S | logs SERVER\n');
  return 0;
}

/** Exit status: 0 stopped cleanly, 2 a bad topology file or a failure to start. */
export async function runUp(options: UpOptions, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  if (options.detach === true) {
    // The file is checked here first, so that a mistake is reported at once, by this command.
    try {
      parseTopology(readFileSync(options.file, 'utf8'), options.file);
    } catch (e) {
      err(e instanceof TopologyError ? `walship up: ${e.message}` : `walship up: cannot read ${options.file}: ${(e as Error).message}`);
      return 2;
    }
    return detach(options, out, err);
  }
  let topology;
  try {
    topology = parseTopology(readFileSync(options.file, 'utf8'), options.file);
  } catch (e) {
    err(e instanceof TopologyError ? `walship up: ${e.message}` : `walship up: cannot read ${options.file}: ${(e as Error).message}`);
    return 2;
  }
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'walship-up-'));
  // Ctrl-C while the servers start: they are stopped once started, and the directory removed.
  let interrupted = false;
  const early = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', early);
  process.on('SIGTERM', early);
  const removeDir = options.serve?.removeDir ?? options.dir === undefined;
  let started;
  try {
    started = await startTopology(topology, dir, (line) => out(`started ${line}\n`));
  } catch (e) {
    err(`walship up: could not start ${options.file}: ${(e as Error).message}`);
    if (removeDir) rmSync(dir, { recursive: true, force: true });
    return 2;
  } finally {
    process.off('SIGINT', early);
    process.off('SIGTERM', early);
  }
  const { cluster, servers } = started;
  if (interrupted) {
    out('interrupted: stopping...\n');
    await cluster.destroy();
    if (removeDir) rmSync(dir, { recursive: true, force: true });
    return 130;
  }
  if (options.serve !== undefined) {
    const statePath = resolve(options.statePath ?? DEFAULT_STATE_PATH);
    let onSignal: () => void = () => {};
    const signalled = new Promise<void>((resolveSignal) => {
      onSignal = resolveSignal;
    });
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    try {
      await serveControl(cluster, servers, statePath, { dir, file: options.file, servers: [...servers.keys()] }, () => statusScreen(options.file, dir, servers), signalled);
    } finally {
      out('stopping...\n');
      await cluster.destroy();
      if (options.serve.removeDir) rmSync(dir, { recursive: true, force: true });
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      rmSync(statePath, { force: true });
    }
    out('stopped\n');
    return 0;
  }
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
      const screen = (await statusScreen(options.file, dir, servers)).text;
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
export async function statusScreen(file: string, dir: string, servers: ReadonlyMap<string, Server>): Promise<{ text: string; rows: Record<string, string>[] }> {
  const rows: string[][] = [['server', 'role', 'lsn', 'receiver', 'upstream', 'sync_state', 'replay_lag', 'conflicts', 'archived/failed']];
  // Each standby as its upstream's pg_stat_replication sees it.
  const syncStates = new Map<string, string>();
  const lags = new Map<string, string>();
  for (const server of servers.values()) {
    const replication = await server.query('SELECT application_name, sync_state, replay_lag FROM pg_stat_replication').catch(() => null);
    for (const r of replication?.rows ?? []) {
      syncStates.set(String(r['application_name']), String(r['sync_state']));
      lags.set(String(r['application_name']), r['replay_lag'] === null ? '0' : String(r['replay_lag']));
    }
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
      recovery && receiver['sender_port'] != null ? `port ${String(receiver['sender_port'])}` : '', syncStates.get(name) ?? '', lags.get(name) ?? '',
      String(conflicts ?? 0), `${String(archiver['archived_count'] ?? 0)}/${String(archiver['failed_count'] ?? 0)}`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  const header = rows[0]!;
  return {
    text: `walship up ${file} (data in ${dir}) at ${new Date().toISOString()}; Ctrl-C stops\n\n${lines.join('\n')}\n\n`,
    rows: rows.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]!]))),
  };
}
