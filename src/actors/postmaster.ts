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
 *
 * A server whose data directory holds standby.signal is a standby: startup replays and asks
 * for a walreceiver (primary_conninfo); the checkpointer makes restartpoints; once startup
 * reports a consistent state, "database system is ready to accept read only connections"
 * (unless hot_standby is off). Replication connections (`ReplConnect`) start walsenders, at
 * most max_wal_senders; at shutdown they go after the shutdown checkpoint, so that standbys
 * receive it. The server registers its port in the cluster's address book.
 */
import { PgError, SqlState } from '../errors.js';
import { reportingFatal } from './fatal.js';
import { ServerConfig } from '../config/store.js';
import { defineBehaviour, describeReason, KILLED, NORMAL, refKey, SHUTDOWN, sameRef, type Actor, type ActorRef, type ExitReason, type Exited, type Message } from '../runtime/actor.js';
import type { Context, TimerId } from '../runtime/context.js';
import type { IoResult } from '../runtime/io.js';
import { BACKEND, type AlterSystem, type ConfigReloaded, type ReloadConf, type ServerCommandDone } from './backend.js';
import { parseConfFile, renderAutoConf } from '../config/conffile.js';
import { formatValue, requireSetting } from '../config/settings.js';
import { commandOnly, type QueryResult } from '../sql/result.js';
import { CHECKPOINTER, type CheckpointNow, type CheckpointerPromoted, type CheckpointerSettings } from './checkpointer.js';
import { SHMEM, type AttachWalWriter, type Fence, type ShmemSettings, type WalEnd, type WalEndRequest } from './shmem.js';
import { STARTUP, type ConsistentState, type StartWalReceiver, type TimelineChanged, type WalReceiverAttached, type WalSourceSettings } from './startup.js';
import { parseHistoryFileName, type HistoryEntry } from '../wal/timeline.js';
import { checkSegmentHeader, isHeaderProblem, parseSegmentFileName, SEGMENT_HEADER_SIZE } from '../wal/segment.js';
import { WALSENDER, type WalSenderArgs } from './walsender.js';
import { WALRECEIVER, type WalReceiverArgs, type WalReceiverSettings } from './walreceiver.js';
import { DEFAULT_HBA_CONF, parseHba, type HbaRule } from '../replication/hba.js';
import type { NewestPeerTimeline, NewestPeerTimelineIs, Register, ReplConnect, ServerIdentity, Unregister } from '../replication/protocol.js';
import { WALWRITER, type AttachArchiver, type AttachCheckpointer, type WalWriterSettings } from './walwriter.js';
import type { PromoteRequest, Promoted } from './backend.js';
import { ARCHIVER, type ArchiverArgs, type ArchiverSettings } from './archiver.js';

