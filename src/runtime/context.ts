/*
 * context.ts — everything an actor may do to the world, and nothing more.
 *
 * The same actor runs under the real scheduler and under the simulator; the only difference
 * is which implementation stands behind this interface. A handler that reached past it (a
 * real timer, Math.random, a file) would make simulation runs unrepeatable.
 */
import type { ActorRef, ActorSpec, ExitReason, Message } from './actor.js';
import type { IoOp } from './io.js';

export type TimerId = number;

export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'fatal';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Context {
  readonly self: ActorRef;
  readonly parent: ActorRef;
  /** Queues `msg` for `to`. False when the receiver's mailbox is full (the message is dropped). */
  send<M extends Message>(to: ActorRef, msg: M): boolean;
  /** Delivers `msg` to this actor after `ms` milliseconds of its scheduler's clock. */
  after<M extends Message>(ms: number, msg: M): TimerId;
  cancel(timer: TimerId): void;
  /** Milliseconds since the Unix epoch, on the scheduler's clock (virtual under simulation). */
  now(): number;
  /**
   * Starts an asynchronous operation; its outcome arrives later as a message whose type is
   * `replyTag`: `{ type: replyTag, ok: true, value }` or `{ type: replyTag, ok: false, error }`.
   */
  io<O extends IoOp>(op: O, replyTag: string): void;
  /** Starts a child of this actor; its `$started` and `$exit` come back to this actor. */
  spawn(spec: ActorSpec): ActorRef;
  /** Asks an actor to stop (`killed` ends it at once). `ctx.stop(ctx.self)` ends this actor. */
  stop(ref: ActorRef, reason?: ExitReason): void;
  /** Reports a start that returned 'later' as complete: the parent now hears `$started`. */
  ready(): void;
  /** A float in [0, 1): seeded under simulation. */
  random(): number;
  /** A fresh nanoid: seeded under simulation. */
  newId(): string;
  log(level: LogLevel, text: string, fields?: LogFields): void;
}
