/*
 * kernel.ts — one node of the actor runtime: the cells of one thread or process.
 *
 * The kernel owns its cells (cell.ts) and routes every message: to a local mailbox through
 * its scheduler (scheduler.ts / simulator.ts), or as a frame over the link to the node that
 * hosts the receiver (transport/). It runs each actor's handlers one message at a time,
 * turns a thrown error into a crash, and tells the parent of every start and exit with the
 * `$started` / `$exit` messages supervisors are built on (supervisor.ts).
 *
 * Children placed in a worker thread or a child process are started by placement.ts; to the
 * kernel they are remote refs like any other. A node hosted that way has an `upstream` link
 * to the node that placed it: frames for nodes it does not know go up, and its lifecycle
 * events and logs travel up to the root node's listeners.
 */
import { nanoid } from 'nanoid';
import { assert } from '../assert.js';
import { DEFAULT_SHUTDOWN_MS, EXIT_REASONS_KEPT, MAILBOX_LIMIT } from '../constants.js';
import {
  crash, describeReason, findBehaviour, KILLED, refKey, SHUTDOWN,
  type Actor, type ActorRef, type ActorSpec, type ExitReason, type Exited, type Message, type Started,
} from './actor.js';
import { Cell } from './cell.js';
import { FrameKind, type Frame } from './codec.js';
import type { LogFields, LogLevel, TimerId } from './context.js';
import type { EventListener, LifecycleEvent, RuntimeEvent } from './events.js';
import { randomIds, seededIds, type IdSource } from './ids.js';
import type { IoOp } from './io.js';
import { FILE_OP_KINDS, RealFileIo } from './fileio.js';
import { acquireOffloadPool } from './offload.js';
import { PROCESS_OP_KINDS, RealShell, type ProcessRunOp } from './shell.js';
import type { Link } from './transport/link.js';
import { RealScheduler, type Envelope, type Scheduler } from './scheduler.js';

export interface KernelOptions {
  /** The node's name; must be unique among connected nodes. Generated when absent. */
  readonly id?: string;
  /** Defaults to a new RealScheduler; pass a SimScheduler to run under simulation. */
  readonly scheduler?: Scheduler;
  readonly onEvent?: EventListener;
}

/** What placement.ts provides to the kernel; absent under simulation. */
export interface Placements {
  place(spec: ActorSpec, parent: ActorRef): ActorRef;
  /** True if `ref` is the root of a host placed by this node (stop or kill went to the host). */
  stopHosted(ref: ActorRef, reason: ExitReason): boolean;
  rootExited(ref: ActorRef): void;
  describe(ref: ActorRef): PlacementInfo | undefined;
  closeAll(): Promise<void>;
}

export interface PlacementInfo {
  readonly placement: 'thread' | 'process';
  readonly node: string;
  readonly pid?: number;
  readonly threadId?: number;
}

export interface Inbox {
  readonly ref: ActorRef;
  next<M extends Message = Message>(timeoutMs: number): Promise<M>;
  /** The oldest message not yet taken, if any (for simulations, which run synchronously). */
  take<M extends Message = Message>(): M | undefined;
  close(): void;
}

export type PlacementFactory = (kernel: Kernel) => Placements;

let placementFactory: PlacementFactory | null = null;