export interface PostmasterArgs {
  /** The server's name, prefixed to its processes' names in logs ("primary/walwriter"). */
  readonly name: string;
  /** The port the server is reached at (through `directory`, the cluster's address book). */
  readonly port?: number;
  readonly directory?: ActorRef | null;
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
  | (Message & { readonly type: 'Connected'; readonly ok: false; readonly error: { code: string; message: string; detail?: string } });

type Phase = 'starting' | 'running' | 'smart' | 'stopping';

/** How often a standby looks for promote_trigger_file (PostgreSQL: each wait for WAL, at most every 5 s). */
const TRIGGER_FILE_CHECK_MS = 500;

/** Files read before anything starts: the configuration, the hba rules, and whether this is a standby. */
const START_FILES = ['postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'standby.signal'] as const;

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
  /** standby.signal was present. */
  private standby = false;
  private hba: HbaRule[] = [];
  private readonly walsenders = new Map<string, ActorRef>();
  private walreceiver: ActorRef | null = null;
  private archiver: ActorRef | null = null;
  private readOnlyReady = false;
  private receiverRestarting = false;
  private pids = 0;
  private startFiles = new Map<string, string | null>();

  constructor(private readonly args: PostmasterArgs) {}

  start(ctx: Context): 'later' {
    this.shmem = ctx.spawn({ name: this.role('shmem'), behaviour: SHMEM, args: { dataDir: this.args.dataDir } });
    if (this.args.directory != null && this.args.port !== undefined) {
      ctx.send(this.args.directory, { type: 'Register', port: this.args.port, postmaster: ctx.self } satisfies Register);
    }
    this.readStartFile(ctx);
    return 'later';
  }

  /** Reads START_FILES one after another; then the configuration is loaded and startup begins. */
  private readStartFile(ctx: Context): void {
    const next = START_FILES[this.startFiles.size];
    if (next !== undefined) {
      ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/${next}` }, 'StartFileRead');
      return;
    }
    const text = (name: string): string | null => this.startFiles.get(name) ?? null;
    // Before initdb there are no files yet: the configuration is what initdb is about to write.
    const conf = text('postgresql.conf') ?? (this.args.initdb ? this.args.postgresqlConf : '');
    this.confFiles = [
      { path: `${this.args.dataDir}/postgresql.conf`, text: conf },
      { path: `${this.args.dataDir}/postgresql.auto.conf`, text: text('postgresql.auto.conf') ?? '' },
    ];
    this.config = new ServerConfig(this.args.options);
    reportingFatal(ctx, () => this.config!.load(this.confFiles)); // a bad entry is FATAL: the server does not start
    this.hba = reportingFatal(ctx, () => parseHba(text('pg_hba.conf') ?? DEFAULT_HBA_CONF, `${this.args.dataDir}/pg_hba.conf`));
    this.standby = text('standby.signal') !== null;
    this.sendSettings(ctx);
    const restoreDirectory = this.standby ? reportingFatal(ctx, () => this.restoreDirectory()) : '';
    this.startup = ctx.spawn({
      name: this.role('startup'), behaviour: STARTUP,
      args: {
        dataDir: this.args.dataDir, shmem: this.shmem!, initdb: this.args.initdb, walSegmentSize: this.args.walSegmentSize,
        postgresqlConf: this.args.postgresqlConf, standbyMode: this.standby,
        // Without an upstream to stream from, a standby is fed by the archive alone (a warm standby).
        restoreCommand: this.setting<string>('restore_command'), restoreDirectory, archiveMode: this.setting<string>('archive_mode'),
        streaming: this.setting<string>('primary_conninfo') !== '',
        retryIntervalMs: this.setting('wal_retrieve_retry_interval'),
      },
    });
    if (this.standby) {
      // archive_mode = always: the standby archives what it receives.
      if (this.archiving()) this.startArchiver(ctx);
      this.startCheckpointer(ctx);
      ctx.after(TRIGGER_FILE_CHECK_MS, { type: 'TriggerFileCheck' });
    }
  }

  /** promote_trigger_file: looked for every TRIGGER_FILE_CHECK_MS while a standby; found, it is removed and the standby promoted. */
  private checkTriggerFile(ctx: Context): void {
    if (!this.standby || this.promoting || this.phase === 'stopping') return;
    const file = this.setting<string>('promote_trigger_file');
    if (file === '') {
      ctx.after(TRIGGER_FILE_CHECK_MS, { type: 'TriggerFileCheck' });
      return;
    }
    this.triggerPath = file.startsWith('/') ? file : `${this.args.dataDir}/${file}`;
    ctx.io({ kind: 'file.read', path: this.triggerPath, length: 0 }, 'TriggerFileRead');
  }

  private triggerPath = '';

  private onTriggerFileRead(io: IoResult, ctx: Context): void {
    if (!this.standby || this.promoting) return;
    if (!io.ok || io.value === null) {
      ctx.after(TRIGGER_FILE_CHECK_MS, { type: 'TriggerFileCheck' });
      return;
    }
    ctx.log('info', `promote trigger file found: ${this.triggerPath}`);
    ctx.io({ kind: 'file.unlink', path: this.triggerPath }, 'TriggerFileRemoved');
    this.promote({ type: 'Promote', wait: false, waitSeconds: 60, replyTo: ctx.self, tag: -1 }, ctx);
  }

  /**
   * restore_library = 'basic_archive': startup reads the built-in archive itself, from
   * basic_archive.archive_directory. Like archive_library, it excludes the command.
   */
  private restoreDirectory(): string {
    const library = this.setting<string>('restore_library');
    if (library === '') return '';
    if (library !== 'basic_archive') {
      throw new PgError({ code: SqlState.UndefinedFile, severity: 'FATAL', message: `could not access file "${library}": No such file or directory`, hint: "walship's only restore library is basic_archive." });
    }
    if (this.setting<string>('restore_command') !== '') {
      throw new PgError({ code: SqlState.InvalidParameterValue, severity: 'FATAL', message: 'both restore_command and restore_library set', detail: 'Only one of restore_command, restore_library may be set.' });
    }
    const directory = this.setting<string>('basic_archive.archive_directory');
    if (directory === '') {
      throw new PgError({ code: SqlState.InvalidParameterValue, severity: 'FATAL', message: 'restore_library "basic_archive" needs basic_archive.archive_directory', hint: 'Set basic_archive.archive_directory to the archive to restore from.' });
    }
    return directory;
  }

  /** A reload: startup's WAL sources as the settings say now (a bad restore_library keeps the old ones). */
  private sendWalSources(ctx: Context): void {
    let restoreDirectory: string;
    try {
      restoreDirectory = this.restoreDirectory();
    } catch (err) {
      if (!(err instanceof PgError)) throw err;
      ctx.log('info', `${err.message}; the WAL sources are unchanged`);
      return;
    }
    ctx.send(this.startup!, {
      type: 'WalSourceSettings', restoreCommand: this.setting('restore_command'), restoreDirectory,
      streaming: this.setting<string>('primary_conninfo') !== '', retryIntervalMs: this.setting('wal_retrieve_retry_interval'),
    } satisfies WalSourceSettings);
  }

  private setting<T extends number | string | boolean>(name: string): T {
    return this.config!.get(name) as T;
  }

  /** What shmem, the checkpointer, the walwriter and the walreceiver take from the configuration. */
  private sendSettings(ctx: Context): void {
    ctx.send(this.shmem!, {
      type: 'ShmemSettings', maxReplicationSlots: this.setting('max_replication_slots'), maxWalSizeMb: this.setting('max_wal_size'),
      walKeepSizeMb: this.setting('wal_keep_size'), maxSlotWalKeepSizeMb: this.setting('max_slot_wal_keep_size'), walSegmentSize: this.args.walSegmentSize,
      synchronousStandbyNames: this.setting('synchronous_standby_names'),
      vacuumDeferCleanupAge: this.setting('vacuum_defer_cleanup_age'), deadlockTimeoutMs: this.setting('deadlock_timeout'),
      maxStandbyStreamingDelayMs: this.setting('max_standby_streaming_delay'), maxStandbyArchiveDelayMs: this.setting('max_standby_archive_delay'),
    } satisfies ShmemSettings);
    if (this.walwriter !== null) {
      ctx.send(this.walwriter, {
        type: 'WalWriterSettings',
        walWriterDelayMs: this.setting('wal_writer_delay'),
        walWriterFlushAfterBytes: this.setting('wal_writer_flush_after'),
        maxWalSizeBytes: this.setting<number>('max_wal_size') * 1024 * 1024,
      } satisfies WalWriterSettings);
    }
    if (this.checkpointer !== null) ctx.send(this.checkpointer, { type: 'CheckpointerSettings', ...this.checkpointerSettings() } satisfies CheckpointerSettings);
    if (this.walreceiver !== null) ctx.send(this.walreceiver, { type: 'WalReceiverSettings', ...this.receiverSettings() } satisfies WalReceiverSettings);
    if (this.archiver !== null) ctx.send(this.archiver, { type: 'ArchiverSettings', ...this.archiverSettings() } satisfies ArchiverSettings);
  }

  private checkpointerSettings(): { checkpointTimeoutMs: number; walKeepSizeMb: number; maxSlotWalKeepSizeMb: number; archiveTimeoutMs: number; archiveCleanupCommand: string } {
    return {
      archiveCleanupCommand: this.standby ? this.setting('archive_cleanup_command') : '',
      checkpointTimeoutMs: this.setting<number>('checkpoint_timeout') * 1000,
      walKeepSizeMb: this.setting('wal_keep_size'), maxSlotWalKeepSizeMb: this.setting('max_slot_wal_keep_size'),
      archiveTimeoutMs: this.archiving() ? this.setting<number>('archive_timeout') * 1000 : 0,
    };
  }

  /** Completed segments are archived: archive_mode on on a primary, always on a standby too. */
  private archiving(): boolean {
    const mode = this.setting<string>('archive_mode');
    return mode === 'always' || (mode === 'on' && !this.standby);
  }

  private startArchiver(ctx: Context): void {
    this.archiver = ctx.spawn({ name: this.role('archiver'), behaviour: ARCHIVER, args: { dataDir: this.args.dataDir, shmem: this.shmem!, ...this.archiverSettings() } satisfies ArchiverArgs });
  }

  private archiverSettings(): { archiveCommand: string; archiveLibrary: string; archiveDirectory: string; archiveCompression: 'off' | 'gzip' } {
    return {
      archiveCommand: this.setting('archive_command'), archiveLibrary: this.setting('archive_library'),
      archiveDirectory: this.setting('basic_archive.archive_directory'), archiveCompression: this.setting('basic_archive.compression'),
    };
  }

  private receiverSettings(): { statusIntervalMs: number; receiverTimeoutMs: number; retryIntervalMs: number; hotStandbyFeedback: boolean } {
    return {
      hotStandbyFeedback: this.setting('hot_standby_feedback'),
      statusIntervalMs: this.setting<number>('wal_receiver_status_interval') * 1000,
      receiverTimeoutMs: this.setting('wal_receiver_timeout'), retryIntervalMs: this.setting('wal_retrieve_retry_interval'),
    };
  }

  private startCheckpointer(ctx: Context): void {
    this.checkpointer = ctx.spawn({
      name: this.role('checkpointer'), behaviour: CHECKPOINTER,
      args: { dataDir: this.args.dataDir, shmem: this.shmem!, standby: this.standby, archiving: this.archiving(), ...this.checkpointerSettings() },
    });
  }

  stopping(reason: ExitReason, ctx: Context): 'later' {
    this.phase = 'stopping';
    this.stopReason = reason;
    ctx.log('info', 'received fast shutdown request');
    for (const backend of this.backends.values()) ctx.stop(backend);
    this.backends.clear();
    if (this.walreceiver !== null) ctx.stop(this.walreceiver);
    if (this.startup !== null && this.standby) ctx.stop(this.startup);
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
      case 'StartFileRead': {
        const io = msg as IoResult;
        this.startFiles.set(START_FILES[this.startFiles.size]!, io.ok && io.value !== null ? new TextDecoder().decode(io.value as Uint8Array) : null);
        return this.readStartFile(ctx);
      }
      case 'ReplConnect':
        return this.replConnect(msg as ReplConnect, ctx);
      case 'StartWalReceiver':
        return this.startWalReceiver(msg as StartWalReceiver, ctx);
      case 'Promote':
        return this.promote(msg as PromoteRequest, ctx);
      case 'TriggerFileCheck':
        return this.checkTriggerFile(ctx);
      case 'TriggerFileRead':
        return this.onTriggerFileRead(msg as IoResult, ctx);
      case 'TriggerFileRemoved':
        return;
      case 'ServerCommandDone':
        // The answer to our own promote request (the trigger file's): nobody waits for it.
        return;
      case 'NewestPeerTimelineIs':
        return this.onNewestPeerTimeline(msg as NewestPeerTimelineIs, ctx);
      case 'FenceArchiveListed':
        return this.onFenceArchiveListed(msg as IoResult, ctx);
      case 'FenceArchiveSegmentRead':
        return this.onFenceArchiveSegmentRead(msg as IoResult, ctx);
      case 'TimelineChanged': {
        // This standby follows its upstream onto a new timeline: its own standbys reconnect and follow in turn.
        const m = msg as TimelineChanged;
        if (this.standbyWal !== null) this.standbyWal = { ...this.standbyWal, timeline: m.timeline, history: m.history };
        if (this.standbyWal !== null) this.tellIdentity(this.standbyWal.systemIdentifier, m.timeline, ctx);
        for (const walsender of this.walsenders.values()) ctx.stop(walsender);
        return;
      }
      case 'PromoteTimeout':
        return this.onPromoteTimeout((msg as Message & { tag: number }).tag, ctx);
      case 'ConsistentState': {
        const m = msg as ConsistentState;
        this.standbyWal = { systemIdentifier: m.systemIdentifier, timeline: m.timeline, walSegmentSize: m.segmentSize, history: m.history };
        this.tellIdentity(m.systemIdentifier, m.timeline, ctx);
        if (this.phase === 'starting') {
          if (this.setting('hot_standby')) {
            this.phase = 'running';
            ctx.log('info', 'database system is ready to accept read only connections', { event: 'state', state: 'standby' });
          }
          this.readOnlyReady = true;
          ctx.ready();
        }
        return;
      }
      case 'HbaRead': {
        const io = msg as IoResult;
        const text = io.ok && io.value !== null ? new TextDecoder().decode(io.value as Uint8Array) : DEFAULT_HBA_CONF;
        try {
          this.hba = parseHba(text, `${this.args.dataDir}/pg_hba.conf`);
        } catch (err) {
          if (!(err instanceof PgError)) throw err;
          ctx.log('info', `${err.message}${err.detail === undefined ? '' : ` (${err.detail})`}`);
          ctx.log('info', 'pg_hba.conf was not reloaded');
        }
        return this.finishReload(ctx);
      }
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
    this.sendSettings(ctx);
    if (this.standby && this.startup !== null) this.sendWalSources(ctx);
    // A standby streaming from elsewhere now, or through another slot, reconnects (PostgreSQL 13 and later).
    if (this.walreceiver !== null && (report.changed.includes('primary_conninfo') || report.changed.includes('primary_slot_name'))) {
      // Its exit starts the next one (see onExit).
      this.receiverRestarting = true;
      ctx.stop(this.walreceiver);
    }
    // Without a walreceiver now, startup asks for one on its next round of the WAL sources.
    ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/pg_hba.conf` }, 'HbaRead');
  }

