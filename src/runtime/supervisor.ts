/*
 * supervisor.ts — supervision as data, with Erlang/OTP's semantics.
 *
 * A supervisor is an actor built from a SupervisorSpec: a strategy, a restart intensity per
 * period and an ordered list of child specs. It starts its children one at a time in list
 * order, each only after the previous one reported `$started`, and stops them in reverse order,
 * each given its shutdown timeout before it is killed. When a child exits:
 *
 *   permanent  always restarted;   transient  restarted after an abnormal exit (crash, kill);
 *   temporary  never restarted, and forgotten.
 *
 *   one_for_one   restart the child alone;
 *   one_for_all   stop every other child (reverse order), then start them all again in order;
 *   rest_for_one  stop the children after it (reverse order), restart it and those, in order.
 *
 * More than `intensity` restarts within `periodMs` means restarting is not helping: the
 * supervisor stops all its children and exits with a crash, escalating to its own parent.
 * The supervisor itself reports `$started` only once all its children have; a child that
 * fails while the supervisor first starts fails the supervisor.
 *
 * Messages it takes besides `$started` / `$exit`: StartChild (add a child at the end, e.g. one
 * backend per connection), TerminateChild, WhichChildren.
 */
import { DEFAULT_RESTART_INTENSITY, DEFAULT_RESTART_PERIOD_MS, DEFAULT_SHUTDOWN_MS } from '../constants.js';
import {
  crash, defineBehaviour, describeReason, isAbnormal, KILLED, sameRef, SHUTDOWN,
  type Actor, type ActorRef, type ActorSpec, type ExitReason, type Exited, type Message, type Placement, type Started,
} from './actor.js';
import type { Context, TimerId } from './context.js';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';
export type RestartType = 'permanent' | 'transient' | 'temporary';

export interface ChildSpec extends ActorSpec {
  /** Default `permanent`. */
  readonly restart?: RestartType;
  /** Milliseconds to stop before being killed; default DEFAULT_SHUTDOWN_MS, `infinity` for supervisors. */
  readonly shutdownMs?: number | 'infinity';
}

export interface SupervisorSpec {
  readonly strategy: Strategy;
  readonly intensity?: number;
  readonly periodMs?: number;
  readonly children: readonly ChildSpec[];
}

export interface StartChild extends Message {
  readonly type: 'StartChild';
  readonly spec: ChildSpec;
  readonly replyTo?: ActorRef;
}
export interface TerminateChild extends Message {
  readonly type: 'TerminateChild';
  readonly name: string;
}
export interface WhichChildren extends Message {
  readonly type: 'WhichChildren';
  readonly replyTo: ActorRef;
}
export interface ChildStarted extends Message {
  readonly type: 'ChildStarted';
  readonly name: string;
  readonly ref: ActorRef;
}
export interface ChildStartFailed extends Message {
  readonly type: 'ChildStartFailed';
  readonly name: string;
  readonly reason: ExitReason;
}
export interface Children extends Message {
  readonly type: 'Children';
  readonly children: readonly { readonly name: string; readonly ref: ActorRef | null; readonly restart: RestartType }[];
}

interface ShutdownTimeout extends Message {
  readonly type: '$shutdownTimeout';
  readonly ref: ActorRef;
}

type SupervisorMessage = Started | Exited | ShutdownTimeout | StartChild | TerminateChild | WhichChildren;

interface ChildRecord {
  readonly spec: ChildSpec;
  ref: ActorRef | null;
  incarnation: number;
  replyTo: ActorRef | null;
  /** Set by TerminateChild: forget the child once it has stopped. */
  removing: boolean;
  /** Added by StartChild: if its very first start fails, it is forgotten, as OTP's start_child does. */
  readonly dynamic: boolean;
  everStarted: boolean;
}

interface Operation {
  readonly op: 'start' | 'stop';
  readonly child: ChildRecord;
  readonly timer: TimerId | null;
}

type Phase = 'init' | 'running' | 'shutdown';

class Supervisor implements Actor<SupervisorMessage> {
  private readonly children: ChildRecord[];
  private readonly pendingStarts = new Set<ChildRecord>();
  private readonly pendingStops = new Set<ChildRecord>();
  private current: Operation | null = null;
  private phase: Phase = 'init';
  private exitReason: ExitReason = SHUTDOWN;
  private restarts: number[] = [];
  private readonly intensity: number;
  private readonly periodMs: number;

