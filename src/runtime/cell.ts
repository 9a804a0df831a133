/*
 * cell.ts — the kernel's record of one live actor, and the Context it hands the actor.
 *
 * A cell is owned by its kernel: created by spawn, removed by terminate. It holds the actor
 * (built from its behaviour at start), its mailbox, its timers and its children, so that an
 * actor that ends takes its timers and its children with it.
 */
import { refKey, type Actor, type ActorRef, type ActorSpec, type ExitReason, type Message } from './actor.js';
import type { Context, LogFields, LogLevel, TimerId } from './context.js';
import type { IoOp } from './io.js';
import type { Kernel } from './kernel.js';
import { Fifo } from './mailbox.js';
import type { Envelope } from './scheduler.js';

export type CellState = 'loading' | 'running' | 'stopping' | 'dead';

export class Cell {
  readonly key: string;
  state: CellState = 'running';
  actor: Actor | null = null;
  /** Real scheduler only: pending envelopes, and whether the cell is in the ready queue. */
  readonly mailbox = new Fifo<Envelope>();
  ready = false;
  /** Envelopes queued anywhere (mailbox, simulated channels, or `deferred` while loading). */
  queued = 0;
  deferred: Envelope[] = [];
  readonly timers = new Map<TimerId, unknown>();
  readonly children = new Map<string, ActorRef>();
  /** Read through a method so that TypeScript does not narrow it across calls that may end the cell. */
  isDead(): boolean {
    return this.state === 'dead';
  }

  /** Its start returned 'later' and it has not called `ctx.ready()` yet. */
  starting = false;
  /** Set by `ctx.stop(ctx.self)`; applied once the current handler returns. */
  pendingExit: ExitReason | null = null;
  readonly ctx: Context;

  constructor(
    readonly kernel: Kernel,
    readonly ref: ActorRef,
    readonly parent: ActorRef,
    readonly name: string,
    readonly incarnation: number,
  ) {
    this.key = refKey(ref);
    this.ctx = new CellContext(this);
  }
}

class CellContext implements Context {
  readonly self: ActorRef;
  readonly parent: ActorRef;

  constructor(private readonly cell: Cell) {
    this.self = cell.ref;
    this.parent = cell.parent;
  }

  send<M extends Message>(to: ActorRef, msg: M): boolean {
    return this.cell.kernel.deliver(this.cell.key, to, msg);
  }

  after<M extends Message>(ms: number, msg: M): TimerId {
    return this.cell.kernel.startTimer(this.cell, ms, msg);
  }

  cancel(timer: TimerId): void {
    this.cell.kernel.cancelTimer(this.cell, timer);
  }

  now(): number {
    return this.cell.kernel.scheduler.now();
  }

  io<O extends IoOp>(op: O, replyTag: string): void {
    this.cell.kernel.startIo(this.cell, op, replyTag);
  }

  spawn(spec: ActorSpec): ActorRef {
    return this.cell.kernel.spawnChild(this.cell, spec);
  }

  stop(ref: ActorRef, reason?: ExitReason): void {
    this.cell.kernel.stopFrom(this.cell, ref, reason);
  }

  ready(): void {
    this.cell.kernel.ready(this.cell);
  }

  random(): number {
    return this.cell.kernel.scheduler.random();
  }

  newId(): string {
    return this.cell.kernel.newId();
  }

  log(level: LogLevel, text: string, fields?: LogFields): void {
    this.cell.kernel.logFrom(this.cell, level, text, fields);
  }
}