  private finishReload(ctx: Context): void {
    const result: QueryResult = { command: 'SELECT', rowCount: 1, columns: [{ name: 'pg_reload_conf', type: 'bool' }], rows: [{ pg_reload_conf: true }] };
    for (const w of this.reloadWaiters.splice(0)) ctx.send(w.replyTo, { type: 'ServerCommandDone', tag: w.tag, ok: true, result } satisfies ServerCommandDone);
  }

  private role(role: string): string {
    return `${this.args.name}/${role}`;
  }

  private onStarted(ref: ActorRef, ctx: Context): void {
    if (this.checkpointer !== null && sameRef(ref, this.checkpointer)) {
      if (this.walwriter !== null) ctx.send(this.walwriter, { type: 'AttachCheckpointer', checkpointer: this.checkpointer } satisfies AttachCheckpointer);
      if (this.archiver !== null) ctx.send(this.checkpointer, { type: 'AttachArchiver', archiver: this.archiver } satisfies AttachArchiver);
    }
    if (this.startup !== null && sameRef(ref, this.startup)) {
      ctx.send(this.shmem!, { type: 'WalEndRequest', replyTo: ctx.self } satisfies WalEndRequest);
      return;
    }
    if (this.checkpointer !== null && sameRef(ref, this.checkpointer) && !this.standby) {
      this.phase = 'running';
      ctx.log('info', 'database system is ready to accept connections', { event: 'state', state: 'primary' });
      ctx.ready();
    }
  }