  constructor(private readonly spec: SupervisorSpec) {
    const names = new Set<string>();
    for (const child of spec.children) {
      if (names.has(child.name)) throw new Error(`supervisor spec names child "${child.name}" twice`);
      names.add(child.name);
    }
    this.intensity = spec.intensity ?? DEFAULT_RESTART_INTENSITY;
    this.periodMs = spec.periodMs ?? DEFAULT_RESTART_PERIOD_MS;
    this.children = spec.children.map((child) => ({
      spec: child, ref: null, incarnation: 0, replyTo: null, removing: false, dynamic: false, everStarted: false,
    }));
  }

  start(ctx: Context): 'later' {
    for (const child of this.children) this.pendingStarts.add(child);
    this.advance(ctx);
    return 'later';
  }

  stopping(reason: ExitReason, ctx: Context): 'later' {
    this.enterShutdown(reason);
    this.advance(ctx);
    return 'later';
  }

  receive(msg: SupervisorMessage, ctx: Context): void {
    switch (msg.type) {
      case '$started':
        return this.onStarted(msg.ref, ctx);
      case '$exit':
        return this.onExit(msg.ref, msg.reason, ctx);
      case '$shutdownTimeout':
        if (this.current?.op === 'stop' && this.current.child.ref !== null && sameRef(this.current.child.ref, msg.ref)) {
          ctx.log('warning', `child ${this.current.child.spec.name} did not stop within its shutdown timeout; killing it`);
          ctx.stop(msg.ref, KILLED);
        }
        return;
      case 'StartChild':
        return this.onStartChild(msg, ctx);
      case 'TerminateChild': {
        const child = this.children.find((c) => c.spec.name === msg.name);
        if (child === undefined) return;
        child.removing = true;
        this.pendingStarts.delete(child);
        if (child.ref === null) this.forget(child);
        else this.pendingStops.add(child);
        return this.advance(ctx);
      }
      case 'WhichChildren':
        ctx.send(msg.replyTo, {
          type: 'Children',
          children: this.children.map((c) => ({ name: c.spec.name, ref: c.ref, restart: c.spec.restart ?? 'permanent' })),
        } satisfies Children);
        return;
    }
  }

  private onStartChild(msg: StartChild, ctx: Context): void {
    if (this.phase === 'shutdown' || this.children.some((c) => c.spec.name === msg.spec.name)) {
      const why = this.phase === 'shutdown' ? 'supervisor is shutting down' : `a child named "${msg.spec.name}" already exists`;
      if (msg.replyTo !== undefined) ctx.send(msg.replyTo, { type: 'ChildStartFailed', name: msg.spec.name, reason: crash(why) } satisfies ChildStartFailed);
      return;
    }
    const child: ChildRecord = {
      spec: msg.spec, ref: null, incarnation: 0, replyTo: msg.replyTo ?? null, removing: false, dynamic: true, everStarted: false,
    };
    this.children.push(child);
    this.pendingStarts.add(child);
    this.advance(ctx);
  }

  private onStarted(ref: ActorRef, ctx: Context): void {
    const op = this.current;
    if (op === null || op.op !== 'start' || op.child.ref === null || !sameRef(op.child.ref, ref)) return;
    this.current = null;
    op.child.everStarted = true;
    if (op.child.replyTo !== null) {
      ctx.send(op.child.replyTo, { type: 'ChildStarted', name: op.child.spec.name, ref } satisfies ChildStarted);
      op.child.replyTo = null;
    }
    this.advance(ctx);
  }

  private onExit(ref: ActorRef, reason: ExitReason, ctx: Context): void {
    const child = this.children.find((c) => c.ref !== null && sameRef(c.ref, ref));
    if (child === undefined) return;
    child.ref = null;
    const op = this.current;
    if (op !== null && op.child === child) {
      this.current = null;
      if (op.timer !== null) ctx.cancel(op.timer);
      if (op.op === 'stop') {
        if (child.removing || (child.spec.restart ?? 'permanent') === 'temporary') this.forget(child);
        return this.advance(ctx);
      }
      // The child ended before reporting `$started`: a failed start.
      if (child.replyTo !== null) {
        ctx.send(child.replyTo, { type: 'ChildStartFailed', name: child.spec.name, reason } satisfies ChildStartFailed);
        child.replyTo = null;
      }
      if (this.phase === 'init') {
        this.enterShutdown(crash(`failed to start child ${child.spec.name}: ${describeReason(reason)}`));
        return this.advance(ctx);
      }
      if (child.dynamic && !child.everStarted) {
        this.forget(child);
        return this.advance(ctx);
      }
    }
    if (this.phase === 'shutdown') return this.advance(ctx);
    if (this.pendingStops.has(child)) {
      // Already being restarted with a sibling: its own exit is no new failure (OTP ignores it).
      this.pendingStops.delete(child);
      if ((child.spec.restart ?? 'permanent') === 'temporary') this.forget(child);
      return this.advance(ctx);
    }
    this.childExited(child, reason, ctx);
  }

