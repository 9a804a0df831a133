/*
 * cluster.ts — the public face: clusters of servers, servers, sessions.
 *
 * A Cluster owns a directory and an actor node. Each server is a supervisor holding one
 * postmaster (restarted through crash recovery if it crashes), placed `inline` in the
 * caller's thread, in its own worker `thread`, or in its own child `process` (over TCP). Sessions are backends; `query` sends SQL
 * and resolves with `{ command, rowCount, columns, rows }` or rejects with a PgError
 * carrying PostgreSQL's SQLSTATE and texts. Each server's log is `<dataDir>/log/postgresql.log`.
 *
 * Each server gets a port (5432, 5433, ... within the cluster) under which it registers in
 * the cluster's address book; `server.conninfo` is the connection string to reach it.
 * `addStandby` makes a standby as pg_basebackup -R does and starts it.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Query, QueryDone } from '../actors/backend.js';
import { BASEBACKUP, type BaseBackupArgs, type BaseBackupDone, type BaseBackupProgress } from '../actors/basebackup.js';
import type { ForgetServer, Partition, Unregister } from '../replication/protocol.js';
import { DIRECTORY } from './directory.js';
import { POSTMASTER, type Connect, type Connected, type PostmasterArgs, type SmartShutdown } from '../actors/postmaster.js';
import { quoteConfValue } from '../config/conffile.js';
import { PgError, SqlState } from '../errors.js';
import { KILLED, SHUTDOWN, type ActorRef } from '../runtime/actor.js';
import { Kernel, type Inbox } from '../runtime/kernel.js';
import { attachLogFiles } from '../runtime/logfile.js';
import type { LogRecord } from '../runtime/events.js';
import '../runtime/placement.js';
import { supervisor, type Children } from '../runtime/supervisor.js';
import type { QueryResult } from '../sql/result.js';
import { DEFAULT_SEGMENT_SIZE } from '../wal/segment.js';
import { formatLsn } from '../wal/lsn.js';
import { planRewind, type DiscardedTransaction } from './rewind.js';

/** What a server reports, as `cluster.on()` hands it over; `message` is its log line. */
export type ClusterEvent = { readonly server: string; readonly at: Date; readonly message: string } & (
  | { readonly type: 'state'; readonly state: 'primary' | 'standby' | 'stopped' | 'crashed' }
  | { readonly type: 'promoted'; readonly timeline: number | null }
  | { readonly type: 'conflict'; readonly kind: string | null; readonly terminated: boolean }
  | { readonly type: 'slot_invalidated'; readonly slot: string }
  | { readonly type: 'archiver_failed'; readonly file: string }
);

/** What `server.rewind()` did: where the timelines parted, and what it discarded. */
export interface RewindReport {
  readonly sourceTimeline: number;
  readonly targetTimeline: number;
  readonly commonTimeline: number;
  readonly divergedAt: string;
  /** Where the rewound server's own WAL ended. */
  readonly targetEnd: string;
  /** Transactions only the rewound server had: gone now. */
  readonly discarded: readonly DiscardedTransaction[];
  readonly copiedBytes: number;
}

export type ServerPlacement = 'inline' | 'thread' | 'process';
export type SettingInput = string | number | boolean;

export interface ClusterOptions {
  readonly dir: string;
  readonly placement?: ServerPlacement;
}

export interface StandbyOptions {
  /** The server to copy and stream from (default: "primary"). */
  readonly upstream?: string;
  /** A physical slot on the upstream to stream through (created if missing, as pg_basebackup -C -S). */
  readonly slot?: string;
  /** Settings for the standby, written to its postgresql.auto.conf. */
  readonly settings?: Readonly<Record<string, SettingInput>>;
  /** Extra connection options for primary_conninfo (user, password, ...). */
  readonly conninfo?: string;
  /** Base backup progress: bytes copied of the total. */
  readonly onProgress?: (bytes: number, totalBytes: number) => void;
  /** false: no primary_conninfo; the standby lives on restore_command (a warm standby). */
  readonly streaming?: boolean;
  /** Where this server runs (default: the cluster's placement). */
  readonly placement?: ServerPlacement;
}

export interface InitOptions {
  readonly settings?: Readonly<Record<string, SettingInput>>;
  /** wal_segment_size, fixed at initdb (bytes; default 16 MiB). */
  readonly walSegmentSize?: number;
  /** Where this server runs (default: the cluster's placement). */
  readonly placement?: ServerPlacement;
}