  /**
   * pg_promote() (or server.promote()): the walreceiver stops for good and startup ends
   * recovery on a new timeline; the reply comes when the server accepts writes (or says it
   * did not in `waitSeconds`), at once with wait = false.
   */
  private promote(msg: PromoteRequest, ctx: Context): void {
    const result = (promoted: boolean, notices: QueryResult['notices'] = undefined): QueryResult => ({
      command: 'SELECT', rowCount: 1, columns: [{ name: 'pg_promote', type: 'bool' }], rows: [{ pg_promote: promoted }], ...(notices === undefined ? {} : { notices }),
    });
    if (!this.standby || this.startup === null || this.phase === 'stopping') {
      ctx.send(msg.replyTo, {
        type: 'ServerCommandDone', tag: msg.tag, ok: false,
        error: { code: SqlState.ObjectNotInPrerequisiteState, severity: 'ERROR', message: 'recovery is not in progress', hint: 'Recovery control functions can only be executed during recovery.' },
      } satisfies ServerCommandDone);
      return;
    }
    if (!this.promoting) {
      this.promoting = true;
      ctx.send(this.shmem!, { type: 'PromotionTriggered' });
      // As PostgreSQL, the walreceiver is gone before recovery ends: nothing it still writes lands after startup's last read.
      if (this.walreceiver !== null) ctx.stop(this.walreceiver);
      else ctx.send(this.startup, { type: 'Promote' });
    }
    if (!msg.wait) {
      ctx.send(msg.replyTo, { type: 'ServerCommandDone', tag: msg.tag, ok: true, result: result(true) } satisfies ServerCommandDone);
      return;
    }
    const timer = ctx.after(msg.waitSeconds * 1000, { type: 'PromoteTimeout', tag: msg.tag });
    this.promoteWaiters.push({
      tag: msg.tag, timer,
      answer: (promoted) => {
        const message = `server did not promote within ${msg.waitSeconds} second${msg.waitSeconds === 1 ? '' : 's'}`;
        if (!promoted) ctx.log('warning', message);
        const notices = promoted ? undefined : [{ code: SqlState.Warning, severity: 'WARNING' as const, message }];
        ctx.send(msg.replyTo, { type: 'ServerCommandDone', tag: msg.tag, ok: true, result: result(promoted, notices) } satisfies ServerCommandDone);
      },
    });
  }

