/*
 * postmaster.ts — one server: starts its processes in order, accepts sessions, shuts down.
 *
 * Start: shmem (the state), then startup, whose `$started` means recovery is complete; then
 * the configuration files are read, the walwriter starts where WAL ends, then the
 * checkpointer; then "database system is ready to accept connections". Each `Connect`
 * starts a backend. A crash of any of these (a backend included: it may have left shared
 * state half-changed) crashes the postmaster, and its supervisor restarts the server, which
 * goes through crash recovery, as PostgreSQL's postmaster reinitializes after a backend
 * crash. Shutdown (`stop`, as pg_ctl stop -m fast/smart): backends end (open transactions
 * roll back), the checkpointer writes the shutdown checkpoint, then the rest stop.
 * `immediate` is a kill: no checkpoint, the next start recovers.
 */
import { PgError, SqlState } from '../errors.js';
import { reportingFatal } from './fatal.js';
import { ServerConfig } from '../config/store.js';
import { defineBehaviour, describeReason, KILLED, NORMAL, refKey, SHUTDOWN, sameRef, type Actor, type ActorRef, type ExitReason, type Exited, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import type { IoResult } from '../runtime/io.js';
import { BACKEND, type AlterSystem, type ConfigReloaded, type ReloadConf, type ServerCommandDone } from './backend.js';
import { parseConfFile, renderAutoConf } from '../config/conffile.js';
import { formatValue, requireSetting } from '../config/settings.js';
import { commandOnly, type QueryResult } from '../sql/result.js';
import { CHECKPOINTER, type CheckpointerSettings } from './checkpointer.js';
import { SHMEM, type AttachWalWriter, type WalEnd, type WalEndRequest } from './shmem.js';
import { STARTUP } from './startup.js';
import { WALWRITER, type AttachCheckpointer, type WalWriterSettings } from './walwriter.js';

export interface PostmasterArgs {
  /** The server's name, prefixed to its processes' names in logs ("primary/walwriter"). */
  readonly name: string;
  readonly dataDir: string;
  readonly initdb: boolean;
  readonly walSegmentSize: number;
  /** Settings given at start (they win over the files, like `postgres -c`). */
  readonly options: Readonly<Record<string, string>>;
  /** Written as postgresql.conf by initdb. */
  readonly postgresqlConf: string;
}

export interface Connect extends Message {
  readonly type: 'Connect';
  readonly settings: Readonly<Record<string, string>>;
  readonly database?: string;
  readonly replyTo: ActorRef;
}

export type Connected =
  | (Message & { readonly type: 'Connected'; readonly ok: true; readonly backend: ActorRef })
  | (Message & { readonly type: 'Connected'; readonly ok: false; readonly error: { code: string; message: string } });

type Phase = 'starting' | 'running' | 'smart' | 'stopping';

/** pg_ctl stop -m smart: refuse new sessions, wait for the open ones to end, then answer. */
export interface SmartShutdown extends Message {
  readonly type: 'SmartShutdown';
  readonly replyTo: ActorRef;
}

class Postmaster implements Actor {
  private phase: Phase = 'starting';
  private shmem: ActorRef | null = null;
  private startup: ActorRef | null = null;
  private walwriter: ActorRef | null = null;
  private checkpointer: ActorRef | null = null;
  /** Running backends by ref key. */
  private readonly backends = new Map<string, ActorRef>();
  private confFiles: { path: string; text: string }[] = [];
  private config: ServerConfig | null = null;
  private sessions = 0;
  private stopReason: ExitReason = SHUTDOWN;

  constructor(private readonly args: PostmasterArgs) {}

  start(ctx: Context): 'later' {
    this.shmem = ctx.spawn({ name: this.role('shmem'), behaviour: SHMEM });
    this.startup = ctx.spawn({
      name: this.role('startup'), behaviour: STARTUP,
      args: { dataDir: this.args.dataDir, shmem: this.shmem, initdb: this.args.initdb, walSegmentSize: this.args.walSegmentSize, postgresqlConf: this.args.postgresqlConf },
    });
    return 'later';
  }

  stopping(reason: ExitReason, ctx: Context): 'later' {
    this.phase = 'stopping';
    this.stopReason = reason;
    ctx.log('info', 'received fast shutdown request');
    for (const backend of this.backends.values()) ctx.stop(backend);
    this.backends.clear();
    if (this.checkpointer !== null) ctx.stop(this.checkpointer);
    else this.finishStop(ctx);
    return 'later';
  }

  receive(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case '$started':
        return this.onStarted((msg as Exited).ref, ctx);
      case '$exit':
        return this.onExit(msg as Exited, ctx);
      case 'ConfRead':
        return this.onConfRead(msg as IoResult, ctx);
      case 'WalEnd':
        return this.onWalEnd(msg as WalEnd, ctx);
      case 'Connect':
        return this.connect(msg as Connect, ctx);
      case 'AlterSystem':
        return this.alterSystem(msg as AlterSystem, ctx);
      case 'SmartShutdown':
        if (this.phase === 'running') {
          this.phase = 'smart';
          ctx.log('info', 'received smart shutdown request');
        }
        this.smartWaiters.push((msg as SmartShutdown).replyTo);
        return this.answerSmart(ctx);
      case 'AutoConfWritten': {
        const done = this.pendingCommands.shift();
        const io = msg as IoResult;
        if (done === undefined) return;
        ctx.send(done.replyTo, io.ok
          ? { type: 'ServerCommandDone', tag: done.tag, ok: true, result: commandOnly('ALTER SYSTEM') } satisfies ServerCommandDone
          : { type: 'ServerCommandDone', tag: done.tag, ok: false, error: { code: SqlState.InternalError, message: `could not write "postgresql.auto.conf": ${io.error.message}` } } satisfies ServerCommandDone);
        return;
      }
      case 'ReloadConf': {
        const m = msg as ReloadConf;
        this.reloadWaiters.push({ replyTo: m.replyTo, tag: m.tag });
        if (this.reloadWaiters.length === 1) {
          ctx.log('info', 'received SIGHUP, reloading configuration files');
          this.reloadFiles = [];
          ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/postgresql.conf` }, 'ReloadRead');
        }
        return;
      }
      case 'ReloadRead':
        return this.onReloadRead(msg as IoResult, ctx);
    }
  }

  private readonly pendingCommands: { replyTo: ActorRef; tag: number }[] = [];
  private readonly smartWaiters: ActorRef[] = [];

  private answerSmart(ctx: Context): void {
    if (this.backends.size > 0) return;
    for (const w of this.smartWaiters.splice(0)) ctx.send(w, { type: 'SmartShutdownReady' });
  }
  private readonly reloadWaiters: { replyTo: ActorRef; tag: number }[] = [];
  private reloadFiles: { path: string; text: string }[] = [];

  /** ALTER SYSTEM: rewrites postgresql.auto.conf; the running server changes only at reload. */
  private alterSystem(msg: AlterSystem, ctx: Context): void {
    const autoConf = this.confFiles[1];
    const entries = new Map<string, string>();
    for (const e of parseConfFile(autoConf?.text ?? '', autoConf?.path ?? 'postgresql.auto.conf')) entries.set(e.name, e.value);
    if (msg.value === null) entries.delete(msg.name);
    else entries.set(msg.name, msg.value);
    const text = renderAutoConf(entries);
    this.confFiles[1] = { path: `${this.args.dataDir}/postgresql.auto.conf`, text };
    this.pendingCommands.push({ replyTo: msg.replyTo, tag: msg.tag });
    ctx.io({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/postgresql.auto.conf`, bytes: new TextEncoder().encode(text) }, 'AutoConfWritten');
  }

  /**
   * One step of reading postgresql.conf then postgresql.auto.conf into `files` (a missing
   * file reads as empty); true once both are in.
   */
  private readConfStep(io: IoResult, files: { path: string; text: string }[], tag: string, ctx: Context): boolean {
    const text = io.ok && io.value !== null ? new TextDecoder().decode(io.value as Uint8Array) : '';
    files.push({ path: `${this.args.dataDir}/${files.length === 0 ? 'postgresql.conf' : 'postgresql.auto.conf'}`, text });
    if (files.length === 2) return true;
    ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/postgresql.auto.conf` }, tag);
    return false;
  }

  private onReloadRead(io: IoResult, ctx: Context): void {
    if (!this.readConfStep(io, this.reloadFiles, 'ReloadRead', ctx)) return;
    const report = this.config!.load(this.reloadFiles);
    this.confFiles = this.reloadFiles;
    for (const name of report.changed) ctx.log('info', `parameter "${name}" changed to "${formatValue(requireSetting(name), this.config!.get(name))}"`);
    for (const problem of report.problems) ctx.log('info', problem);
    if (report.problems.length > 0) ctx.log('info', `configuration file "${this.args.dataDir}/postgresql.conf" contains errors; unaffected changes were applied`);
    for (const backend of this.backends.values()) ctx.send(backend, { type: 'ConfigReloaded', confFiles: this.confFiles } satisfies ConfigReloaded);
    if (this.walwriter !== null) {
      ctx.send(this.walwriter, {
        type: 'WalWriterSettings',
        walWriterDelayMs: this.config!.get('wal_writer_delay') as number,
        walWriterFlushAfterBytes: this.config!.get('wal_writer_flush_after') as number,
        maxWalSizeBytes: (this.config!.get('max_wal_size') as number) * 1024 * 1024,
      } satisfies WalWriterSettings);
    }
    if (this.checkpointer !== null) {
      ctx.send(this.checkpointer, { type: 'CheckpointerSettings', checkpointTimeoutMs: (this.config!.get('checkpoint_timeout') as number) * 1000 } satisfies CheckpointerSettings);
    }
    const result: QueryResult = { command: 'SELECT', rowCount: 1, columns: [{ name: 'pg_reload_conf', type: 'bool' }], rows: [{ pg_reload_conf: true }] };
    for (const w of this.reloadWaiters.splice(0)) ctx.send(w.replyTo, { type: 'ServerCommandDone', tag: w.tag, ok: true, result } satisfies ServerCommandDone);
  }

  private role(role: string): string {
    return `${this.args.name}/${role}`;
  }

  private onStarted(ref: ActorRef, ctx: Context): void {
    if (this.checkpointer !== null && this.walwriter !== null && sameRef(ref, this.checkpointer)) {
      ctx.send(this.walwriter, { type: 'AttachCheckpointer', checkpointer: this.checkpointer } satisfies AttachCheckpointer);
    }
    if (this.startup !== null && sameRef(ref, this.startup)) {
      ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/postgresql.conf` }, 'ConfRead');
      return;
    }
    if (this.checkpointer !== null && sameRef(ref, this.checkpointer)) {
      this.phase = 'running';
      ctx.log('info', 'database system is ready to accept connections');
      ctx.ready();
    }
  }

  private onConfRead(io: IoResult, ctx: Context): void {
    if (!this.readConfStep(io, this.confFiles, 'ConfRead', ctx)) return;
    this.config = new ServerConfig(this.args.options);
    reportingFatal(ctx, () => this.config!.load(this.confFiles)); // a bad entry is FATAL: the server does not start
    ctx.send(this.shmem!, { type: 'WalEndRequest', replyTo: ctx.self } satisfies WalEndRequest);
  }

  private onWalEnd(end: WalEnd, ctx: Context): void {
    this.walwriter = ctx.spawn({
      name: this.role('walwriter'), behaviour: WALWRITER,
      args: {
        walDir: `${this.args.dataDir}/pg_wal`, systemIdentifier: BigInt(end.systemIdentifier), timeline: end.timeline, segmentSize: end.walSegmentSize,
        insertLsn: end.endLsn, prevLsn: end.lastLsn,
        walWriterDelayMs: this.config!.get('wal_writer_delay') as number,
        walWriterFlushAfterBytes: this.config!.get('wal_writer_flush_after') as number,
        maxWalSizeBytes: (this.config!.get('max_wal_size') as number) * 1024 * 1024,
      },
    });
    ctx.send(this.shmem!, { type: 'AttachWalWriter', walwriter: this.walwriter } satisfies AttachWalWriter);
    this.checkpointer = ctx.spawn({
      name: this.role('checkpointer'), behaviour: CHECKPOINTER,
      args: { dataDir: this.args.dataDir, shmem: this.shmem!, checkpointTimeoutMs: (this.config!.get('checkpoint_timeout') as number) * 1000 },
    });
  }

  private connect(msg: Connect, ctx: Context): void {
    if (this.phase !== 'running') {
      const message = this.phase === 'starting' ? 'the database system is starting up' : 'the database system is shutting down';
      ctx.send(msg.replyTo, { type: 'Connected', ok: false, error: { code: SqlState.CannotConnectNow, message } } satisfies Connected);
      return;
    }
    const max = this.config!.get('max_connections') as number;
    if (this.backends.size >= max) {
      ctx.send(msg.replyTo, { type: 'Connected', ok: false, error: { code: SqlState.TooManyConnections, message: 'sorry, too many clients already' } } satisfies Connected);
      return;
    }
    const session = `${this.args.name}-${++this.sessions}`;
    let backend: ActorRef;
    try {
      backend = ctx.spawn({
        name: this.role('backend'), behaviour: BACKEND,
        args: { session, shmem: this.shmem!, checkpointer: this.checkpointer!, confFiles: this.confFiles, serverOptions: this.args.options, sessionSettings: msg.settings, database: msg.database ?? 'postgres' },
      });
    } catch (err) {
      const error = err instanceof PgError ? { code: err.code, message: err.message } : { code: SqlState.InternalError, message: String(err) };
      ctx.send(msg.replyTo, { type: 'Connected', ok: false, error } satisfies Connected);
      return;
    }
    this.backends.set(refKey(backend), backend);
    ctx.send(msg.replyTo, { type: 'Connected', ok: true, backend } satisfies Connected);
  }

  private onExit(exit: Exited, ctx: Context): void {
    const key = refKey(exit.ref);
    if (this.backends.delete(key)) {
      if (exit.reason.kind === 'crash' && this.phase !== 'stopping') {
        throw new Error(`server process (backend) exited abnormally: ${exit.reason.message}; terminating any other active server processes`);
      }
      if (this.phase === 'smart') this.answerSmart(ctx);
      return;
    }
    if (this.startup !== null && sameRef(exit.ref, this.startup)) {
      this.startup = null;
      if (exit.reason.kind === 'normal') return;
      throw new Error(`startup process failed: ${describeReason(exit.reason)}`);
    }
    if (this.phase === 'stopping') {
      if (this.checkpointer !== null && sameRef(exit.ref, this.checkpointer)) {
        this.checkpointer = null;
        this.finishStop(ctx);
      } else if (this.walwriter !== null && sameRef(exit.ref, this.walwriter)) {
        this.walwriter = null;
        this.finishStop(ctx);
      } else if (this.shmem !== null && sameRef(exit.ref, this.shmem)) {
        this.shmem = null;
        this.finishStop(ctx);
      }
      return;
    }
    throw new Error(`server process ${exit.ref.id} exited unexpectedly: ${describeReason(exit.reason)}`);
  }

  /** After the shutdown checkpoint: the walwriter, then shmem, then the postmaster itself. */
  private finishStop(ctx: Context): void {
    if (this.checkpointer !== null) return;
    if (this.walwriter !== null) {
      ctx.stop(this.walwriter);
      return;
    }
    if (this.shmem !== null) {
      ctx.stop(this.shmem);
      return;
    }
    ctx.log('info', 'database system is shut down');
    ctx.stop(ctx.self, this.stopReason.kind === 'killed' ? KILLED : NORMAL);
  }
}

export const POSTMASTER = defineBehaviour(import.meta.url, 'Postmaster', (args: PostmasterArgs) => new Postmaster(args));
