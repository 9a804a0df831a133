/*
 * commands.ts — `walship status`, `sql`, `promote`, `stop`, `kill`, `start`, `rewind` and
 * `logs` against a topology started with `walship up FILE --detach` (found through its state
 * file). Output as psql prints it, or `--json` for scripts. Exit status: 0 done, 1 the
 * command failed (an SQL error, a promotion that did not happen), 2 no running topology or
 * a bad argument.
 */
import { existsSync, readFileSync, statSync, watchFile, unwatchFile } from 'node:fs';
import { join, resolve } from 'node:path';
import { readState, sendControl, type ControlReply, type ControlRequest, type ControlState } from './control.js';
import { DEFAULT_STATE_PATH } from './up.js';

export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export function statePathOf(option: string | undefined): string {
  return resolve(option ?? process.env['WALSHIP_STATE'] ?? DEFAULT_STATE_PATH);
}

function runningState(statePath: string, io: Io): ControlState | null {
  const state = readState(statePath);
  if (state === null) io.err(`walship: no running topology (no state file at ${statePath}); start one with: walship up FILE --detach`);
  return state;
}

/** Sends `request` and prints the reply with `print`; the exit status. */
export async function command(statePath: string, request: ControlRequest, json: boolean, io: Io, print: (reply: ControlReply & { ok: true }) => number): Promise<number> {
  const state = runningState(statePath, io);
  if (state === null) return 2;
  let reply: ControlReply;
  try {
    reply = await sendControl(state, request);
  } catch (err) {
    io.err(`walship: ${(err as Error).message} (is the topology still running? its state file is ${statePath})`);
    return 2;
  }
  if (json) io.out(`${JSON.stringify(reply)}\n`);
  if (!reply.ok) {
    if (!json) {
      const e = reply.error;
      io.err(`${String(e['severity'] ?? 'ERROR')}:  ${e.message}${e['detail'] !== undefined ? `\nDETAIL:  ${String(e['detail'])}` : ''}${e['hint'] !== undefined ? `\nHINT:  ${String(e['hint'])}` : ''}`);
    }
    return 1;
  }
  return json ? 0 : print(reply);
}

/** A query result as psql prints it. */
export function psqlTable(result: { command: string; rowCount: number; columns: readonly { name: string }[]; rows: readonly Record<string, unknown>[] }): string {
  if (result.columns.length === 0) return `${result.command}${result.command === 'INSERT' ? ` 0 ${result.rowCount}` : ['UPDATE', 'DELETE', 'SELECT'].includes(result.command) ? ` ${result.rowCount}` : ''}\n`;
  const cells = result.rows.map((r) => result.columns.map((c) => (r[c.name] === null || r[c.name] === undefined ? '' : String(r[c.name]))));
  const widths = result.columns.map((c, i) => Math.max(c.name.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: readonly string[]): string => ` ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')}`.trimEnd();
  const header = ` ${result.columns.map((c, i) => c.name.padStart(Math.floor((widths[i]! + c.name.length) / 2)).padEnd(widths[i]!)).join(' | ')}`.trimEnd();
  const rule = widths.map((w) => '-'.repeat(w + 2)).join('+');
  return `${header}\n${rule}\n${cells.map(line).join('\n')}${cells.length > 0 ? '\n' : ''}(${result.rowCount} row${result.rowCount === 1 ? '' : 's'})\n`;
}

/** `walship logs SERVER [-f]`: the server's log file, and with -f what it writes next until Ctrl-C. */
export async function logs(statePath: string, server: string, follow: boolean, io: Io): Promise<number> {
  const state = runningState(statePath, io);
  if (state === null) return 2;
  if (!state.servers.includes(server)) {
    io.err(`walship logs: no server "${server}" in this topology (there are: ${state.servers.join(', ')})`);
    return 2;
  }
  const path = join(state.dir, server, 'log', 'postgresql.log');
  let shown = 0;
  const show = (): void => {
    if (!existsSync(path)) return;
    const size = statSync(path).size;
    if (size <= shown) return;
    io.out(readFileSync(path).subarray(shown, size).toString('utf8'));
    shown = size;
  };
  show();
  if (!follow) return 0;
  await new Promise<void>((done) => {
    watchFile(path, { interval: 250 }, show);
    const stop = (): void => {
      unwatchFile(path, show);
      done();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