const REPLY_TIMEOUT_MS = 60_000;
/** The longest a timer can wait in Node (about 24.8 days): a query's reply has no real limit. */
const QUERY_WAIT_MS = 2 ** 31 - 1;

function settingsText(settings: Readonly<Record<string, SettingInput>> = {}): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v)]));
}

/** The first server's port; the next servers count up from it. */
const FIRST_PORT = 5432;

export class Cluster {
  private readonly servers = new Map<string, Server>();
  private nextPort = FIRST_PORT;
  /** The address book servers register their ports in (cluster/directory.ts). */
  readonly directory: ActorRef;

  private constructor(readonly dir: string, readonly placement: ServerPlacement, readonly kernel: Kernel) {
    this.directory = kernel.spawn({ name: 'cluster/directory', behaviour: DIRECTORY });
  }

  static async create(options: ClusterOptions): Promise<Cluster> {
    const kernel = new Kernel();
    const cluster = new Cluster(options.dir, options.placement ?? 'thread', kernel);
    kernel.onEvent((event) => {
      if (event.kind === 'log') return cluster.dispatch(event);
      // A server that crashed restarts through recovery; its clients' connections are gone.
      if (event.kind !== 'crashed' || !event.name.endsWith('/postmaster')) return;
      const server = event.name.split('/')[0]!;
      cluster.servers.get(server)?.dropSessions(
        new PgError({ code: SqlState.ConnectionFailure, severity: 'FATAL', message: 'server closed the connection unexpectedly' }));
      cluster.emit({ server, at: new Date(event.at), type: 'state', state: 'crashed', message: event.reason?.kind === 'crash' ? event.reason.message : 'crashed' });
    });
    attachLogFiles(kernel, (event) => {
      // PostgreSQL logs what processes say and how they crash, not every start and stop.
      if (event.kind === 'started' || event.kind === 'restarted' || event.kind === 'stopped') return null;
      const [server, process] = event.name.split('/');
      if (process === undefined || server === undefined) return null;
      const owner = cluster.servers.get(server);
      return owner === undefined ? null : { path: join(owner.dataDir, 'log', 'postgresql.log'), process };
    });
    return cluster;
  }

  /** initdb + start: a new primary with `settings` in its postgresql.conf. */
  async initPrimary(name: string, options: InitOptions = {}): Promise<Server> {
    if (this.servers.has(name)) throw new Error(`a server named "${name}" already exists in this cluster`);
    const server = new Server(this, name, join(this.dir, name), this.nextPort++, options.walSegmentSize ?? DEFAULT_SEGMENT_SIZE, settingsText(options.settings), options.placement);
    this.servers.set(name, server);
    await server.start(true);
    return server;
  }