  private childExited(child: ChildRecord, reason: ExitReason, ctx: Context): void {
    const restart = child.spec.restart ?? 'permanent';
    if (child.removing || restart === 'temporary' || (restart === 'transient' && !isAbnormal(reason))) {
      if (child.removing || restart === 'temporary') this.forget(child);
      return this.advance(ctx);
    }
    if (!this.restartAllowed(ctx.now())) {
      const text = `reached maximum restart intensity: more than ${this.intensity} restarts in ${this.periodMs} ms`
        + ` (last: child ${child.spec.name}: ${describeReason(reason)})`;
      ctx.log('error', text);
      this.enterShutdown(crash(text));
      return this.advance(ctx);
    }
    const index = this.children.indexOf(child);
    const affected = this.spec.strategy === 'one_for_one' ? [child]
      : this.spec.strategy === 'one_for_all' ? [...this.children]
      : this.children.slice(index);
    for (const c of affected) {
      if (c !== child && c.ref !== null) this.pendingStops.add(c);
      if (c === child || (c.ref !== null && (c.spec.restart ?? 'permanent') !== 'temporary')) {
        c.incarnation++;
        this.pendingStarts.add(c);
      }
    }
    this.advance(ctx);
  }

  /** Starts or stops the next child, one at a time; exits when shut down and empty. */
  private advance(ctx: Context): void {
    while (this.current === null) {
      if (this.phase === 'shutdown') {
        const last = this.children.findLast((c) => c.ref !== null);
        if (last === undefined) {
          ctx.stop(ctx.self, this.exitReason);
          return;
        }
        this.beginStop(last, ctx);
        return;
      }
      const stop = this.children.findLast((c) => this.pendingStops.has(c));
      if (stop !== undefined) {
        this.pendingStops.delete(stop);
        if (stop.ref !== null) this.beginStop(stop, ctx);
        continue;
      }
      const start = this.children.find((c) => this.pendingStarts.has(c));
      if (start === undefined) {
        if (this.phase === 'init') {
          this.phase = 'running';
          ctx.ready();
        }
        return;
      }
      this.pendingStarts.delete(start);
      if (start.ref === null) this.beginStart(start, ctx);
    }
  }

  private beginStart(child: ChildRecord, ctx: Context): void {
    const { restart: _restart, shutdownMs: _shutdownMs, ...spec } = child.spec;
    child.ref = ctx.spawn({ ...spec, incarnation: child.incarnation });
    this.current = { op: 'start', child, timer: null };
  }

  private beginStop(child: ChildRecord, ctx: Context): void {
    const ref = child.ref!;
    const shutdownMs = child.spec.shutdownMs ?? (child.spec.behaviour === SUPERVISOR ? 'infinity' : DEFAULT_SHUTDOWN_MS);
    ctx.stop(ref, SHUTDOWN);
    const timer = shutdownMs === 'infinity' ? null : ctx.after(shutdownMs, { type: '$shutdownTimeout', ref } satisfies ShutdownTimeout);
    this.current = { op: 'stop', child, timer };
  }

  private enterShutdown(reason: ExitReason): void {
    if (this.phase === 'shutdown') return;
    this.phase = 'shutdown';
    this.exitReason = reason;
    this.pendingStarts.clear();
    this.pendingStops.clear();
  }

  private restartAllowed(now: number): boolean {
    this.restarts = this.restarts.filter((t) => t > now - this.periodMs);
    this.restarts.push(now);
    return this.restarts.length <= this.intensity;
  }

  private forget(child: ChildRecord): void {
    const i = this.children.indexOf(child);
    if (i >= 0) this.children.splice(i, 1);
    this.pendingStarts.delete(child);
    this.pendingStops.delete(child);
  }
}

export const SUPERVISOR = defineBehaviour(import.meta.url, 'Supervisor', (spec: SupervisorSpec) => new Supervisor(spec));

/** The ActorSpec of a supervisor; use it as a child spec to nest supervisors. */
export function supervisor(name: string, spec: SupervisorSpec, options: { placement?: Placement; id?: string } = {}): ActorSpec {
  return { name, behaviour: SUPERVISOR, args: spec, ...options };
}
