/*
 * walreceiver.ts — a standby's end of streaming replication.
 *
 * It connects as primary_conninfo says (the host and port lead through the cluster's
 * address book to the upstream's postmaster), authenticates (trust, or SCRAM-SHA-256 with
 * the password in the connection string), checks that the upstream is the same cluster
 * (IDENTIFY_SYSTEM), and asks for WAL from `startLsn` on its timeline, through
 * primary_slot_name if set. Received WAL is written to its own pg_wal at the same positions,
 * reported written, then flushed (one write and one fdatasync per batch that arrived
 * meanwhile), reported flushed and handed to startup to replay. The apply position rides
 * on those replies and on one every wal_receiver_status_interval; replay prompts a reply of
 * its own only for a remote_apply commit, whose primary waits for it (as in PostgreSQL).
 *
 * Each segment it completes is marked in pg_wal/archive_status: `.ready` for the standby's
 * archiver with archive_mode = always, `.done` otherwise, as PostgreSQL's walreceiver does.
 *
 * A refused or dropped connection is logged as PostgreSQL logs it and retried after
 * wal_retrieve_retry_interval, from where WAL was flushed; an upstream silent for
 * wal_receiver_timeout is dropped ("terminating walreceiver due to timeout"). On a standby
 * with restore_command (`exitOnLoss`) it ends instead, as PostgreSQL's does, and startup
 * looks in the archive and pg_wal before it asks for streaming again.
 */
import { PgError, SqlState, type PgErrorFields } from '../errors.js';
import { parseConninfo, type Conninfo } from '../config/conninfo.js';
import { defineBehaviour, NORMAL, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context, TimerId } from '../runtime/context.js';
import type { FileBatchEntry } from '../runtime/fileio.js';
import type { IoResult } from '../runtime/io.js';
import {
  LOOPBACK,
  type AuthOk, type AuthRequest, type EndOfStream, type HotStandbyFeedback, type PrimaryKeepalive, type ReplConnect, type ReplError, type Resolve, type Resolved,
  type ScramServerFirst, type ServerGone, type TimelineHistory, type TimelineHistoryFile, type StandbyStatusUpdate, type Unwatch, type Watch, type StartReplication, type SystemIdentified, type XLogData,
} from '../replication/protocol.js';
import { AuthClient } from '../replication/auth-client.js';
import { formatLsn, type Lsn } from '../wal/lsn.js';
import { segmentFileName, segmentStart, segnoOf } from '../wal/segment.js';
import type { Applied, FeedbackXmin, ReceiverReport } from './shmem.js';
import type { TimelineHistoryFetched, TimelineOffered, TimelineVerdict, WalReceived } from './startup.js';
import { parseHistory, timelineOfSegment, timelineSpans, type HistoryEntry } from '../wal/timeline.js';
import type { SegmentReady } from './walwriter.js';
import type { ReceiverStatus } from '../monitoring/views.js';

export interface WalReceiverArgs {
  readonly conninfo: string;
  readonly slotName: string;
  readonly startLsn: Lsn;
  readonly timeline: number;
  /** The history of `timeline` (segments before a switch are named by their own timelines). */
  readonly history?: readonly HistoryEntry[];
  readonly systemIdentifier: string;
  readonly segmentSize: number;
  readonly dataDir: string;
  readonly startup: ActorRef;
  readonly shmem: ActorRef;
  readonly directory: ActorRef | null;
  /** This standby's own address: the walsender watches it, to notice this server going away. */
  readonly ownServer: { readonly port: number; readonly postmaster: ActorRef } | null;
  /** application_name when the connection string has none (cluster_name, else "walreceiver"). */
  readonly defaultApplicationName: string;
  readonly pid: number;
  readonly statusIntervalMs: number;
  readonly receiverTimeoutMs: number;
  readonly retryIntervalMs: number;
  /** hot_standby_feedback: this standby's oldest xmin goes upstream, so VACUUM there keeps what its queries see. */
  readonly hotStandbyFeedback?: boolean;
  /** A lost connection ends the walreceiver rather than being retried (startup has other sources). */
  readonly exitOnLoss?: boolean;
  /**
   * archive_mode = always: each completed segment is marked `.ready` and the archiver told;
   * otherwise it is marked `.done` (a standby promoted with archive_mode = on archives only
   * the WAL it writes itself).
   */
  readonly archiveAlways?: boolean;
  readonly archiver?: ActorRef | null;
}