  /**
   * A new standby of `upstream`: a base backup over a replication connection (the upstream
   * keeps running), configured as pg_basebackup -R configures it (standby.signal,
   * primary_conninfo with application_name = the standby's name, primary_slot_name), then
   * started. Resolves once the standby has reached a consistent state.
   */
  async addStandby(name: string, options: StandbyOptions = {}): Promise<Server> {
    if (this.servers.has(name)) throw new Error(`a server named "${name}" already exists in this cluster`);
    const upstream = this.server(options.upstream ?? 'primary');
    if (options.slot !== undefined) {
      const existing = await upstream.query('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [options.slot]);
      if (existing.rowCount === 0) await upstream.query('SELECT * FROM pg_create_physical_replication_slot($1, true)', [options.slot]);
      else if (existing.rows[0]!['wal_status'] === 'lost') {
        throw new PgError({
          code: SqlState.ObjectNotInPrerequisiteState, message: `pg_basebackup: error: can no longer access replication slot "${options.slot}"`,
          detail: 'This replication slot has been invalidated due to "wal_removed".', hint: 'Drop the slot and create it again.',
        });
      }
    }
    const dataDir = join(this.dir, name);
    const primaryConninfo = [upstream.conninfo, `application_name=${name}`, options.conninfo ?? ''].filter((p) => p !== '').join(' ');
    const recoverySettings: Record<string, string> = { ...settingsText(options.settings), ...(options.streaming === false ? {} : { primary_conninfo: primaryConninfo }) };
    if (options.slot !== undefined) recoverySettings['primary_slot_name'] = options.slot;
    await this.baseBackup(name, dataDir, primaryConninfo, recoverySettings, options.onProgress);
    const server = new Server(this, name, dataDir, this.nextPort++, upstream.walSegmentSize, {}, options.placement);
    this.servers.set(name, server);
    await server.start(false);
    return server;
  }

  /** pg_basebackup -R: `dataDir` (new) from the server at `conninfo`, written as a standby of it. Resolves to the bytes copied. */
  async baseBackup(
    name: string, dataDir: string, conninfo: string, recoverySettings: Readonly<Record<string, string>>, onProgress?: (bytes: number, totalBytes: number) => void,
  ): Promise<number> {
    const replies = this.kernel.inbox(`${name}/pg_basebackup`);
    let copied = 0;
    try {
      this.kernel.spawn({
        name: `${name}/pg_basebackup`, behaviour: BASEBACKUP,
        args: { conninfo, dataDir, directory: this.directory, replyTo: replies.ref, recoverySettings } satisfies BaseBackupArgs,
      });
      for (;;) {
        const reply = await replies.next<BaseBackupProgress | BaseBackupDone>(REPLY_TIMEOUT_MS);
        if (reply.type === 'BaseBackupProgress') {
          copied = reply.bytes;
          onProgress?.(reply.bytes, reply.totalBytes);
          continue;
        }
        if (!reply.ok) throw new PgError({ ...reply.error, message: `pg_basebackup: error: ${reply.error.message}` });
        return copied;
      }
    } finally {
      replies.close();
    }
  }

  /**
   * Removes a server from the cluster for good: stopped (fast) if it runs, forgotten by the
   * address book (its timeline no longer fences the others), its data directory deleted
   * unless `keepData`.
   */
  async remove(name: string, options: { keepData?: boolean } = {}): Promise<void> {
    const server = this.server(name);
    if (server.running) await server.stop('fast');
    this.servers.delete(name);
    this.kernel.send(this.directory, { type: 'ForgetServer', port: server.port } satisfies ForgetServer);
    if (options.keepData !== true) rmSync(server.dataDir, { recursive: true, force: true });
  }

  private readonly listeners = new Set<(event: ClusterEvent) => void>();

  /**
   * Events as the servers report them: state changes (primary, standby, stopped, crashed),
   * promotions, hot standby conflicts (a statement cancelled or a session ended), slot
   * invalidations and archiver failures. Returns the function that unsubscribes. Listeners
   * run in the cluster's thread; one that throws is not called again.
   */
  on(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @internal A log record carrying an event (its fields say which). */
  dispatch(record: LogRecord): void {
    const fields = record.fields;
    if (fields === undefined || typeof fields['event'] !== 'string' || this.listeners.size === 0) return;
    const server = record.name.split('/')[0]!;
    const at = new Date(record.at);
    const { event, ...data } = fields;
    if (event === 'promoted') {
      this.emit({ server, at, type: 'promoted', message: record.text, timeline: typeof data['timeline'] === 'number' ? data['timeline'] : null });
      this.emit({ server, at, type: 'state', state: 'primary', message: record.text });
      return;
    }
    this.emit({ server, at, type: event as ClusterEvent['type'], message: record.text, ...data } as ClusterEvent);
  }

  /** @internal */
  emit(event: ClusterEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        this.listeners.delete(listener);
      }
    }
  }

  server(name: string): Server {
    const server = this.servers.get(name);
    if (server === undefined) throw new Error(`no server named "${name}" in this cluster`);
    return server;
  }

  /**
   * Fault injection: cuts the network between two servers. Their replication connections
   * are reset at both ends and new ones fail ("No route to host") until `heal`.
   */
  partition(a: string, b: string): void {
    this.kernel.send(this.directory, { type: 'Partition', a: this.server(a).port, b: this.server(b).port, cut: true } satisfies Partition);
  }

  /** Mends what `partition(a, b)` cut: the servers can connect to each other again. */
  heal(a: string, b: string): void {
    this.kernel.send(this.directory, { type: 'Partition', a: this.server(a).port, b: this.server(b).port, cut: false } satisfies Partition);
  }

