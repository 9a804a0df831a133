/*
 * control.ts — how `walship status`, `sql`, `promote`, `stop`, `kill`, `start` and `rewind`
 * reach a topology started with `walship up FILE --detach`.
 *
 * The detached process listens on a loopback port (an ephemeral one) and writes a state file
 * (0600) with that port, a random token, its pid, the data directory and the server names.
 * A command connects, sends one JSON line `{ token, command, ...arguments }` and reads one
 * JSON line back: `{ ok: true, ... }` or `{ ok: false, error }`, where error is a PgError's
 * fields or a message. Nothing but loopback, and nothing without the token.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server as NetServer, type Socket } from 'node:net';
import { Cluster, PgError, type Server } from '../src/index.js';

export interface ControlState {
  readonly pid: number;
  readonly port: number;
  readonly token: string;
  readonly dir: string;
  readonly file: string;
  readonly servers: readonly string[];
}

export type ControlRequest =
  | { readonly command: 'status' }
  | { readonly command: 'sql'; readonly server: string; readonly sql: string }
  | { readonly command: 'promote'; readonly server: string }
  | { readonly command: 'stop'; readonly server?: string; readonly mode?: 'fast' | 'immediate' | 'smart' }
  | { readonly command: 'kill'; readonly server: string }
  | { readonly command: 'start'; readonly server: string }
  | { readonly command: 'rewind'; readonly server: string; readonly source: string };

export type ControlReply = { readonly ok: true; readonly [key: string]: unknown } | { readonly ok: false; readonly error: { readonly message: string; readonly [key: string]: unknown } };

/** Serves commands for a running topology until a `stop` of everything; resolves then. */
export async function serveControl(
  cluster: Cluster, servers: ReadonlyMap<string, Server>, statePath: string, state: Omit<ControlState, 'port' | 'token' | 'pid'>,
  status: () => Promise<{ text: string; rows: readonly Record<string, string>[] }>,
  /** Resolves when the process is told to stop otherwise (SIGTERM, SIGINT). */
  signalled: Promise<void>,
): Promise<void> {
  const token = randomBytes(16).toString('hex');
  let stopAll: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stopAll = resolve;
  });
  const handle = async (request: ControlRequest): Promise<ControlReply> => {
    const server = (name: string): Server => {
      const found = servers.get(name);
      if (found === undefined) throw new Error(`no server "${name}" in this topology (there are: ${[...servers.keys()].join(', ')})`);
      return found;
    };
    switch (request.command) {
      case 'status':
        return { ok: true, ...(await status()) };
      case 'sql': {
        const result = await server(request.server).query(request.sql);
        return { ok: true, result };
      }
      case 'promote':
        return { ok: true, promoted: await server(request.server).promote() };
      case 'stop':
        if (request.server !== undefined) {
          await server(request.server).stop(request.mode ?? 'fast');
          return { ok: true };
        }
        stopAll();
        return { ok: true };
      case 'kill':
        await server(request.server).kill();
        return { ok: true };
      case 'start':
        await server(request.server).start();
        return { ok: true };
      case 'rewind':
        return { ok: true, report: await server(request.server).rewind({ source: server(request.source) }) };
    }
  };
  const net: NetServer = createServer((socket: Socket) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      const line = buffered.slice(0, newline);
      let request: (ControlRequest & { token?: string }) | null = null;
      try {
        request = JSON.parse(line) as ControlRequest & { token?: string };
      } catch {
        // answered below
      }
      const answer = (reply: ControlReply): void => {
        socket.end(`${JSON.stringify(reply)}\n`);
      };
      if (request === null || request.token !== token) {
        answer({ ok: false, error: { message: 'refused: not a walship command with this topology\'s token' } });
        return;
      }
      handle(request).then(answer, (err: unknown) => {
        answer({ ok: false, error: err instanceof PgError ? { ...err.toFields() } : { message: err instanceof Error ? err.message : String(err) } });
      });
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => net.listen(0, '127.0.0.1', resolve));
  const address = net.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  writeFileSync(statePath, `${JSON.stringify({ ...state, pid: process.pid, port, token } satisfies ControlState)}\n`, { mode: 0o600 });
  try {
    await Promise.race([stopped, signalled]);
  } finally {
    // The state file stays until the servers are stopped (the caller removes it): `walship stop` waits for that.
    await new Promise<void>((resolve) => net.close(() => resolve()));
  }
}

/** Whether a process of this pid runs. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The running topology's state file; null if there is none. */
export function readState(statePath: string): ControlState | null {
  try {
    return JSON.parse(readFileSync(statePath, 'utf8')) as ControlState;
  } catch {
    return null;
  }
}

/** Sends one command to the topology named by `state` and resolves to its reply. */
export function sendControl(state: ControlState, request: ControlRequest, timeoutMs = 120_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port: state.port });
    let buffered = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer from the topology within ${timeoutMs / 1000} s`)));
    socket.on('connect', () => socket.write(`${JSON.stringify({ ...request, token: state.token })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
    });
    socket.on('end', () => {
      try {
        resolve(JSON.parse(buffered) as ControlReply);
      } catch {
        reject(new Error('the topology closed the connection without an answer'));
      }
    });
    socket.on('error', (err) => reject(new Error(`cannot reach the topology on port ${state.port}: ${err.message}`)));
  });
}