/** Settings that change at reload without a new connection. */
export interface WalReceiverSettings extends Message {
  readonly type: 'WalReceiverSettings';
  readonly statusIntervalMs: number;
  readonly receiverTimeoutMs: number;
  readonly retryIntervalMs: number;
  readonly hotStandbyFeedback: boolean;
}

type Phase = 'resolving' | 'connecting' | 'streaming' | 'waiting';

/** How long a connection attempt may go unanswered (libpq's connect_timeout, when not given). */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

class WalReceiver implements Actor {
  private phase: Phase = 'waiting';
  private conninfo: Conninfo = {};
  private walsender: ActorRef | null = null;
  private auth: AuthClient | null = null;
  /** The upstream's postmaster this connection went to (its going away ends the connection). */
  private upstream: ActorRef | null = null;
  private startPending = false;
  /** START_REPLICATION was sent on this connection (its refusal "could not start WAL streaming"). */
  private startRequested = false;
  /** Every byte below this is written and flushed to pg_wal (and went to startup). */
  private flushed: Lsn;
  /** The start of the current streaming request. */
  private receiveStart: Lsn;
  private applied: Lsn = 0;
  private readonly queue: { start: Lsn; bytes: Uint8Array }[] = [];
  /** Written to pg_wal, maybe not yet flushed (what remote_write waits for). */
  private written: Lsn = 0;
  /** The files of the batch being written, to flush next. */
  private syncing: string[] = [];
  private writing: { start: Lsn; bytes: Uint8Array }[] | null = null;
  private readonly preallocated = new Set<number>();
  private lastReceived = 0;
  private lastSent = 0;
  private lastReported = '';
  private latestEnd: Lsn = 0;
  private latestEndTime: number | null = null;
  private lastSendTime: number | null = null;
  private tickTimer: TimerId | null = null;
  private attemptTimer: TimerId | null = null;
  private attempt = 0;
  private statusIntervalMs: number;
  private receiverTimeoutMs: number;
  private retryIntervalMs: number;

  constructor(private readonly args: WalReceiverArgs) {
    this.flushed = args.startLsn;
    this.receiveStart = args.startLsn;
    this.statusIntervalMs = args.statusIntervalMs;
    this.receiverTimeoutMs = args.receiverTimeoutMs;
    this.retryIntervalMs = args.retryIntervalMs;
    this.hotStandbyFeedback = args.hotStandbyFeedback === true;
    this.timeline = args.timeline;
    this.history = args.history ?? [];
  }

  start(ctx: Context): void {
    this.connect(ctx);
  }

  stopping(_reason: unknown, ctx: Context): 'now' {
    if (this.walsender !== null) ctx.send(this.walsender, { type: 'ReplDisconnect' });
    this.unwatch(ctx);
    ctx.send(this.args.shmem, { type: 'ReceiverReport', status: null } satisfies ReceiverReport);
    return 'now';
  }

  receive(msg: Message, ctx: Context): void {
    // A late message of an earlier connection (this one reconnected since) is not for us.
    const connection = (msg as { connection?: unknown }).connection;
    if (typeof connection === 'number' && connection !== this.attempt) return;
    try {
      this.handle(msg, ctx);
    } catch (err) {
      if (!(err instanceof PgError)) throw err;
      this.lost(this.stage(), err.toFields(), ctx);
    }
  }

  /** How PostgreSQL's walreceiver says where a connection failed. */
  private stage(): string {
    if (this.phase === 'streaming') return 'could not receive data from WAL stream';
    return this.startRequested ? 'could not start WAL streaming' : 'could not connect to the primary server';
  }