  /** Stops every server (fast shutdown) and the cluster's actors. Data directories stay. */
  async destroy(): Promise<void> {
    // Standbys first, so that no walsender waits on a standby that is going anyway.
    for (const server of [...this.servers.values()].reverse()) await server.stop('fast').catch(() => undefined);
    await this.kernel.shutdown();
  }
}

export class Server {
  private supervisorRef: ActorRef | null = null;
  private defaultSession: Session | null = null;
  private readonly sessions = new Set<Session>();

  constructor(
    private readonly cluster: Cluster,
    readonly name: string,
    readonly dataDir: string,
    /** The port the server registers in the cluster's address book. */
    readonly port: number,
    readonly walSegmentSize: number,
    private readonly settings: Readonly<Record<string, string>>,
    /** Where it runs; the cluster's placement when not given. */
    readonly placementOverride?: ServerPlacement,
  ) {}

  /** The connection string another server puts in primary_conninfo to stream from this one. */
  get conninfo(): string {
    return `host=127.0.0.1 port=${this.port} user=postgres`;
  }

  get running(): boolean {
    return this.supervisorRef !== null;
  }

  /** Starts the server (recovering if it crashed); resolves when it accepts connections. */
  async start(initdb = false): Promise<void> {
    if (this.supervisorRef !== null) throw new Error(`server "${this.name}" is already running`);
    const args: PostmasterArgs = {
      name: this.name, dataDir: this.dataDir, initdb, walSegmentSize: this.walSegmentSize, options: {},
      port: this.port, directory: this.cluster.directory,
      postgresqlConf: ['# written by walship initdb', ...Object.entries(this.settings).map(([k, v]) => `${k} = ${quoteConfValue(v)}`), ''].join('\n'),
    };
    const kernel = this.cluster.kernel;
    const ref = kernel.spawn(supervisor(`${this.name}/supervisor`, {
      strategy: 'one_for_one', intensity: 3, periodMs: 60_000,
      children: [{ name: `${this.name}/postmaster`, behaviour: POSTMASTER, args, placement: this.placementOverride ?? this.cluster.placement, restart: 'transient', shutdownMs: 60_000 }],
    }));
    this.supervisorRef = ref;
    const started = kernel.whenStarted(ref).then(() => 'started' as const);
    const exited = kernel.whenExited(ref);
    const first = await Promise.race([started, exited]);
    if (first !== 'started') {
      this.supervisorRef = null;
      throw new Error(`server "${this.name}" failed to start: ${first.kind === 'crash' ? first.message : first.kind} (see ${join(this.dataDir, 'log', 'postgresql.log')})`);
    }
  }

