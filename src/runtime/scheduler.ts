/*
 * scheduler.ts — when deliveries run, what time it is, where randomness and I/O come from.
 *
 * There are exactly two schedulers: RealScheduler (this file: the event loop, the wall clock,
 * crypto randomness, real I/O handlers) and SimScheduler (simulator.ts: a virtual clock, a
 * seeded choice among deliverable messages and due timers, simulated I/O). The kernel hands a
 * scheduler (cell, envelope) pairs and the scheduler calls back `cell.kernel.dispatch` when
 * their turn comes. Nothing else in the kernel knows which scheduler it runs under.
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DRAIN_BUDGET, MICROTASK_DRAINS_BEFORE_RESET, MICROTASK_DRAINS_PER_TURN } from '../constants.js';
import type { Message } from './actor.js';
import type { Cell } from './cell.js';
import { ioError, type IoOp, type RealIoHandler, type SimIoCompletion } from './io.js';
import { Fifo } from './mailbox.js';

/** What sits in a mailbox: a message plus where it came from (a ref key, or timer / io / kernel). */
export interface Envelope {
  readonly from: string;
  readonly kind: 'message' | 'stop';
  readonly msg: Message;
}

export type IoOutcome = SimIoCompletion['outcome'];

export interface Scheduler {
  readonly simulated: boolean;
  enqueue(cell: Cell, env: Envelope): void;
  now(): number;
  random(): number;
  setTimer(ms: number, label: string, fire: () => void): unknown;
  clearTimer(handle: unknown): void;
  runIo(op: IoOp, label: string, done: (outcome: IoOutcome) => void): void;
}

/**
 * The real scheduler drains mailboxes in microtasks, right after whatever enqueued (lowest
 * latency), but no more than MICROTASK_DRAINS_PER_TURN times per event-loop turn: code that
 * awaits actor replies in a loop would otherwise chain microtasks forever and starve timers,
 * sockets and ports. Past the limit the next drain waits for setImmediate.
 */
export class RealScheduler implements Scheduler {
  readonly simulated = false;
  private readonly ready = new Fifo<Cell>();
  private scheduled = false;
  private microDrains = 0;
  private readonly handlers = new Map<string, RealIoHandler>();

  registerIo(kind: string, handler: RealIoHandler): void {
    this.handlers.set(kind, handler);
  }

  enqueue(cell: Cell, env: Envelope): void {
    cell.mailbox.push(env);
    if (!cell.ready) {
      cell.ready = true;
      this.ready.push(cell);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      // Counting resets on the next event-loop turn; arming that costs a setImmediate, so it
      // is armed only once a few drains have chained (I/O-driven drains rarely get there).
      if (this.microDrains === MICROTASK_DRAINS_BEFORE_RESET) setImmediate(this.newTurn);
      if (this.microDrains < MICROTASK_DRAINS_PER_TURN) {
        this.microDrains++;
        queueMicrotask(this.drain);
      } else {
        setImmediate(this.drain);
      }
    }
  }

  private readonly newTurn = (): void => {
    this.microDrains = 0;
  };

  /** One message per ready actor per pass (fairness); yields to the event loop after a budget. */
  private readonly drain = (): void => {
    let budget = DRAIN_BUDGET;
    while (budget-- > 0) {
      const cell = this.ready.shift();
      if (cell === undefined) {
        this.scheduled = false;
        return;
      }
      const env = cell.mailbox.shift();
      try {
        if (env !== undefined) cell.kernel.dispatch(cell, env);
      } finally {
        // Even if dispatch threw (a kernel bug), the cell and the drain stay schedulable.
        if (cell.mailbox.length > 0) this.ready.push(cell);
        else cell.ready = false;
      }
    }
    setImmediate(this.drain);
  };

  now(): number {
    return performance.timeOrigin + performance.now();
  }

  random(): number {
    return randomInt(0, 2 ** 47) / 2 ** 47;
  }

  setTimer(ms: number, _label: string, fire: () => void): unknown {
    return setTimeout(fire, Math.max(0, ms));
  }

  clearTimer(handle: unknown): void {
    clearTimeout(handle as NodeJS.Timeout);
  }

  runIo(op: IoOp, _label: string, done: (outcome: IoOutcome) => void): void {
    const handler = this.handlers.get(op.kind);
    const pending = handler === undefined
      ? Promise.reject(new Error(`no I/O handler is registered for "${op.kind}"`))
      : handler(op);
    pending.then(
      (value) => done({ ok: true, value }),
      (err: unknown) => done({ ok: false, error: ioError(err) }),
    );
  }
}