  private promoting = false;
  private readonly promoteWaiters: { tag: number; timer: TimerId; answer: (promoted: boolean) => void }[] = [];

  private onPromoteTimeout(tag: number, ctx: Context): void {
    const at = this.promoteWaiters.findIndex((w) => w.tag === tag);
    if (at < 0) return;
    const [waiter] = this.promoteWaiters.splice(at, 1);
    waiter!.answer(false);
  }

  /**
   * Recovery ended on a promoted standby: the checkpointer makes checkpoints now (the first
   * at once, as PostgreSQL's end of recovery asks), sessions may write, waiters hear so.
   */
  private finishPromotion(ctx: Context): void {
    this.promoting = false;
    if (this.checkpointer !== null) {
      ctx.send(this.checkpointer, {
        type: 'CheckpointerPromoted', archiving: this.archiving(), archiveTimeoutMs: this.checkpointerSettings().archiveTimeoutMs,
      } satisfies CheckpointerPromoted);
      ctx.send(this.walwriter!, { type: 'AttachCheckpointer', checkpointer: this.checkpointer } satisfies AttachCheckpointer);
      if (this.archiver !== null) ctx.send(this.checkpointer, { type: 'AttachArchiver', archiver: this.archiver } satisfies AttachArchiver);
      ctx.send(this.checkpointer, { type: 'CheckpointNow', replyTo: null, tag: 0, reason: 'force' } satisfies CheckpointNow);
    }
    for (const backend of this.backends.values()) ctx.send(backend, { type: 'Promoted' } satisfies Promoted);
    // Cascading walsenders served the old timeline: their standbys reconnect and follow the new one.
    for (const walsender of this.walsenders.values()) ctx.stop(walsender);
    ctx.log('info', 'database system is ready to accept connections', { event: 'promoted', timeline: this.walEnd?.timeline ?? null });
    for (const waiter of this.promoteWaiters.splice(0)) {
      ctx.cancel(waiter.timer);
      waiter.answer(true);
    }
  }

