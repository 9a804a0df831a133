/*
 * actor.ts — what an actor is, how it is named and how it ends.
 *
 * An actor is a state and a synchronous handler: `receive(msg, ctx)` never awaits and reaches
 * the world only through its Context (context.ts). Actors are addressed by ActorRef, plain
 * data `{ node, id }` that is the same whether the actor lives in this thread, another worker
 * thread, another process or another host; the kernel routes by `node`.
 *
 * A behaviour is the recipe for an actor, registered under (module URL, name) so that a
 * worker thread or child process can import the module and build the same actor from plain,
 * serializable data. Specs therefore never hold functions.
 *
 * The kernel talks to actors with a few reserved messages whose types start with `$`:
 * `$started` and `$exit` tell a parent about its children. Everything else is the actor's own.
 */
import { assert } from '../assert.js';
import type { Context } from './context.js';

export interface ActorRef {
  readonly node: string;
  readonly id: string;
}

export interface Message {
  readonly type: string;
}

export type ExitReason =
  | { readonly kind: 'normal' }
  | { readonly kind: 'shutdown' }
  | { readonly kind: 'killed' }
  | { readonly kind: 'crash'; readonly message: string };

export const NORMAL: ExitReason = Object.freeze({ kind: 'normal' });
export const SHUTDOWN: ExitReason = Object.freeze({ kind: 'shutdown' });
export const KILLED: ExitReason = Object.freeze({ kind: 'killed' });

export function crash(message: string): ExitReason {
  return { kind: 'crash', message };
}

/** Normal and shutdown exits are what a transient child is allowed to do without a restart. */
export function isAbnormal(reason: ExitReason): boolean {
  return reason.kind === 'crash' || reason.kind === 'killed';
}

export function describeReason(reason: ExitReason): string {
  return reason.kind === 'crash' ? reason.message : reason.kind;
}

/** Sent to a parent when its child has run `start` and is receiving messages. */
export interface Started extends Message {
  readonly type: '$started';
  readonly ref: ActorRef;
}

/** Sent to a parent when its child has ended, for whatever reason. */
export interface Exited extends Message {
  readonly type: '$exit';
  readonly ref: ActorRef;
  readonly reason: ExitReason;
}

export interface Actor<M extends Message = Message> {
  receive(msg: M, ctx: Context): void;
  /**
   * Runs once, before the first message. Throwing here is a failed start. Returning 'later'
   * defers the `$started` report until the actor calls `ctx.ready()` (a supervisor does,
   * once all its children are up), so that start order stays dependency order.
   */
  start?(ctx: Context): void | 'later';
  /**
   * Asked to stop (by its supervisor, or at shutdown). Return 'later' to keep receiving
   * messages while draining, and call `ctx.stop(ctx.self)` when done; the supervisor kills
   * the actor if it takes longer than its shutdown timeout.
   */
  stopping?(reason: ExitReason, ctx: Context): 'now' | 'later';
}

/** A behaviour reference: plain data naming a registered actor recipe. */
export interface Behaviour {
  readonly module: string;
  readonly name: string;
}

export type Placement = 'inline' | 'thread' | 'process';

export interface ActorSpec {
  /** What the actor is, as logs and lifecycle events name it ("walwriter", "ponger"). */
  readonly name: string;
  readonly behaviour: Behaviour;
  /** Plain data (msgpackr-serializable) handed to the behaviour's factory. */
  readonly args?: unknown;
  /** `inline` (default): in the spawning actor's thread. Otherwise in a new worker or process. */
  readonly placement?: Placement;
  /** A fixed id on its node instead of a generated one, so that peers can address it. */
  readonly id?: string;
  /** How many times a supervisor has restarted this child (0 for the first start). */
  readonly incarnation?: number;
}

type Factory = (args: any) => Actor<any>;

const registry = new Map<string, Factory>();

function key(b: Behaviour): string {
  return `${b.module}#${b.name}`;
}

/**
 * Registers a behaviour; call at module top level with `import.meta.url`, so that importing
 * the module in any thread or process makes the behaviour available there.
 */
export function defineBehaviour<A>(module: string, name: string, create: (args: A) => Actor<any>): Behaviour {
  const behaviour = Object.freeze({ module, name });
  const existing = registry.get(key(behaviour));
  assert(existing === undefined || existing === create, `behaviour ${name} defined twice in ${module}`);
  registry.set(key(behaviour), create);
  return behaviour;
}

export function findBehaviour(b: Behaviour): Factory | undefined {
  return registry.get(key(b));
}

export function refKey(ref: ActorRef): string {
  return `${ref.node}/${ref.id}`;
}

export function sameRef(a: ActorRef, b: ActorRef): boolean {
  return a.node === b.node && a.id === b.id;
}