  /**
   * pg_ctl stop. `smart` refuses new sessions and waits for the open ones to end; `fast`
   * ends them (their transactions roll back); both finish with a shutdown checkpoint.
   * `immediate` does not checkpoint: the next start recovers.
   */
  async stop(mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> {
    const ref = this.supervisorRef;
    if (ref === null) return;
    if (mode === 'smart') {
      this.defaultSession?.close();
      this.defaultSession = null;
      const postmaster = await this.postmaster();
      await this.cluster.kernel.ask(postmaster, (replyTo) => ({ type: 'SmartShutdown', replyTo } satisfies SmartShutdown), 2 ** 31 - 1);
    }
    // Clients of a server going down hear about it at once, as libpq does.
    this.dropSessions(mode === 'immediate'
      ? new PgError({ code: SqlState.ConnectionFailure, severity: 'FATAL', message: 'server closed the connection unexpectedly' })
      : new PgError({ code: SqlState.AdminShutdown, severity: 'FATAL', message: 'terminating connection due to administrator command' }));
    const exited = this.cluster.kernel.whenExited(ref);
    this.cluster.kernel.stop(ref, mode === 'immediate' ? KILLED : SHUTDOWN);
    await exited;
    this.supervisorRef = null;
    // A killed server could not take its address back itself: connections to it are refused now.
    this.cluster.kernel.send(this.cluster.directory, { type: 'Unregister', port: this.port } satisfies Unregister);
  }

  /** Like a power cut to the server's processes: no shutdown checkpoint; the next start recovers. */
  async kill(): Promise<void> {
    await this.stop('immediate');
  }

  /**
   * Fault injection: the server's postmaster dies at once, as under kill -9 of its process
   * (or the end of its worker thread). Unlike `kill`, the server's supervisor sees a crash and
   * restarts it, through crash recovery (a standby resumes streaming from what it flushed).
   * Resolves once the server accepts connections again.
   */
  async crash(): Promise<void> {
    const before = await this.postmaster();
    this.dropSessions(new PgError({ code: SqlState.ConnectionFailure, severity: 'FATAL', message: 'server closed the connection unexpectedly' }));
    this.cluster.kernel.stop(before, KILLED);
    const deadline = performance.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      const now = await this.postmaster().catch(() => null);
      if (now !== null && (now.node !== before.node || now.id !== before.id)) {
        const session = await this.connect().catch((err: unknown) => {
          if (err instanceof PgError && err.code === SqlState.CannotConnectNow) return null;
          throw err;
        });
        if (session !== null) {
          session.close();
          return;
        }
      }
      if (performance.now() > deadline) throw new Error(`server "${this.name}" did not come back after the crash`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * pg_rewind: turns this former primary (stopped) into a standby of `source`, the primary
   * that replaced it. Works out where their timelines diverged and which of this server's
   * transactions lie past that point (discarded: each says whether a client was told it had
   * committed, and at which level), copies the source's state as of now (walship keeps its
   * data as one image, so what changed is copied whole, as a base backup), keeps this
   * server's logs, writes standby.signal and primary_conninfo, and starts it: it replays and
   * streams from the source. If the two have no common timeline, says so and how to make
   * the standby instead.
   */
  async rewind(options: { source: Server }): Promise<RewindReport> {
    if (this.running) throw new Error(`pg_rewind: error: target server "${this.name}" must be shut down`);
    const plan = planRewind(this.dataDir, options.source.dataDir);
    const fresh = `${this.dataDir}.rewind`;
    rmSync(fresh, { recursive: true, force: true });
    const conninfo = `${options.source.conninfo} application_name=${this.name}`;
    const copiedBytes = await this.cluster.baseBackup(this.name, fresh, conninfo, { primary_conninfo: conninfo });
    // This server's own history stays with it: its logs, and what it acknowledged.
    for (const keep of ['log', 'pg_acknowledged']) {
      if (!existsSync(join(this.dataDir, keep))) continue;
      rmSync(join(fresh, keep), { recursive: true, force: true });
      renameSync(join(this.dataDir, keep), join(fresh, keep));
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    renameSync(fresh, this.dataDir);
    await this.start(false);
    return {
      sourceTimeline: plan.sourceTimeline, targetTimeline: plan.targetTimeline, commonTimeline: plan.commonTimeline,
      divergedAt: formatLsn(plan.divergedAt), targetEnd: formatLsn(plan.targetEnd), discarded: plan.discarded, copiedBytes,
    };
  }

  /**
   * Promotes a standby, as `SELECT pg_promote(wait, wait_seconds)` does: recovery ends on a
   * new timeline and the server accepts writes; its sessions stay connected. With `wait`
   * (the default) resolves to whether it was promoted within `waitSeconds` (default 60).
   */
  async promote(options: { wait?: boolean; waitSeconds?: number } = {}): Promise<boolean> {
    const wait = options.wait ?? true;
    const waitSeconds = options.waitSeconds ?? 60;
    if (!Number.isInteger(waitSeconds) || waitSeconds <= 0) throw new Error(`waitSeconds must be a positive integer, not ${waitSeconds}`);
    const result = await this.query(`SELECT pg_promote(${wait}, ${waitSeconds})`);
    return result.rows[0]!['pg_promote'] === true;
  }

  /** The operating-system process id of a server in the `process` placement (for kill -9). */
  async pid(): Promise<number | undefined> {
    const postmaster = await this.postmaster();
    return this.cluster.kernel.placementOf(postmaster)?.pid;
  }

  async connect(options: { database?: string; settings?: Readonly<Record<string, SettingInput>> } = {}): Promise<Session> {
    const postmaster = await this.postmaster();
    const reply = await this.cluster.kernel.ask<Connected>(postmaster, (replyTo) => ({
      type: 'Connect', settings: settingsText(options.settings), database: options.database ?? 'postgres', replyTo,
    } satisfies Connect), REPLY_TIMEOUT_MS);
    if (!reply.ok) throw new PgError({ code: reply.error.code, severity: 'FATAL', message: reply.error.message, ...(reply.error.detail === undefined ? {} : { detail: reply.error.detail }) });
    const session = new Session(this.cluster.kernel, reply.backend, () => this.sessions.delete(session));
    this.sessions.add(session);
    return session;
  }

  /** Runs SQL on the server's default session (reconnecting if the server restarted). */
  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    if (this.defaultSession === null || this.defaultSession.ended) this.defaultSession = await this.connect();
    return this.defaultSession.query(sql, params);
  }

  /** Ends every client session of this server with `error` (a stop, a kill, a crash). */
  dropSessions(error: PgError): void {
    for (const session of this.sessions) session.terminate(error);
    this.sessions.clear();
    this.defaultSession = null;
  }

  private async postmaster(): Promise<ActorRef> {
    const ref = this.supervisorRef;
    if (ref === null) throw new PgError({ code: SqlState.CannotConnectNow, severity: 'FATAL', message: `server "${this.name}" is not running` });
    const children = await this.cluster.kernel.ask<Children>(ref, (replyTo) => ({ type: 'WhichChildren', replyTo }), REPLY_TIMEOUT_MS);
    const postmaster = children.children[0]?.ref;
    if (postmaster == null) throw new PgError({ code: SqlState.CannotConnectNow, severity: 'FATAL', message: 'the database system is starting up' });
    return postmaster;
  }
}

export class Session {
  private tag = 0;
  private endedWith: PgError | null = null;
  private readonly endWaiters = new Set<(error: PgError) => void>();
  /** One mailbox for the session's replies (no per-query actor or timer on the hot path). */
  private readonly replies: Inbox;

  constructor(private readonly kernel: Kernel, private readonly backend: ActorRef, private readonly onClose: () => void) {
    this.replies = kernel.inbox('session');
  }

  get ended(): boolean {
    return this.endedWith !== null;
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    if (this.endedWith !== null) throw this.endedWith;
    let stopWaiting = (): void => {};
    const ended = new Promise<never>((_, reject) => {
      this.endWaiters.add(reject);
      stopWaiting = () => this.endWaiters.delete(reject);
    });
    try {
      const tag = ++this.tag;
      if (!this.kernel.send(this.backend, { type: 'Query', sql, params, replyTo: this.replies.ref, tag } satisfies Query)) {
        throw new PgError({ code: SqlState.ConnectionFailure, severity: 'FATAL', message: 'server closed the connection unexpectedly' });
      }
      // Queries of a session run one at a time, so the next reply is this query's.
      // No time limit: a commit may wait for its standbys as long as it takes (the session
      // ends, and this with it, if the server goes away). A late reply to an abandoned query is skipped.
      let reply = await Promise.race([this.replies.next<QueryDone>(QUERY_WAIT_MS), ended]);
      while (reply.tag < tag) reply = await Promise.race([this.replies.next<QueryDone>(QUERY_WAIT_MS), ended]);
      if (reply.tag !== tag) throw new Error(`session reply out of order: expected ${tag}, got ${reply.tag}`);
      if (!reply.ok) {
        const error = new PgError(reply.error);
        // A FATAL ends the session (the server closed it after saying why).
        if (error.severity === 'FATAL') this.endWith(error);
        throw error;
      }
      return reply.result;
    } finally {
      stopWaiting();
    }
  }

  /**
   * Asks the server to cancel what this session waits for, as libpq's PQcancel does. Today
   * that is a commit waiting for synchronous replication: it returns at once with
   * PostgreSQL's WARNING in `notices` (the commit stands locally). Resolves when sent.
   */
  cancel(): void {
    if (this.endedWith === null) this.kernel.send(this.backend, { type: 'Cancel' });
  }

  /** The server went away: queries in flight and later ones fail with `error`. */
  terminate(error: PgError): void {
    if (this.endedWith !== null) return;
    this.endedWith = error;
    for (const reject of this.endWaiters) reject(error);
    this.endWaiters.clear();
    this.replies.close();
  }

  /** The server ended this session with a FATAL: it is closed on this side too. */
  private endWith(error: PgError): void {
    this.terminate(error);
    this.onClose();
  }

  close(): void {
    if (this.endedWith !== null) return;
    this.terminate(new PgError({ code: SqlState.ConnectionDoesNotExist, message: 'connection does not exist' }));
    this.onClose();
    this.kernel.send(this.backend, { type: 'Terminate' });
  }
}

