/*
 * simulator.ts — the deterministic scheduler: a virtual clock, a seeded choice of what runs
 * next, simulated I/O.
 *
 * Every delivery waits in a channel named by (sender, receiver), so messages from one sender
 * to one receiver keep their order while everything else may interleave. Each step the
 * seeded generator picks one of: the head of a non-empty channel, or a due timer (I/O
 * completions are timers too, at the latency their simulated handler chose). When nothing is
 * deliverable the clock jumps to the next timer. The same seed therefore produces the same
 * run, step for step; the trace (or its hash) is the proof, and a failing seed replays.
 */
import { SIM_DEFAULT_MAX_STEPS, SIM_EPOCH_MS } from '../constants.js';
import type { Cell } from './cell.js';
import { ioError, type IoOp, type SimIoHandler } from './io.js';
import { Fifo } from './mailbox.js';
import { simulatedOffload } from './offload.js';
import { seededRandom, type RandomSource } from './prng.js';
import { simulatedShell } from './shell.js';
import type { Envelope, IoOutcome, Scheduler } from './scheduler.js';

interface SimTimer {
  readonly at: number;
  readonly seq: number;
  readonly label: string;
  readonly fire: () => void;
}

export interface SimOptions {
  readonly seed: number;
  /**
   * Simulated I/O handlers by op kind. Built in: `offload`, and `process.run` answering as a
   * shell that finds no command (pass `simulatedShell(answer)` from shell.ts to decide).
   */
  readonly io?: Readonly<Record<string, SimIoHandler>>;
  /** Keep every step's description (tests compare them); the hash is kept regardless. */
  readonly keepTrace?: boolean;
}

export interface RunLimits {
  /** Stop as soon as this returns true (checked after every step). */
  readonly until?: () => boolean;
  readonly maxSteps?: number;
  /** Run this many virtual milliseconds: stop before the clock passes them, then set it there. */
  readonly forMs?: number;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export class SimScheduler implements Scheduler {
  readonly simulated = true;
  readonly seed: number;
  readonly trace: string[] = [];
  /** FNV-1a over every step description: equal hashes, equal runs. */
  traceHash = FNV_OFFSET;
  steps = 0;
  private clock = SIM_EPOCH_MS;
  private readonly rng: RandomSource;
  private readonly keepTrace: boolean;
  private readonly channels = new Map<string, Fifo<readonly [Cell, Envelope]>>();
  private readonly active: string[] = [];
  private readonly timers: SimTimer[] = [];
  private timerSeq = 0;
  private readonly io = new Map<string, SimIoHandler>();

  constructor(options: SimOptions) {
    this.seed = options.seed;
    this.rng = seededRandom(options.seed);
    this.keepTrace = options.keepTrace ?? true;
    this.io.set('offload', simulatedOffload);
    this.io.set('process.run', simulatedShell());
    for (const [kind, handler] of Object.entries(options.io ?? {})) this.io.set(kind, handler);
  }

  now(): number {
    return this.clock;
  }

  /** Virtual milliseconds since the simulation began. */
  elapsedMs(): number {
    return this.clock - SIM_EPOCH_MS;
  }

  random(): number {
    return this.rng();
  }

  enqueue(cell: Cell, env: Envelope): void {
    const key = `${env.from}>${cell.key}`;
    let channel = this.channels.get(key);
    if (channel === undefined) {
      channel = new Fifo();
      this.channels.set(key, channel);
    }
    if (channel.length === 0) this.active.push(key);
    channel.push([cell, env]);
  }

  setTimer(ms: number, label: string, fire: () => void): unknown {
    const timer: SimTimer = { at: this.clock + ms, seq: ++this.timerSeq, label, fire };
    let i = this.timers.length;
    while (i > 0 && this.before(timer, this.timers[i - 1]!)) i--;
    this.timers.splice(i, 0, timer);
    return timer;
  }

  clearTimer(handle: unknown): void {
    const i = this.timers.indexOf(handle as SimTimer);
    if (i >= 0) this.timers.splice(i, 1);
  }

  runIo(op: IoOp, label: string, done: (outcome: IoOutcome) => void): void {
    const handler = this.io.get(op.kind);
    let latencyMs = 0;
    let outcome: IoOutcome;
    if (handler === undefined) {
      outcome = { ok: false, error: { message: `no simulated I/O handler for "${op.kind}"` } };
    } else {
      try {
        ({ latencyMs, outcome } = handler(op, this.rng));
      } catch (err) {
        outcome = { ok: false, error: ioError(err) };
      }
    }
    this.setTimer(latencyMs, `io ${label}`, () => done(outcome));
  }

  /** Runs one step; false when nothing is left to run at all. */
  step(): boolean {
    let due = this.dueCount();
    if (this.active.length === 0 && due === 0) {
      const next = this.timers[0];
      if (next === undefined) return false;
      this.clock = next.at;
      due = this.dueCount();
    }
    const pick = Math.floor(this.rng() * (this.active.length + due));
    this.steps++;
    if (pick < this.active.length) {
      const key = this.active[pick]!;
      const channel = this.channels.get(key)!;
      const [cell, env] = channel.shift()!;
      if (channel.length === 0) {
        this.active.splice(pick, 1);
        this.channels.delete(key);
      }
      this.record(`${env.from} -> ${cell.key} ${env.kind === 'stop' ? '$stop' : env.msg.type}`);
      cell.kernel.dispatch(cell, env);
    } else {
      const [timer] = this.timers.splice(pick - this.active.length, 1);
      this.record(`timer ${timer!.label}`);
      timer!.fire();
    }
    return true;
  }

  /** Runs until idle, `until()` holds, the step budget is spent (an error) or time is up. */
  run(limits: RunLimits = {}): number {
    const maxSteps = limits.maxSteps ?? SIM_DEFAULT_MAX_STEPS;
    const deadline = limits.forMs === undefined ? Infinity : this.clock + limits.forMs;
    const start = this.steps;
    while (!(limits.until?.() ?? false)) {
      if (this.steps - start >= maxSteps) {
        throw new Error(`simulation (seed ${this.seed}) still busy after ${maxSteps} steps: a livelock, or raise maxSteps`);
      }
      const next = this.timers[0];
      if (this.active.length === 0 && (next === undefined || next.at > deadline)) break;
      if (!this.step()) break;
    }
    // "Run for N ms" means N ms pass, even when nothing was scheduled in them.
    if (deadline !== Infinity && !(limits.until?.() ?? false)) this.clock = Math.max(this.clock, deadline);
    return this.steps - start;
  }

  private dueCount(): number {
    let n = 0;
    while (n < this.timers.length && this.timers[n]!.at <= this.clock) n++;
    return n;
  }

  private before(a: SimTimer, b: SimTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private record(what: string): void {
    const line = `${this.elapsedMs()} ${what}`;
    if (this.keepTrace) this.trace.push(line);
    let h = this.traceHash;
    for (let i = 0; i < line.length; i++) h = Math.imul(h ^ line.charCodeAt(i), FNV_PRIME);
    this.traceHash = h >>> 0;
  }
}
