/*
 * shell.ts — shell commands actors may ask for (archive_command, restore_command,
 * archive_cleanup_command), and their real and simulated implementations.
 *
 * An actor asks with `ctx.io({ kind: 'process.run', command, cwd }, tag)` and hears how the
 * shell ended: `{ exitCode, signal, stderr, timedOut }`. A command that fails is a result,
 * not an error: deciding what a non-zero exit or a signal means is the caller's business
 * (archive/command.ts has PostgreSQL's words for it). The operation fails only when no shell
 * could be started at all (a missing working directory, no /bin/sh).
 *
 * The real implementation runs `/bin/sh -c command`, as PostgreSQL's system() does, with
 * stdin and stdout ignored and stderr kept (its last SHELL_STDERR_MAX_BYTES). Each command
 * leads its own process group, so a timeout or the kernel's shutdown kills the shell and
 * everything it started, not just the shell. The result comes when the shell exits; output
 * still arriving from children it left behind is waited for only SHELL_EXIT_DRAIN_MS.
 *
 * Under simulation there are no processes: `simulatedShell` answers instead, by default the
 * way a shell answers a command it cannot find (exit code 127). A test that needs commands
 * to succeed or fail passes its own answer: `io: { 'process.run': simulatedShell(fn) }`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { IoOp, SimIoCompletion, SimIoHandler } from './io.js';

/** The most stderr a result carries (the tail is kept: that is where a failing command says why). */
export const SHELL_STDERR_MAX_BYTES = 64 * 1024;
/** After the shell exits, how long to wait for output its leftover children still hold open. */
export const SHELL_EXIT_DRAIN_MS = 100;

export interface ProcessRunOp extends IoOp {
  readonly kind: 'process.run';
  /** Run as `/bin/sh -c command`: quoting is the command's author's business, as in PostgreSQL. */
  readonly command: string;
  /** The working directory (PostgreSQL runs its commands in the data directory). */
  readonly cwd: string;
  /** Kill the command's whole process group (SIGKILL) after this long; no limit when absent. */
  readonly timeoutMs?: number;
}

export interface ProcessRunResult {
  /** The shell's exit code; null when a signal ended it. */
  readonly exitCode: number | null;
  /** The signal that ended the shell ('SIGKILL'), or null. */
  readonly signal: string | null;
  readonly stderr: string;
  /** True when the timeout killed it (then `signal` is 'SIGKILL'). */
  readonly timedOut: boolean;
}

export const PROCESS_OP_KINDS = ['process.run'] as const;

/** Real shell commands for one kernel; `close` kills whatever is still running. */
export class RealShell {
  private readonly running = new Set<ChildProcess>();

  run(op: ProcessRunOp): Promise<ProcessRunResult> {
    const { command, cwd, timeoutMs } = op;
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], { cwd, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      this.running.add(child);
      const stderr = new TailBuffer(SHELL_STDERR_MAX_BYTES);
      let timedOut = false;
      let exit: { code: number | null; signal: string | null } | null = null;
      let drainTimer: NodeJS.Timeout | undefined;
      let settled = false;
      const killTimer = timeoutMs === undefined ? undefined : setTimeout(() => {
        timedOut = true;
        killGroup(child);
      }, timeoutMs);
      const finish = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(killTimer);
        clearTimeout(drainTimer);
        this.running.delete(child);
        child.stderr?.destroy();
        resolve({ exitCode: exit!.code, signal: exit!.signal, stderr: stderr.text(), timedOut });
      };
      child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.on('error', (err) => {
        // Only a failed spawn reaches here with no exit: nothing ran.
        if (exit !== null || settled) return;
        settled = true;
        clearTimeout(killTimer);
        this.running.delete(child);
        reject(err);
      });
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        drainTimer = setTimeout(finish, SHELL_EXIT_DRAIN_MS);
      });
      child.on('close', () => {
        if (exit !== null) finish();
      });
    });
  }

  close(): void {
    for (const child of this.running) killGroup(child);
    this.running.clear();
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is already gone.
  }
}

/** Keeps the last `max` bytes pushed into it. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.max) this.size -= this.chunks.shift()!.length;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
  }
}

/** What a simulated command answers: a result, and optionally how long it took. */
export type SimulatedCommand = (op: ProcessRunOp) => ProcessRunResult | { readonly result: ProcessRunResult; readonly latencyMs: number };

/** What a shell says about a command it cannot find; the simulator's answer unless a test gives its own. */
export const COMMAND_NOT_FOUND_UNDER_SIMULATION: ProcessRunResult = {
  exitCode: 127, signal: null, stderr: 'sh: command not found under simulation', timedOut: false,
};

/** The simulated handler for `process.run`: `answer` decides the outcome; latency is seeded (1-5 ms) unless it says. */
export function simulatedShell(answer: SimulatedCommand = () => COMMAND_NOT_FOUND_UNDER_SIMULATION): SimIoHandler {
  return (op: IoOp, random: () => number): SimIoCompletion => {
    const latencyMs = 1 + Math.floor(random() * 5);
    const answered = answer(op as ProcessRunOp);
    if ('result' in answered) return { latencyMs: answered.latencyMs, outcome: { ok: true, value: answered.result } };
    return { latencyMs, outcome: { ok: true, value: answered } };
  };
}