  private onWalEnd(end: WalEnd, ctx: Context): void {
    // A promoted standby: a primary from here on.
    const promoted = this.standby;
    this.standby = false;
    this.walwriter = ctx.spawn({
      name: this.role('walwriter'), behaviour: WALWRITER,
      args: {
        walDir: `${this.args.dataDir}/pg_wal`, systemIdentifier: BigInt(end.systemIdentifier), timeline: end.timeline, segmentSize: end.walSegmentSize,
        insertLsn: end.endLsn, prevLsn: end.lastLsn,
        walWriterDelayMs: this.config!.get('wal_writer_delay') as number,
        walWriterFlushAfterBytes: this.config!.get('wal_writer_flush_after') as number,
        maxWalSizeBytes: (this.config!.get('max_wal_size') as number) * 1024 * 1024,
        archiving: this.archiving(),
      },
    });
    ctx.send(this.shmem!, { type: 'AttachWalWriter', walwriter: this.walwriter } satisfies AttachWalWriter);
    if (this.archiving()) {
      if (this.archiver === null) this.startArchiver(ctx);
      ctx.send(this.walwriter, { type: 'AttachArchiver', archiver: this.archiver! } satisfies AttachArchiver);
    }
    this.walEnd = end;
    this.tellIdentity(end.systemIdentifier, end.timeline, ctx);
    if (promoted) return this.finishPromotion(ctx);
    this.checkFence(end, ctx);
  }

  /** The address book learns this server's timeline (fencing compares them). */
  private tellIdentity(systemIdentifier: string, timeline: number, ctx: Context): void {
    if (this.args.directory == null || this.args.port === undefined) return;
    ctx.send(this.args.directory, { type: 'ServerIdentity', port: this.args.port, systemIdentifier, timeline } satisfies ServerIdentity);
  }

  /**
   * Fencing: a primary starting while a newer timeline of its database system exists — on a
   * peer in the address book, or as a history file in the built-in archive — was superseded
   * by a promotion. It comes up refusing writes, saying why, rather than as a second primary.
   */
  private checkFence(end: WalEnd, ctx: Context): void {
    if (this.args.directory == null || this.args.port === undefined) return this.checkArchiveFence(end, ctx);
    ctx.send(this.args.directory, { type: 'NewestPeerTimeline', port: this.args.port, systemIdentifier: end.systemIdentifier, replyTo: ctx.self } satisfies NewestPeerTimeline);
  }

  private onNewestPeerTimeline(msg: NewestPeerTimelineIs, ctx: Context): void {
    const end = this.walEnd!;
    if (msg.peer !== null && msg.peer.timeline > end.timeline) {
      return this.fence(`Timeline ${msg.peer.timeline} exists on the server at port ${msg.peer.port}; this server's timeline ${end.timeline} was superseded by a promotion.`, ctx);
    }
    this.checkArchiveFence(end, ctx);
  }

  private checkArchiveFence(end: WalEnd, ctx: Context): void {
    const directory = this.setting<string>('basic_archive.archive_directory');
    if (directory === '') return this.startCheckpointer(ctx);
    ctx.io({ kind: 'file.list', dir: directory }, 'FenceArchiveListed');
  }

  /**
   * A newer timeline's history file in the archive counts only with a segment of that
   * timeline there whose header names this database system (an archive directory may have
   * served another cluster before).
   */
  private onFenceArchiveListed(io: IoResult, ctx: Context): void {
    const end = this.walEnd!;
    const names = (io.ok ? (io.value as string[] | null) : null) ?? [];
    let newest = 0;
    for (const name of names) newest = Math.max(newest, parseHistoryFileName(name.replace(/\.gz$/, '')) ?? 0);
    const prefix = newest.toString(16).toUpperCase().padStart(8, '0');
    const segment = newest > end.timeline ? names.find((n) => n.length === 24 && n.startsWith(prefix) && parseSegmentFileName(n, end.walSegmentSize) !== null) : undefined;
    if (segment === undefined) return this.startCheckpointer(ctx);
    this.fenceCandidate = { timeline: newest, segment };
    ctx.io({ kind: 'file.read', path: `${this.setting<string>('basic_archive.archive_directory')}/${segment}`, length: SEGMENT_HEADER_SIZE }, 'FenceArchiveSegmentRead');
  }