  private handle(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'Retry':
        return this.connect(ctx);
      case 'Resolved':
        return this.onResolved(msg as Resolved, ctx);
      case 'ConnectTimeout':
        if ((msg as { attempt: number } & Message).attempt !== this.attempt || this.phase !== 'connecting') return;
        return this.lost('could not connect to the primary server', { code: SqlState.UnableToConnect, severity: 'FATAL', message: 'timeout expired' }, ctx);
      case 'AuthRequest':
        return this.onAuthRequest(msg as AuthRequest, ctx);
      case 'ScramServerFirst':
        ctx.send(this.sender(), this.auth!.proof(msg as ScramServerFirst));
        return;
      case 'AuthOk':
        this.auth?.done(msg as AuthOk);
        this.walsender = (msg as AuthOk).walsender;
        ctx.send(this.sender(), { type: 'IdentifySystem' });
        return;
      case 'SystemIdentified':
        return this.onIdentified(msg as SystemIdentified, ctx);
      case 'CopyBoth':
        this.phase = 'streaming';
        this.lastReceived = ctx.now();
        ctx.log('info', `started streaming WAL from primary at ${formatLsn(this.receiveStart)} on timeline ${this.timeline}`);
        // Where this standby stands, at once (a synchronous standby counts from its first reply).
        this.sendStatus(true, ctx);
        // And its xmin, or that it has none (an xmin the upstream kept from an earlier connection goes).
        this.sendFeedback(true, ctx);
        return;
      case 'XLogData':
        return this.onData(msg as XLogData, ctx);
      case 'PrimaryKeepalive': {
        const k = msg as PrimaryKeepalive;
        this.lastReceived = ctx.now();
        this.noteEnd(k.walEnd, k.sendTime);
        if (k.replyRequested) this.sendStatus(true, ctx);
        return;
      }
      case 'ServerGone': {
        // The upstream went away under us (killed, crashed and restarted): as a TCP reset.
        const gone = msg as ServerGone;
        if (this.upstream === null || gone.postmaster.id !== this.upstream.id || gone.postmaster.node !== this.upstream.node) return;
        if (this.phase !== 'connecting' && this.phase !== 'streaming') return;
        this.walsender = null;
        return this.lost(this.stage(), {
          code: SqlState.ConnectionFailure, severity: 'FATAL', message: 'server closed the connection unexpectedly',
          detail: 'This probably means the server terminated abnormally before or while processing the request.',
        }, ctx);
      }
      case 'ReplError':
        return this.lost(this.stage(), (msg as ReplError).error, ctx);
      case 'EndOfStream': {
        ctx.log('info', 'replication terminated by primary server');
        ctx.log('info', `DETAIL:  End of WAL reached on timeline ${this.timeline} at ${formatLsn((msg as EndOfStream).walEnd)}.`);
        return this.retryLater(ctx);
      }
      case 'WalWritten':
        return this.onWritten(msg as IoResult, ctx);
      case 'WalFlushed':
        return this.onFlushed(msg as IoResult, ctx);
      case 'SegmentMarked':
        return this.onMarked(msg as IoResult, ctx);
      case 'TimelineHistoryFile':
        return this.onTimelineHistory(msg as TimelineHistoryFile, ctx);
      case 'HistoryWritten':
        return this.onHistoryWritten(msg as IoResult, ctx);
      case 'TimelineVerdict':
        return this.onTimelineVerdict(msg as TimelineVerdict, ctx);
      case 'Applied': {
        // Reported with the next flush or status interval, as PostgreSQL does, unless a
        // remote_apply commit was replayed: its primary waits for this reply.
        const applied = msg as Applied;
        this.applied = Math.max(this.applied, applied.lsn);
        if (applied.force === true && this.phase === 'streaming') this.sendStatus(true, ctx);
        return;
      }
      case 'ReceiverTick':
        return this.tick(ctx);
      case 'WalReceiverSettings': {
        const m = msg as WalReceiverSettings;
        this.statusIntervalMs = m.statusIntervalMs;
        this.receiverTimeoutMs = m.receiverTimeoutMs;
        this.retryIntervalMs = m.retryIntervalMs;
        this.hotStandbyFeedback = m.hotStandbyFeedback;
        this.sendFeedback(false, ctx);
        return;
      }
      case 'FeedbackXmin':
        this.standbyXmin = (msg as FeedbackXmin).xmin;
        this.sendFeedback(false, ctx);
        return;
    }
  }

  private connect(ctx: Context): void {
    this.attemptTimer = null;
    this.conninfo = parseConninfo(this.args.conninfo);
    this.phase = 'resolving';
    this.attempt++;
    const host = this.conninfo.host ?? this.conninfo.hostaddr ?? 'localhost';
    const port = Number(this.conninfo.port ?? '5432');
    if (this.args.directory === null) {
      throw new PgError({ code: SqlState.UnableToConnect, severity: 'FATAL', message: `connection to server at "${host}", port ${port} failed: Connection refused` });
    }
    ctx.send(this.args.directory, { type: 'Resolve', host, port, ...this.from(), replyTo: ctx.self } satisfies Resolve);
    this.report(ctx);
  }

  private onResolved(msg: Resolved, ctx: Context): void {
    if (this.phase !== 'resolving') return;
    const host = this.conninfo.host ?? this.conninfo.hostaddr ?? 'localhost';
    const port = this.conninfo.port ?? '5432';
    if (msg.postmaster === null && msg.unreachable === true) {
      throw new PgError({ code: SqlState.UnableToConnect, severity: 'FATAL', message: `connection to server at "${host}", port ${port} failed: No route to host` });
    }
    if (msg.postmaster === null) {
      throw new PgError({
        code: SqlState.UnableToConnect, severity: 'FATAL',
        message: `connection to server at "${host}", port ${port} failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?`,
      });
    }
    this.phase = 'connecting';
    this.upstream = msg.postmaster;
    ctx.send(this.args.directory!, { type: 'Watch', port: Number(port), postmaster: msg.postmaster, ...this.from(), replyTo: ctx.self } satisfies Watch);
    ctx.send(msg.postmaster, {
      type: 'ReplConnect', connection: this.attempt, user: this.conninfo.user ?? 'postgres', applicationName: this.applicationName(), address: LOOPBACK, replyTo: ctx.self,
      ...(this.args.ownServer === null ? {} : { clientServer: this.args.ownServer }),
    } satisfies ReplConnect);
    const timeoutMs = this.conninfo.connect_timeout !== undefined ? Math.max(2, Number(this.conninfo.connect_timeout)) * 1000 : DEFAULT_CONNECT_TIMEOUT_MS;
    ctx.after(timeoutMs, { type: 'ConnectTimeout', attempt: this.attempt });
  }

  /** This server's own port, for the address book (a partition may stand between it and the upstream). */
  private from(): { from?: number } {
    return this.args.ownServer === null ? {} : { from: this.args.ownServer.port };
  }

  private applicationName(): string {
    return this.conninfo.application_name ?? this.args.defaultApplicationName;
  }

  private onAuthRequest(msg: AuthRequest, ctx: Context): void {
    this.walsender = msg.walsender;
    this.auth = new AuthClient(this.conninfo.user ?? 'postgres', this.conninfo.password, () => ctx.newId());
    ctx.send(msg.walsender, this.auth.answer(msg));
  }

  private onIdentified(msg: SystemIdentified, ctx: Context): void {
    if (msg.systemId !== this.args.systemIdentifier) {
      throw new PgError({
        code: SqlState.ObjectNotInPrerequisiteState, severity: 'FATAL', message: 'database system identifier differs between the primary and standby',
        detail: `The primary's identifier is ${msg.systemId}, the standby's identifier is ${this.args.systemIdentifier}.`,
      });
    }
    if (msg.timeline < this.timeline) {
      throw new PgError({
        code: SqlState.ObjectNotInPrerequisiteState, severity: 'FATAL',
        message: `highest timeline ${msg.timeline} of the primary is behind recovery timeline ${this.timeline}`,
      });
    }
    if (msg.timeline > this.timeline) {
      // The upstream was promoted (or follows a promotion): its history first, then WAL on its timeline.
      ctx.log('info', `fetching timeline history file for timeline ${msg.timeline} from primary server`);
      ctx.send(this.sender(), { type: 'TimelineHistory', timeline: msg.timeline } satisfies TimelineHistory);
      return;
    }
    if (this.tickTimer === null) this.tickTimer = ctx.after(this.tickMs(), { type: 'ReceiverTick' });
    this.startPending = true;
    this.startStreaming(ctx);
  }

  /**
   * The upstream's newer timeline: followed if this standby's WAL has not gone past where
   * that timeline forked from ours (written to pg_wal, told to startup), else refused.
   */
  private onTimelineHistory(msg: TimelineHistoryFile, ctx: Context): void {
    const path = `${this.args.dataDir}/pg_wal/${msg.filename}`;
    let history: HistoryEntry[];
    try {
      history = parseHistory(new TextDecoder().decode(msg.content), msg.timeline, path);
    } catch (err) {
      throw new PgError({ code: SqlState.DataCorrupted, severity: 'FATAL', message: (err as Error).message });
    }
    const fork = history.find((e) => e.parent === this.timeline);
    if (fork === undefined) {
      throw new PgError({ code: SqlState.ObjectNotInPrerequisiteState, severity: 'FATAL', message: `new timeline ${msg.timeline} is not a child of database system timeline ${this.timeline}` });
    }
    const here = Math.max(this.flushed, this.applied);
    if (here > fork.switchpoint) throw forkedOff(msg.timeline, this.timeline, here);
    // Startup has the last word: it knows how far replay really went.
    this.following = { timeline: msg.timeline, history, path, content: msg.content };
    ctx.send(this.args.startup, { type: 'TimelineOffered', timeline: msg.timeline, history, replyTo: ctx.self } satisfies TimelineOffered);
  }

  /** Startup's answer: follow (the history file is written first), or refuse. */
  private onTimelineVerdict(msg: TimelineVerdict, ctx: Context): void {
    const following = this.following;
    if (following === null || following.timeline !== msg.timeline) return;
    if (msg.refusedAt !== null) {
      this.following = null;
      throw forkedOff(msg.timeline, this.timeline, msg.refusedAt);
    }
    ctx.io({ kind: 'file.writeAtomic', path: following.path, bytes: following.content }, 'HistoryWritten');
  }

  private following: { timeline: number; history: HistoryEntry[]; path: string; content: Uint8Array } | null = null;

  private onHistoryWritten(io: IoResult, ctx: Context): void {
    if (!io.ok) throw new Error(`could not write timeline history file: ${io.error.message}`);
    const { timeline, history } = this.following!;
    this.following = null;
    this.timeline = timeline;
    this.history = history;
    // As PostgreSQL, streaming on the new timeline starts at the beginning of the segment:
    // the switch segment is the new timeline's file, header and all.
    this.flushed = segmentStart(segnoOf(this.flushed, this.args.segmentSize), this.args.segmentSize);
    this.preallocated.clear();
    // Startup hears before any WAL of the new timeline arrives (both go from here, in order).
    ctx.send(this.args.startup, { type: 'TimelineHistoryFetched', timeline, history } satisfies TimelineHistoryFetched);
    if (this.tickTimer === null) this.tickTimer = ctx.after(this.tickMs(), { type: 'ReceiverTick' });
    this.startPending = true;
    this.startStreaming(ctx);
  }

  private timeline: number;
  private history: readonly HistoryEntry[];

  /** The file of segment `segno`: its own timeline's, by this timeline's history. */
  private segmentName(segno: number): string {
    return segmentFileName(timelineOfSegment(timelineSpans(this.timeline, this.history), segno, this.args.segmentSize), segno, this.args.segmentSize);
  }

  /** START_REPLICATION from what is flushed, once a write still in flight from before is done. */
  private startStreaming(ctx: Context): void {
    if (!this.startPending || this.writing !== null || this.walsender === null) return;
    this.startPending = false;
    this.startRequested = true;
    this.receiveStart = this.flushed;
    const slot = this.args.slotName === '' ? null : this.args.slotName;
    ctx.send(this.walsender, { type: 'StartReplication', slot, startLsn: this.flushed, timeline: this.timeline } satisfies StartReplication);
  }

  private sender(): ActorRef {
    if (this.walsender === null) throw new PgError({ code: SqlState.ProtocolViolation, severity: 'FATAL', message: 'no walsender' });
    return this.walsender;
  }

  private onData(msg: XLogData, ctx: Context): void {
    if (this.phase !== 'streaming') return;
    this.lastReceived = ctx.now();
    const expected = this.queue.length > 0 ? this.queue.at(-1)!.start + this.queue.at(-1)!.bytes.length
      : this.writing !== null ? this.writing.at(-1)!.start + this.writing.at(-1)!.bytes.length : this.flushed;
    if (msg.start !== expected) {
      throw new PgError({ code: SqlState.ProtocolViolation, severity: 'FATAL', message: `unexpected WAL position ${formatLsn(msg.start)} in stream, expected ${formatLsn(expected)}` });
    }
    this.lastSendTime = msg.sendTime;
    this.noteEnd(msg.walEnd, msg.sendTime);
    this.queue.push({ start: msg.start, bytes: msg.bytes });
    this.write(ctx);
  }

  private noteEnd(walEnd: Lsn, sendTime: number): void {
    if (walEnd > this.latestEnd) {
      this.latestEnd = walEnd;
      this.latestEndTime = sendTime;
    }
  }

  /** Writes and flushes everything queued, one batch at a time. */
  private write(ctx: Context): void {
    if (this.writing !== null || this.queue.length === 0) return;
    const batch = this.queue.splice(0);
    const files = new Map<number, FileBatchEntry>();
    for (const piece of batch) {
      let at = 0;
      while (at < piece.bytes.length) {
        const pos = piece.start + at;
        const segno = segnoOf(pos, this.args.segmentSize);
        const offset = pos - segmentStart(segno, this.args.segmentSize);
        const n = Math.min(piece.bytes.length - at, this.args.segmentSize - offset);
        const entry = files.get(segno) ?? this.entry(segno);
        files.set(segno, { ...entry, writes: [...entry.writes, { offset, bytes: piece.bytes.subarray(at, at + n) }] });
        at += n;
      }
    }
    this.writing = batch;
    this.syncing = [...files.values()].map((f) => f.path);
    ctx.io({ kind: 'file.writeBatch', files: [...files.values()], sync: false }, 'WalWritten');
  }

  private entry(segno: number): FileBatchEntry {
    const path = `${this.args.dataDir}/pg_wal/${this.segmentName(segno)}`;
    if (this.preallocated.has(segno)) return { path, writes: [] };
    this.preallocated.add(segno);
    return { path, preallocate: this.args.segmentSize, writes: [] };
  }

  /**
   * Written (not yet on disk): the primary hears of it at once, as PostgreSQL's walreceiver
   * replies after each write (remote_write waits for no more), then the flush follows.
   */
  private onWritten(io: IoResult, ctx: Context): void {
    if (!io.ok) throw new Error(`could not write to WAL segment: ${io.error.message}`);
    const last = this.writing!.at(-1)!;
    this.written = Math.max(this.written, last.start + last.bytes.length);
    if (this.phase === 'streaming') this.sendStatus(false, ctx);
    ctx.io({ kind: 'file.sync', paths: this.syncing }, 'WalFlushed');
  }

  /** On disk: startup may replay it, and the primary hears of the flush. */
  private onFlushed(io: IoResult, ctx: Context): void {
    const batch = this.writing!;
    this.writing = null;
    if (!io.ok) throw new Error(`could not fdatasync WAL segment: ${io.error.message}`);
    const last = batch.at(-1)!;
    const before = this.flushed;
    this.flushed = Math.max(this.flushed, last.start + last.bytes.length);
    this.markCompleted(before, ctx);
    ctx.send(this.args.startup, { type: 'WalReceived', chunks: batch } satisfies WalReceived);
    if (this.phase === 'streaming') this.sendStatus(false, ctx);
    this.write(ctx);
    this.startStreaming(ctx);
  }

  /** Segments wholly flushed since `before`: marked for the archiver, one at a time, oldest first. */
  private markCompleted(before: Lsn, ctx: Context): void {
    const size = this.args.segmentSize;
    for (let segno = segnoOf(before, size); segmentStart(segno + 1, size) <= this.flushed; segno++) {
      this.toMark.push(this.segmentName(segno));
    }
    this.markNext(ctx);
  }

  private markNext(ctx: Context): void {
    if (this.marking !== null) return;
    const name = this.toMark.shift();
    if (name === undefined) return;
    this.marking = name;
    const status = this.args.archiveAlways === true ? 'ready' : 'done';
    ctx.io({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/pg_wal/archive_status/${name}.${status}`, bytes: new Uint8Array(0) }, 'SegmentMarked');
  }

  private onMarked(io: IoResult, ctx: Context): void {
    const name = this.marking!;
    this.marking = null;
    if (!io.ok) throw new Error(`could not create archive status file for "${name}": ${io.error.message}`);
    if (this.args.archiveAlways === true && this.args.archiver != null) ctx.send(this.args.archiver, { type: 'SegmentReady', name } satisfies SegmentReady);
    this.markNext(ctx);
  }

  private readonly toMark: string[] = [];
  private marking: string | null = null;

  /**
   * hot_standby_feedback: the xmin of this standby's oldest snapshot (or of the transactions
   * replay knows to be running), when it changes and every status interval; 0 once when off.
   */
  private sendFeedback(force: boolean, ctx: Context): void {
    if (this.walsender === null || this.phase !== 'streaming') return;
    const xmin = this.hotStandbyFeedback ? this.standbyXmin : 0;
    if (!force && xmin === this.feedbackSent) return;
    if (!force && xmin === 0 && this.feedbackSent === null) return;
    this.feedbackSent = xmin;
    ctx.send(this.walsender, { type: 'HotStandbyFeedback', xmin, replyTime: ctx.now() } satisfies HotStandbyFeedback);
  }

  private hotStandbyFeedback: boolean;
  private standbyXmin = 0;
  private feedbackSent: number | null = null;

  private sendStatus(replyRequested: boolean, ctx: Context): void {
    if (this.walsender === null) return;
    const key = `${this.written}/${this.flushed}/${this.applied}`;
    if (!replyRequested && key === this.lastReported && ctx.now() - this.lastSent < this.statusIntervalMs) return;
    this.lastReported = key;
    this.lastSent = ctx.now();
    ctx.send(this.walsender, {
      // What is replayed was on disk here first (the local WAL a restart began with included).
      type: 'StandbyStatusUpdate', write: Math.max(this.written, this.flushed, this.applied), flush: Math.max(this.flushed, this.applied), apply: this.applied,
      replyTime: ctx.now(), replyRequested: false,
    } satisfies StandbyStatusUpdate);
    this.report(ctx);
  }

  private tickMs(): number {
    const candidates = [this.statusIntervalMs, this.receiverTimeoutMs / 2].filter((v) => v > 0);
    return Math.max(10, Math.min(1000, ...candidates));
  }

  private tick(ctx: Context): void {
    this.tickTimer = ctx.after(this.tickMs(), { type: 'ReceiverTick' });
    if (this.phase !== 'streaming') return;
    if (this.receiverTimeoutMs > 0 && ctx.now() - this.lastReceived > this.receiverTimeoutMs) {
      ctx.log('fatal', 'terminating walreceiver due to timeout');
      return this.retryLater(ctx);
    }
    if (this.statusIntervalMs > 0 && ctx.now() - this.lastSent >= this.statusIntervalMs) {
      this.lastReported = '';
      this.sendStatus(false, ctx);
      if (this.hotStandbyFeedback) this.sendFeedback(true, ctx);
    }
  }

  /** The connection failed or broke: say so as PostgreSQL does, and try again later. */
  private lost(what: string, error: PgErrorFields, ctx: Context): void {
    // What the server said carries its severity, as libpq shows it; what the client found itself does not.
    const clientSide = error.code === SqlState.UnableToConnect || error.code === SqlState.ConnectionFailure || error.message.startsWith('fe_sendauth');
    ctx.log('fatal', `${what}: ${clientSide ? '' : `${error.severity ?? 'ERROR'}:  `}${error.message}`);
    if (error.detail !== undefined) ctx.log('info', `DETAIL:  ${error.detail}`);
    this.retryLater(ctx);
  }

  private retryLater(ctx: Context): void {
    if (this.walsender !== null) ctx.send(this.walsender, { type: 'ReplDisconnect' });
    this.walsender = null;
    this.startPending = false;
    this.startRequested = false;
    // What came on the lost connection and is not written yet is asked for again.
    this.queue.length = 0;
    this.unwatch(ctx);
    this.auth = null;
    this.phase = 'waiting';
    if (this.args.exitOnLoss === true) {
      ctx.stop(ctx.self, NORMAL);
      return;
    }
    this.report(ctx);
    if (this.attemptTimer === null) this.attemptTimer = ctx.after(this.retryIntervalMs, { type: 'Retry' });
  }

  private unwatch(ctx: Context): void {
    if (this.upstream === null || this.args.directory === null) return;
    ctx.send(this.args.directory, { type: 'Unwatch', port: Number(this.conninfo.port ?? '5432'), replyTo: ctx.self } satisfies Unwatch);
    this.upstream = null;
  }

  /** pg_stat_wal_receiver's row. */
  private report(ctx: Context): void {
    const status: ReceiverStatus = {
      pid: this.args.pid, status: this.phase === 'streaming' ? 'streaming' : this.phase === 'waiting' ? 'waiting' : 'starting',
      receiveStartLsn: this.receiveStart, receiveStartTli: this.timeline, writtenLsn: Math.max(this.written, this.flushed), flushedLsn: this.flushed,
      receivedTli: this.timeline, lastMsgSendTime: this.lastSendTime, lastMsgReceiptTime: this.lastReceived === 0 ? null : this.lastReceived,
      latestEndLsn: this.latestEnd, latestEndTime: this.latestEndTime, slotName: this.args.slotName === '' ? null : this.args.slotName,
      senderHost: this.conninfo.host ?? null, senderPort: this.conninfo.port === undefined ? null : Number(this.conninfo.port),
      conninfo: this.args.conninfo.replace(/password=('[^']*'|\S+)/, 'password=********'),
    };
    ctx.send(this.args.shmem, { type: 'ReceiverReport', status } satisfies ReceiverReport);
  }
}

/** PostgreSQL's refusal of a timeline that forked off before where this standby is. */
function forkedOff(timeline: number, current: number, at: Lsn): PgError {
  return new PgError({
    code: SqlState.ObjectNotInPrerequisiteState, severity: 'FATAL',
    message: `new timeline ${timeline} forked off current database system timeline ${current} before current recovery point ${formatLsn(at)}`,
  });
}

export const WALRECEIVER = defineBehaviour(import.meta.url, 'WalReceiver', (args: WalReceiverArgs) => new WalReceiver(args));
