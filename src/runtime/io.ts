/*
 * io.ts — asynchronous operations requested by actors, completed as messages.
 *
 * An actor describes the operation as data (`{ kind, ... }`); the node's scheduler runs it:
 * the real scheduler through the handler registered for the kind, the simulator through a
 * simulated handler that decides latency and outcome from the run's seed. Either way the
 * result is a message `{ type: replyTag, ok, value | error }` queued to the requesting actor.
 * Only src/runtime registers real handlers: it is the one layer that touches the world.
 */
import type { Message } from './actor.js';

export interface IoOp {
  readonly kind: string;
}

export interface IoError {
  readonly message: string;
  readonly code?: string;
}

export type IoResult<T = unknown> =
  | (Message & { readonly ok: true; readonly value: T })
  | (Message & { readonly ok: false; readonly error: IoError });

export type RealIoHandler = (op: IoOp) => Promise<unknown>;

/** A simulated operation completes after `latencyMs` of virtual time with `outcome`. */
export interface SimIoCompletion {
  readonly latencyMs: number;
  readonly outcome: { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: IoError };
}

export type SimIoHandler = (op: IoOp, random: () => number) => SimIoCompletion;

export function ioError(err: unknown): IoError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? { message: err.message, code } : { message: err.message };
  }
  return { message: String(err) };
}