  private fenceCandidate: { timeline: number; segment: string } | null = null;

  private onFenceArchiveSegmentRead(io: IoResult, ctx: Context): void {
    const end = this.walEnd!;
    const { timeline, segment } = this.fenceCandidate!;
    this.fenceCandidate = null;
    const bytes = io.ok ? (io.value as Uint8Array | null) : null;
    const segno = parseSegmentFileName(segment, end.walSegmentSize)!.segno;
    const header = bytes === null ? null : checkSegmentHeader(bytes, 0, { systemIdentifier: BigInt(end.systemIdentifier), timeline, segno, segmentSize: end.walSegmentSize }, segment);
    if (header !== null && !isHeaderProblem(header)) {
      return this.fence(`Timeline ${timeline} of this database system is in the archive "${this.setting<string>('basic_archive.archive_directory')}"; this server's timeline ${end.timeline} was superseded by a promotion.`, ctx);
    }
    this.startCheckpointer(ctx);
  }

  private fence(detail: string, ctx: Context): void {
    const hint = 'Rewind this server into a standby of the new primary (server.rewind(), walship rewind), or remove it.';
    ctx.log('warning', 'this server is fenced: it refuses writes');
    ctx.log('info', `DETAIL:  ${detail}`);
    ctx.log('info', `HINT:  ${hint}`);
    ctx.send(this.shmem!, { type: 'Fence', detail, hint } satisfies Fence);
    this.startCheckpointer(ctx);
  }

  private walEnd: WalEnd | null = null;
  /** A standby's WAL identity (from startup at consistency), for cascading walsenders. */
  private standbyWal: { systemIdentifier: string; timeline: number; walSegmentSize: number; history: readonly HistoryEntry[] } | null = null;

  /** A replication connection: a walsender, if the server runs as a primary and max_wal_senders allows. */
  private replConnect(msg: ReplConnect, ctx: Context): void {
    const refuse = (code: string, message: string, detail?: string): void => {
      ctx.send(msg.replyTo, { type: 'ReplError', connection: msg.connection, error: { code, severity: 'FATAL', message, ...(detail === undefined ? {} : { detail }) } });
    };
    if (this.phase === 'stopping' || this.phase === 'smart') return refuse(SqlState.CannotConnectNow, 'the database system is shutting down');
    // A standby serves its downstream (cascading) once consistent: shmem tells its walsenders how far WAL may go.
    const source = this.standby ? this.shmem : this.walwriter;
    const wal = this.standby ? this.standbyWal : this.walEnd;
    if (this.phase !== 'running' || source === null || wal === null || this.promoting) return refuse(SqlState.CannotConnectNow, 'the database system is starting up');
    const max = this.setting<number>('max_wal_senders');
    if (this.walsenders.size >= max) {
      ctx.log('fatal', `number of requested standby connections exceeds max_wal_senders (currently ${max})`);
      return refuse(SqlState.TooManyConnections, `number of requested standby connections exceeds max_wal_senders (currently ${max})`);
    }
    const walsender = ctx.spawn({
      name: this.role('walsender'), behaviour: WALSENDER,
      args: {
        client: msg.replyTo, connection: msg.connection, user: msg.user, applicationName: msg.applicationName, address: msg.address, pid: this.nextPid(),
        dataDir: this.args.dataDir, shmem: this.shmem!, walwriter: source, checkpointer: this.checkpointer!, hba: this.hba,
        walSenderTimeoutMs: this.setting('wal_sender_timeout'), systemIdentifier: wal.systemIdentifier,
        timeline: wal.timeline, segmentSize: wal.walSegmentSize, history: wal.history ?? [],
        directory: this.args.directory ?? null, clientServer: msg.clientServer ?? null, serverPort: this.args.port ?? null,
      } satisfies WalSenderArgs,
    });
    this.walsenders.set(refKey(walsender), walsender);
  }

  /** Process ids as pg_stat_replication and pg_stat_wal_receiver show them: unique within the server. */
  private nextPid(): number {
    return 10_000 + ++this.pids;
  }