/** Installed by placement.ts when imported; keeps worker and socket code out of simulations. */
export function installPlacements(factory: PlacementFactory): void {
  placementFactory = factory;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

const ROOT_ID = '$root';

export class Kernel {
  readonly id: string;
  readonly scheduler: Scheduler;
  /** The link to the node that placed this one, for hosted nodes. */
  upstream: Link | null = null;
  private readonly cells = new Map<string, Cell>();
  private readonly routes = new Map<string, Link>();
  private readonly links = new Set<Link>();
  private readonly listeners = new Set<EventListener>();
  private readonly ids: IdSource;
  private readonly root: Cell;
  private readonly exitWaiters = new Map<string, ((reason: ExitReason) => void)[]>();
  private readonly startWaiters = new Map<string, (() => void)[]>();
  private readonly started = new Set<string>();
  private readonly exitReasons = new Map<string, ExitReason>();
  private readonly closers: (() => Promise<void> | void)[] = [];
  private placements: Placements | null = null;
  private seq = 0;
  private timerSeq = 0;
  private shuttingDown: Promise<void> | null = null;

  constructor(options: KernelOptions = {}) {
    this.scheduler = options.scheduler ?? new RealScheduler();
    this.ids = this.scheduler.simulated ? seededIds(() => this.scheduler.random()) : randomIds();
    this.id = options.id ?? `node-${this.scheduler.simulated ? this.ids().slice(0, 8) : nanoid(8)}`;
    if (options.onEvent !== undefined) this.listeners.add(options.onEvent);
    this.root = new Cell(this, { node: this.id, id: ROOT_ID }, { node: this.id, id: ROOT_ID }, 'kernel', 0);
    this.root.actor = { receive: (msg) => this.rootReceive(msg) };
    this.cells.set(ROOT_ID, this.root);
    if (this.scheduler instanceof RealScheduler) {
      const pool = acquireOffloadPool();
      this.scheduler.registerIo('offload', pool.run);
      this.onShutdown(pool.release);
      const files = new RealFileIo();
      for (const kind of FILE_OP_KINDS) {
        this.scheduler.registerIo(kind, (op) => files.runAsync(op));
      }
      this.onShutdown(() => files.close());
      const shell = new RealShell();
      for (const kind of PROCESS_OP_KINDS) this.scheduler.registerIo(kind, (op) => shell.run(op as ProcessRunOp));
      this.onShutdown(() => shell.close());
    }
  }

  // ---- the outside world's API ----------------------------------------------------------

  /** Starts a top-level actor (its parent is the node itself). */
  spawn(spec: ActorSpec): ActorRef {
    return this.spawnChild(this.root, spec);
  }

  send<M extends Message>(to: ActorRef, msg: M): boolean {
    return this.deliver(this.root.key, to, msg);
  }

  stop(ref: ActorRef, reason: ExitReason = SHUTDOWN): void {
    this.stopFrom(this.root, ref, reason);
  }

  /** Sends `build(replyTo)` to `to` and resolves with the first message sent to replyTo. */
  ask<R extends Message = Message>(to: ActorRef, build: (replyTo: ActorRef) => Message, timeoutMs: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const actor: Actor = {
        start: (ctx) => {
          ctx.after(timeoutMs, { type: '$askTimeout' });
          if (!ctx.send(to, build(ctx.self))) {
            reject(new Error(`ask: ${refKey(to)} is unreachable or its mailbox is full`));
            ctx.stop(ctx.self);
          }
        },
        receive: (msg, ctx) => {
          if (msg.type === '$askTimeout') reject(new Error(`ask: no reply from ${refKey(to)} within ${timeoutMs} ms`));
          else resolve(msg as R);
          ctx.stop(ctx.self);
        },
      };
      this.spawnInternal('ask', actor);
    });
  }

  /**
   * A mailbox the outside world can read: `ref` is an address actors can send to, and
   * `next()` resolves with the next message that arrives (tests, the bench, the CLI).
   */
  inbox(name = 'inbox'): Inbox {
    const arrived: Message[] = [];
    const waiting: { resolve: (m: Message) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
    const ref = this.spawnInternal(name, {
      receive: (msg) => {
        const waiter = waiting.shift();
        if (waiter === undefined) arrived.push(msg);
        else {
          clearTimeout(waiter.timer);
          waiter.resolve(msg);
        }
      },
    });
    return {
      ref,
      next: <M extends Message>(timeoutMs: number) => {
        const ready = arrived.shift();
        if (ready !== undefined) return Promise.resolve(ready as M);
        return new Promise<M>((resolve, reject) => {
          const timer = setTimeout(() => {
            waiting.splice(waiting.findIndex((w) => w.timer === timer), 1);
            reject(new Error(`${name}: no message within ${timeoutMs} ms`));
          }, timeoutMs);
          waiting.push({ resolve: resolve as (m: Message) => void, reject, timer });
        });
      },
      take: <M extends Message>() => arrived.shift() as M | undefined,
      close: () => {
        // Whoever still waits hears that nothing more will come, and no timer outlives the inbox.
        for (const waiter of waiting.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`${name}: closed`));
        }
        this.stop(ref, KILLED);
      },
    };
  }

  /** Resolves when a top-level actor has reported `$started` (a supervisor: all its children). */
  whenStarted(ref: ActorRef): Promise<void> {
    const key = refKey(ref);
    if (this.started.has(key)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.startWaiters.get(key) ?? [];
      list.push(resolve);
      this.startWaiters.set(key, list);
    });
  }

  /** Resolves when a top-level actor has exited, with its reason. */
  whenExited(ref: ActorRef): Promise<ExitReason> {
    const key = refKey(ref);
    const known = this.exitReasons.get(key);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const list = this.exitWaiters.get(key) ?? [];
      list.push(resolve);
      this.exitWaiters.set(key, list);
    });
  }

  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Where a placed actor runs (its thread id or process id), for tests and tools. */
  placementOf(ref: ActorRef): PlacementInfo | undefined {
    return this.placements?.describe(ref);
  }

  isAlive(ref: ActorRef): boolean {
    return ref.node === this.id && this.cells.get(ref.id)?.state !== undefined && this.cells.get(ref.id)?.state !== 'dead';
  }

  /** Registers cleanup to run at shutdown (listeners, pools, links). */
  onShutdown(closer: () => Promise<void> | void): void {
    this.closers.push(closer);
  }

  /**
   * Stops every top-level actor in reverse start order, each given DEFAULT_SHUTDOWN_MS
   * before it is killed, then closes placements, links and pools. Real scheduler only.
   */
  shutdown(): Promise<void> {
    this.shuttingDown ??= this.shutdownNow();
    return this.shuttingDown;
  }

  private async shutdownNow(): Promise<void> {
    const tops = [...this.root.children.values()].reverse();
    for (const ref of tops) await this.stopAndWait(ref, DEFAULT_SHUTDOWN_MS);
    await this.placements?.closeAll();
    for (const cell of [...this.cells.values()]) if (cell !== this.root) this.terminate(cell, KILLED);
    for (const link of [...this.links]) link.close('node is shutting down');
    for (const closer of this.closers.reverse()) await closer();
  }

  private async stopAndWait(ref: ActorRef, timeoutMs: number): Promise<void> {
    const exited = this.whenExited(ref);
    this.stop(ref, SHUTDOWN);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), timeoutMs); });
    const outcome = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.stop(ref, KILLED);
      await exited;
    }
  }

  // ---- what contexts call ---------------------------------------------------------------

  spawnChild(parent: Cell, spec: ActorSpec): ActorRef {
    if (spec.placement !== undefined && spec.placement !== 'inline') {
      if (this.scheduler.simulated) throw new Error(`placement "${spec.placement}" is not available under simulation; use "inline"`);
      const ref = this.placementsOrFail().place(spec, parent.ref);
      parent.children.set(refKey(ref), ref);
      return ref;
    }
    const cell = this.createCell(spec, parent.ref, spec.id);
    parent.children.set(cell.key, cell.ref);
    this.startCell(cell, spec);
    return cell.ref;
  }

  /** The root actor of a hosted node: its parent lives on the node that placed this one. */
  spawnHostedRoot(spec: ActorSpec, id: string, parent: ActorRef): ActorRef {
    const cell = this.createCell(spec, parent, id);
    this.startCell(cell, spec);
    return cell.ref;
  }

  deliver(from: string, to: ActorRef, msg: Message): boolean {
    if (to.node !== this.id) return this.forward([FrameKind.Deliver, to.node, to.id, from, msg]);
    const cell = this.cells.get(to.id);
    if (cell === undefined || cell.state === 'dead') return false;
    if (cell.queued >= MAILBOX_LIMIT) {
      this.kernelLog('warning', `mailbox of ${cell.name} (${cell.key}) is full at ${MAILBOX_LIMIT} messages; dropped a "${msg.type}" message`);
      return false;
    }
    this.enqueue(cell, { from, kind: 'message', msg });
    return true;
  }

  startTimer(cell: Cell, ms: number, msg: Message): TimerId {
    assert(Number.isFinite(ms) && ms >= 0, `timer delay must be a finite non-negative number, got ${ms}`);
    const id = ++this.timerSeq;
    const handle = this.scheduler.setTimer(ms, `${cell.key} ${msg.type}`, () => {
      if (!cell.timers.delete(id) || cell.state === 'dead') return;
      this.enqueue(cell, { from: 'timer', kind: 'message', msg });
    });
    cell.timers.set(id, handle);
    return id;
  }

  cancelTimer(cell: Cell, timer: TimerId): void {
    const handle = cell.timers.get(timer);
    if (handle === undefined) return;
    cell.timers.delete(timer);
    this.scheduler.clearTimer(handle);
  }

  startIo(cell: Cell, op: IoOp, replyTag: string): void {
    this.scheduler.runIo(op, `${cell.key} ${op.kind}`, (outcome) => {
      if (cell.state === 'dead') return;
      this.enqueue(cell, { from: 'io', kind: 'message', msg: { type: replyTag, ...outcome } });
    });
  }

  stopFrom(from: Cell, ref: ActorRef, reason: ExitReason = SHUTDOWN): void {
    if (ref.node === from.ref.node && ref.id === from.ref.id) {
      from.pendingExit ??= reason;
      return;
    }
    if (ref.node !== this.id) {
      if (this.placements?.stopHosted(ref, reason)) return;
      this.forward([FrameKind.Stop, ref.node, ref.id, from.key, reason]);
      return;
    }
    const target = this.cells.get(ref.id);
    if (target === undefined || target === this.root) return;
    if (reason.kind === 'killed') this.terminate(target, KILLED);
    else this.enqueue(target, { from: from.key, kind: 'stop', msg: { type: '$stop', reason } as Message });
  }

  newId(): string {
    return this.ids();
  }

  logFrom(cell: Cell, level: LogLevel, text: string, fields?: LogFields): void {
    const record: RuntimeEvent = fields === undefined
      ? { kind: 'log', at: this.scheduler.now(), node: this.id, ref: cell.ref, name: cell.name, level, text }
      : { kind: 'log', at: this.scheduler.now(), node: this.id, ref: cell.ref, name: cell.name, level, text, fields };
    this.emit(record);
  }

  kernelLog(level: LogLevel, text: string, fields?: LogFields): void {
    this.logFrom(this.root, level, text, fields);
  }

  // ---- what schedulers call -------------------------------------------------------------

  dispatch(cell: Cell, env: Envelope): void {
    cell.queued--;
    const actor = cell.actor;
    if (cell.state === 'dead' || actor === null) return;
    try {
      if (env.kind === 'stop') this.handleStop(cell, actor, (env.msg as unknown as { reason: ExitReason }).reason);
      else actor.receive(env.msg, cell.ctx);
    } catch (err) {
      this.terminate(cell, crash(errorText(err)));
      return;
    }
    if (cell.pendingExit !== null && !cell.isDead()) this.terminate(cell, cell.pendingExit);
  }

  // ---- what links call ------------------------------------------------------------------

  attachLink(link: Link, upstream: boolean): void {
    this.links.add(link);
    if (link.peer !== null) this.routes.set(link.peer, link);
    if (upstream) this.upstream = link;
  }

  /**
   * A TCP peer said HELLO: route its node over the link, unless that name is this node's own
   * or already reachable another way (then the newcomer is refused, never the live route).
   */
  adoptPeer(link: Link, node: string): boolean {
    const existing = this.routes.get(node);
    if (node === this.id || (existing !== undefined && existing !== link && !existing.closed)) {
      link.close(`node "${node}" is already connected here`);
      return false;
    }
    this.attachLink(link, false);
    this.routeLearnt(link, node);
    return true;
  }

  /** A node is reachable over `link`; announce the route up the tree. First route wins. */
  routeLearnt(link: Link, node: string): void {
    const existing = this.routes.get(node);
    if (node === this.id || (existing !== undefined && existing !== link && !existing.closed)) {
      this.kernelLog('warning', `ignored a route to node "${node}" from ${link.label}: that node is already reachable`);
      return;
    }
    this.routes.set(node, link);
    if (this.upstream !== null && this.upstream !== link) this.upstream.send([FrameKind.Route, node]);
  }

  linkFrame(link: Link, frame: Frame): void {
    switch (frame[0]) {
      case FrameKind.Deliver:
        if (frame[1] === this.id) this.deliver(frame[3], { node: frame[1], id: frame[2] }, frame[4]);
        else this.forward(frame, link);
        return;
      case FrameKind.Signal:
        if (frame[1] !== this.id) {
          this.forward(frame, link);
          return;
        }
        // Only a child's own node tells its parent that it started or ended.
        if (link.peer === null || !frame[3].startsWith(`${link.peer}/`)) {
          link.close(`${link.label} sent a ${frame[4].type} on behalf of ${frame[3]}, which is not on that node`);
          return;
        }
        this.remoteSignal(link, { node: frame[1], id: frame[2] }, frame[3], frame[4]);
        return;
      case FrameKind.Stop: {
        if (frame[1] !== this.id) {
          this.forward(frame, link);
          return;
        }
        const target = this.cells.get(frame[2]);
        if (target === undefined || target === this.root) return;
        if (frame[4].kind === 'killed') this.terminate(target, KILLED);
        else this.enqueue(target, { from: frame[3], kind: 'stop', msg: { type: '$stop', reason: frame[4] } as Message });
        return;
      }
      case FrameKind.Event:
        this.emit(frame[1]);
        return;
      case FrameKind.Route:
        this.routeLearnt(link, frame[1]);
        return;
      case FrameKind.Control:
      case FrameKind.Hello:
        link.close(`unexpected ${frame[0] === FrameKind.Hello ? 'HELLO' : 'CONTROL'} frame`);
        return;
    }
  }

  private remoteSignal(link: Link, to: ActorRef, from: string, msg: Message): void {
    const cell = this.cells.get(to.id);
    if (cell === undefined || cell.state === 'dead') return;
    if (cell.queued >= MAILBOX_LIMIT) {
      link.close(`${link.label} flooded ${cell.name} (${cell.key}) past its mailbox limit of ${MAILBOX_LIMIT}`);
      return;
    }
    const about = refKey((msg as Exited | Started).ref);
    if (about !== from) {
      link.close(`${link.label} sent a ${msg.type} about ${about} on behalf of ${from}`);
      return;
    }
    if (msg.type === '$exit') this.placements?.rootExited((msg as Exited).ref);
    this.signal(to, from, msg);
  }

  /** Forgets a link's routes; logs why it closed unless its owner reports that itself. */
  linkClosed(link: Link, reason: string, quiet?: 'quiet'): void {
    this.links.delete(link);
    for (const [node, via] of this.routes) if (via === link) this.routes.delete(node);
    if (this.upstream === link) this.upstream = null;
    if (this.shuttingDown === null && quiet === undefined) this.kernelLog('warning', `connection to ${link.label} closed: ${reason}`);
  }

  /** A placed host ended without reporting its root's exit (killed, crashed, lost). */
  hostLost(root: ActorRef, parent: ActorRef, name: string, reason: ExitReason): void {
    this.emit({ kind: reason.kind === 'crash' ? 'crashed' : 'stopped', at: this.scheduler.now(), node: root.node, ref: root, name, incarnation: 0, reason });
    this.signal(parent, refKey(root), { type: '$exit', ref: root, reason } satisfies Exited);
  }

  /** Emits a lifecycle event or log record here and, from a hosted node, up the tree. */
  emit(event: RuntimeEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        process.emitWarning(`walship event listener threw: ${errorText(err)}`);
      }
    }
    if (this.upstream !== null && !this.upstream.closed) this.upstream.send([FrameKind.Event, event]);
  }

  // ---- internals ------------------------------------------------------------------------

  private placementsOrFail(): Placements {
    if (this.placements === null) {
      if (placementFactory === null) throw new Error('thread and process placements need src/runtime/placement.js to be imported');
      this.placements = placementFactory(this);
    }
    return this.placements;
  }

  private createCell(spec: ActorSpec, parent: ActorRef, fixedId: string | undefined): Cell {
    const id = fixedId ?? `${spec.name}.${++this.seq}`;
    if (this.cells.has(id)) throw new Error(`actor id "${id}" is already taken on node ${this.id}`);
    const cell = new Cell(this, { node: this.id, id }, parent, spec.name, spec.incarnation ?? 0);
    this.cells.set(id, cell);
    return cell;
  }

  private spawnInternal(name: string, actor: Actor): ActorRef {
    const cell = new Cell(this, { node: this.id, id: `$${name}.${++this.seq}` }, this.root.ref, name, 0);
    this.cells.set(cell.ref.id, cell);
    this.initCell(cell, () => actor, undefined);
    return cell.ref;
  }

  private startCell(cell: Cell, spec: ActorSpec): void {
    const factory = findBehaviour(spec.behaviour);
    if (factory !== undefined) {
      this.initCell(cell, factory, spec.args);
      return;
    }
    const what = `behaviour "${spec.behaviour.name}" of ${spec.behaviour.module}`;
    if (this.scheduler.simulated) {
      this.terminate(cell, crash(`${what} is not registered; import its module before the simulation runs`));
      return;
    }
    cell.state = 'loading';
    import(spec.behaviour.module).then(
      () => {
        if (cell.state === 'dead') return;
        const loaded = findBehaviour(spec.behaviour);
        if (loaded === undefined) {
          this.terminate(cell, crash(`${what} is not defined by that module`));
          return;
        }
        cell.state = 'running';
        const deferred = cell.deferred;
        cell.deferred = [];
        this.initCell(cell, loaded, spec.args);
        if (!cell.isDead()) for (const env of deferred) this.scheduler.enqueue(cell, env);
      },
      (err: unknown) => this.terminate(cell, crash(`cannot load ${what}: ${errorText(err)}`)),
    );
  }

  private initCell(cell: Cell, factory: (args: any) => Actor, args: unknown): void {
    try {
      const actor = factory(args);
      cell.actor = actor;
      cell.starting = actor.start?.(cell.ctx) === 'later';
    } catch (err) {
      this.terminate(cell, crash(`failed to start: ${errorText(err)}`));
      return;
    }
    if (!cell.starting && !cell.isDead()) this.reportStarted(cell);
    if (cell.pendingExit !== null && !cell.isDead()) this.terminate(cell, cell.pendingExit);
  }

  ready(cell: Cell): void {
    if (!cell.starting || cell.isDead()) return;
    cell.starting = false;
    this.reportStarted(cell);
  }

  private reportStarted(cell: Cell): void {
    this.lifecycle(cell, cell.incarnation > 0 ? 'restarted' : 'started');
    this.signal(cell.parent, cell.key, { type: '$started', ref: cell.ref });
  }

  private enqueue(cell: Cell, env: Envelope): void {
    cell.queued++;
    if (cell.state === 'loading') cell.deferred.push(env);
    else this.scheduler.enqueue(cell, env);
  }

  private handleStop(cell: Cell, actor: Actor, reason: ExitReason): void {
    if (reason.kind === 'killed') {
      this.terminate(cell, KILLED);
      return;
    }
    if (cell.state === 'stopping') return;
    const answer = actor.stopping?.(reason, cell.ctx) ?? 'now';
    if (answer === 'later' && cell.pendingExit === null) cell.state = 'stopping';
    else cell.pendingExit ??= reason;
  }

  /** Ends a cell: its timers, mailbox and children go with it; its parent hears `$exit`. */
  private terminate(cell: Cell, reason: ExitReason): void {
    if (cell.state === 'dead') return;
    cell.state = 'dead';
    for (const handle of cell.timers.values()) this.scheduler.clearTimer(handle);
    cell.timers.clear();
    cell.mailbox.clear();
    cell.deferred = [];
    this.cells.delete(cell.ref.id);
    if (cell.parent.node === this.id) this.cells.get(cell.parent.id)?.children.delete(cell.key);
    for (const child of [...cell.children.values()]) this.stopFrom(cell, child, KILLED);
    cell.children.clear();
    this.lifecycle(cell, reason.kind === 'crash' ? 'crashed' : 'stopped', reason);
    this.signal(cell.parent, cell.key, { type: '$exit', ref: cell.ref, reason } satisfies Exited);
  }

  private signal<M extends Message>(to: ActorRef, from: string, msg: M): void {
    if (to.node !== this.id) {
      this.forward([FrameKind.Signal, to.node, to.id, from, msg]);
      return;
    }
    const cell = this.cells.get(to.id);
    if (cell === undefined || cell.state === 'dead') return;
    if (msg.type === '$exit') cell.children.delete(refKey((msg as unknown as Exited).ref));
    this.enqueue(cell, { from, kind: 'message', msg });
  }

  /** Sends a frame toward its node; never back over the link it arrived on (no loops). */
  private forward(frame: Frame, arrivedOn?: Link): boolean {
    const node = frame[1] as string;
    const link = this.routes.get(node) ?? this.upstream;
    if (link === null || link === undefined || link.closed || link === arrivedOn) return false;
    return link.send(frame);
  }

  private rootReceive(msg: Message): void {
    const ref = (msg as Partial<Started>).ref;
    if (ref === undefined || typeof ref.node !== 'string' || typeof ref.id !== 'string') return;
    if (msg.type === '$started') {
      const key = refKey(ref);
      this.started.add(key);
      for (const resolve of this.startWaiters.get(key) ?? []) resolve();
      this.startWaiters.delete(key);
      return;
    }
    if (msg.type !== '$exit') return;
    const { reason } = msg as Exited;
    const key = refKey(ref);
    this.started.delete(key);
    if (!ref.id.startsWith('$')) {
      this.exitReasons.set(key, reason);
      // Remembered so that a late whenExited() still answers; the oldest are forgotten.
      if (this.exitReasons.size > EXIT_REASONS_KEPT) this.exitReasons.delete(this.exitReasons.keys().next().value!);
    }
    for (const resolve of this.exitWaiters.get(key) ?? []) resolve(reason);
    this.exitWaiters.delete(key);
    if (reason.kind === 'crash') this.kernelLog('error', `top-level actor ${key} crashed: ${describeReason(reason)}`);
  }

  private lifecycle(cell: Cell, kind: LifecycleEvent['kind'], reason?: ExitReason): void {
    if (cell === this.root || cell.ref.id.startsWith('$')) return;
    const base = { kind, at: this.scheduler.now(), node: this.id, ref: cell.ref, name: cell.name, incarnation: cell.incarnation };
    this.emit(reason === undefined ? base : { ...base, reason });
  }
}