  private startWalReceiver(request: StartWalReceiver, ctx: Context): void {
    if (this.walreceiver !== null || this.phase === 'stopping') return;
    const conninfo = this.setting<string>('primary_conninfo');
    if (conninfo === '') {
      // No upstream now (emptied at a reload): startup goes on with the archive and pg_wal.
      ctx.send(this.startup!, { type: 'NoWalReceiver' });
      return;
    }
    const cluster = this.setting<string>('cluster_name');
    this.walreceiver = ctx.spawn({
      name: this.role('walreceiver'), behaviour: WALRECEIVER,
      args: {
        conninfo, slotName: this.setting('primary_slot_name'), startLsn: request.startLsn, timeline: request.timeline, history: request.history,
        systemIdentifier: request.systemIdentifier, segmentSize: request.segmentSize, dataDir: this.args.dataDir,
        startup: this.startup!, shmem: this.shmem!, directory: this.args.directory ?? null,
        ownServer: this.args.port === undefined ? null : { port: this.args.port, postmaster: ctx.self },
        defaultApplicationName: cluster === '' ? 'walreceiver' : cluster, pid: this.nextPid(), ...this.receiverSettings(),
        // With an archive to fall back on, a lost connection ends it: startup goes to the archive, then streams again.
        exitOnLoss: this.setting<string>('restore_command') !== '' || this.setting<string>('restore_library') !== '',
        archiveAlways: this.setting<string>('archive_mode') === 'always', archiver: this.archiver,
      } satisfies WalReceiverArgs,
    });
    ctx.send(this.startup!, { type: 'WalReceiverAttached', walreceiver: this.walreceiver } satisfies WalReceiverAttached);
  }

  private connect(msg: Connect, ctx: Context): void {
    if (this.phase !== 'running') {
      let error: { code: string; message: string; detail?: string } = { code: SqlState.CannotConnectNow, message: 'the database system is shutting down' };
      if (this.phase === 'starting' && this.readOnlyReady) {
        error = { code: SqlState.CannotConnectNow, message: 'the database system is not accepting connections', detail: 'Hot standby mode is disabled.' };
      } else if (this.phase === 'starting' && this.standby) {
        error = { code: SqlState.CannotConnectNow, message: 'the database system is not yet accepting connections', detail: 'Consistent recovery state has not been yet reached.' };
      } else if (this.phase === 'starting') {
        error = { code: SqlState.CannotConnectNow, message: 'the database system is starting up' };
      }
      ctx.send(msg.replyTo, { type: 'Connected', ok: false, error } satisfies Connected);
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
        args: {
          session, shmem: this.shmem!, checkpointer: this.checkpointer!, confFiles: this.confFiles, serverOptions: this.args.options,
          sessionSettings: msg.settings, database: msg.database ?? 'postgres', inRecovery: this.standby,
        },
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
    if (this.walsenders.delete(key)) {
      if (exit.reason.kind === 'crash') ctx.log('info', `walsender process exited abnormally: ${exit.reason.message}`);
      if (this.phase === 'stopping') this.finishStop(ctx);
      return;
    }
    if (this.walreceiver !== null && sameRef(exit.ref, this.walreceiver)) {
      this.walreceiver = null;
      if (this.phase === 'stopping') return;
      // Promoting: it was stopped for good; now startup may end recovery.
      if (this.promoting) {
        if (this.startup !== null) ctx.send(this.startup, { type: 'Promote' });
        return;
      }
      if (!this.standby) return;
      // A walreceiver that died (or was stopped to follow new settings) is started again, streaming on from what startup has.
      if (!this.receiverRestarting && exit.reason.kind !== 'normal') ctx.log('info', `walreceiver process exited: ${describeReason(exit.reason)}`);
      this.receiverRestarting = false;
      ctx.send(this.startup!, { type: 'WalReceiverAttached', walreceiver: null } satisfies WalReceiverAttached);
      ctx.send(this.startup!, { type: 'RestartWalReceiver' });
      return;
    }
    if (this.startup !== null && sameRef(exit.ref, this.startup)) {
      this.startup = null;
      if (exit.reason.kind === 'normal' || this.phase === 'stopping') return;
      throw new Error(`startup process failed: ${describeReason(exit.reason)}`);
    }
    if (this.phase === 'stopping') {
      if (this.checkpointer !== null && sameRef(exit.ref, this.checkpointer)) {
        this.checkpointer = null;
        // After the shutdown checkpoint the walsenders send it to their standbys, and go.
        for (const walsender of this.walsenders.values()) ctx.stop(walsender);
        this.finishStop(ctx);
      } else if (this.archiver !== null && sameRef(exit.ref, this.archiver)) {
        this.archiver = null;
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
    if (this.checkpointer !== null || this.walsenders.size > 0) return;
    if (this.archiver !== null) {
      ctx.stop(this.archiver);
      return;
    }
    if (this.walwriter !== null) {
      ctx.stop(this.walwriter);
      return;
    }
    if (this.shmem !== null) {
      ctx.stop(this.shmem);
      return;
    }
    if (this.args.directory != null && this.args.port !== undefined) ctx.send(this.args.directory, { type: 'Unregister', port: this.args.port } satisfies Unregister);
    ctx.log('info', 'database system is shut down', { event: 'state', state: 'stopped' });
    ctx.stop(ctx.self, this.stopReason.kind === 'killed' ? KILLED : NORMAL);
  }
}

export const POSTMASTER = defineBehaviour(import.meta.url, 'Postmaster', (args: PostmasterArgs) => new Postmaster(args));
