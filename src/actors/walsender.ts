/*
 * walsender.ts — one replication connection on the sending side.
 *
 * The postmaster starts one per `ReplConnect`. It authenticates the client (pg_hba.conf
 * rules, then trust or SCRAM-SHA-256 against the role's verifier, then LOGIN and
 * REPLICATION), then serves its commands: IDENTIFY_SYSTEM, START_REPLICATION and
 * BASE_BACKUP. Every refusal is logged on this server, as PostgreSQL's FATAL lines are, and
 * sent to the client; nothing is streamed after one.
 *
 * Streaming reads WAL from pg_wal (never past what the walwriter has flushed: a standby
 * must not get ahead of its primary's disk) in pieces of at most MAX_SEND_SIZE, keeping at
 * most SEND_WINDOW unacknowledged, so a slow standby slows the sending, not the mailboxes.
 * States are PostgreSQL's: startup, catchup (behind the flush position), streaming (caught
 * up once), backup, stopping (the server shuts down: everything flushed, the shutdown
 * checkpoint included, is sent and the standby's flush awaited before exit). Keepalives ask
 * for a reply when half of wal_sender_timeout passes in silence; a standby silent for all of
 * it is dropped: "terminating walsender process due to replication timeout".
 *
 * Each change of position is reported to shmem, which serves pg_stat_replication and moves
 * the slot's restart_lsn to the standby's flush position.
 */
import { PgError, SqlState } from '../errors.js';
import { defineBehaviour, NORMAL, type Actor, type ActorRef, type ExitReason, type Message } from '../runtime/actor.js';
import type { Context, TimerId } from '../runtime/context.js';
import type { IoResult } from '../runtime/io.js';
import { hbaRejection, matchHba, type HbaRule } from '../replication/hba.js';
import { LagTracker } from '../replication/lag.js';
import {
  MAX_SEND_SIZE, SEND_WINDOW,
  type AuthOk, type AuthRequest, type BackupEnd, type BackupFile, type BackupStart, type CopyBoth, type EndOfStream, type PasswordMessage,
  type HotStandbyFeedback, type PrimaryKeepalive, type ReplError, type ScramClientFinal, type ScramClientFirst, type ScramServerFirst, type StandbyStatusUpdate,
  type StartReplication, type SystemIdentified, type TimelineHistory, type TimelineHistoryFile, type Unwatch, type Watch, type XLogData,
} from '../replication/protocol.js';
import { historyFileName, timelineOfSegment, timelineSpans, type HistoryEntry, type TimelineSpan } from '../wal/timeline.js';
import { ScramServer, scramVerifier } from '../replication/scram.js';
import { formatLsn, type Lsn } from '../wal/lsn.js';
import { parseSegmentFileName, segmentFileName, segmentStart, segnoOf } from '../wal/segment.js';
import type { CheckpointNow } from './checkpointer.js';
import type { BackupHold, RoleInfo, RoleLookup, SlotAcquire, SlotAcquired, WalSenderGone, WalSenderReport } from './shmem.js';
import type { WalFlushed, WalFlushSubscribe, WalStatus, WalStatusRequest } from './walwriter.js';
import { IMAGE_PATH } from './startup.js';
import { CONTROL_FILE_PATH, decodeControlFile, encodeControlFile } from '../storage/control.js';
import { decodeImage } from './shmem.js';

export interface WalSenderArgs {
  readonly client: ActorRef;
  /** The client's number for this connection, carried by everything sent to it. */
  readonly connection: number;
  readonly user: string;
  readonly applicationName: string;
  readonly address: string;
  /** The number pg_stat_replication shows as the walsender's pid. */
  readonly pid: number;
  readonly dataDir: string;
  readonly shmem: ActorRef;
  readonly walwriter: ActorRef;
  readonly checkpointer: ActorRef;
  readonly hba: readonly HbaRule[];
  readonly walSenderTimeoutMs: number;
  readonly systemIdentifier: string;
  readonly timeline: number;
  /** The history of `timeline` (its ancestors and their switch points): old segments are read from their own timelines' files. */
  readonly history?: readonly HistoryEntry[];
  readonly segmentSize: number;
  readonly directory: ActorRef | null;
  /** The standby this connection comes from, if a walreceiver: its going away ends us. */
  readonly clientServer: { readonly port: number; readonly postmaster: ActorRef } | null;
  /** This server's own port in the address book (a partition may stand between it and the standby). */
  readonly serverPort: number | null;
}

export type WalSenderState = 'startup' | 'catchup' | 'streaming' | 'backup' | 'stopping';

type Phase = 'auth' | 'ready' | 'streaming' | 'backup' | 'done';

/** Files of a data directory a base backup copies besides WAL and the state image (as pg_basebackup, not pg_replslot, logs or standby.signal). */
const BACKUP_CONFIG_FILES = ['postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf'];

class WalSender implements Actor {
  private phase: Phase = 'auth';
  private state: WalSenderState = 'startup';
  private scram: ScramServer | null = null;
  private method: 'trust' | 'scram-sha-256' | 'password' = 'trust';
  private role: RoleInfo['role'] = null;
  /** Everything below this is on the walwriter's disk. */
  private flushed: Lsn = 0;
  private sent: Lsn = 0;
  private reading = false;
  private readTarget: Lsn = 0;
  /** Stopping: the walwriter has said where WAL ends. */
  private endKnown = false;
  /** Where START_REPLICATION began: the send window counts from here until the first reply. */
  private streamStart: Lsn = 0;
  private slot: string | null = null;
  private write: Lsn = 0;
  private flush: Lsn = 0;
  private apply: Lsn = 0;
  private replyTime: number | null = null;
  private lastHeard = 0;
  private pinged = false;
  private timer: TimerId | null = null;
  private readonly lag = new LagTracker();
  private stopReason: ExitReason | null = null;
  private backup: { startLsn: Lsn; endLsn: Lsn; files: string[]; image: Uint8Array | null } | null = null;

  constructor(private readonly args: WalSenderArgs) {}

  start(ctx: Context): void {
    this.lastHeard = ctx.now();
    const client = this.args.clientServer;
    if (client !== null && this.args.directory !== null) {
      ctx.send(this.args.directory, {
        type: 'Watch', port: client.port, postmaster: client.postmaster, ...(this.args.serverPort === null ? {} : { from: this.args.serverPort }), replyTo: ctx.self,
      } satisfies Watch);
    }
    const conn = { type: 'host' as const, database: 'replication', user: this.args.user, address: this.args.address, replication: true };
    const rule = matchHba(this.args.hba, conn);
    const refused = hbaRejection(conn, rule);
    if (refused !== null || rule === null) return this.fail(refused!, ctx);
    this.method = rule.method === 'trust' ? 'trust' : rule.method === 'password' ? 'password' : 'scram-sha-256';
    if (rule.method === 'reject') return this.fail(hbaRejection(conn, rule)!, ctx);
    ctx.send(this.args.shmem, { type: 'RoleLookup', name: this.args.user, replyTo: ctx.self } satisfies RoleLookup);
  }

  stopping(reason: ExitReason, ctx: Context): 'later' | 'now' {
    this.stopReason = reason;
    if (this.phase !== 'streaming' || reason.kind === 'killed') {
      this.leave(ctx);
      return 'now';
    }
    // Shutdown: what is flushed (the shutdown checkpoint included) goes out, and the standby's
    // flush is awaited. Where WAL ends is asked first: the last WalFlushed may still be on its way.
    this.state = 'stopping';
    this.report(ctx);
    ctx.send(this.args.walwriter, { type: 'WalStatusRequest', replyTo: ctx.self } satisfies WalStatusRequest);
    return 'later';
  }

  receive(msg: Message, ctx: Context): void {
    try {
      this.handle(msg, ctx);
    } catch (err) {
      if (!(err instanceof PgError)) throw err;
      this.fail(err, ctx);
    }
  }

  private handle(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'RoleInfo':
        return this.onRole(msg as RoleInfo, ctx);
      case 'ScramClientFirst':
        return this.onScramFirst(msg as ScramClientFirst, ctx);
      case 'ScramClientFinal': {
        const serverFinal = this.scram!.handleFinal((msg as ScramClientFinal).data);
        return this.authorized(serverFinal, ctx);
      }
      case 'PasswordMessage': {
        // Cleartext password (pg_hba.conf "password"), checked against the SCRAM verifier.
        const verifier = this.role?.verifier ?? null;
        if (verifier === null || !passwordMatches((msg as PasswordMessage).password, verifier)) throw this.passwordFailed();
        return this.authorized(null, ctx);
      }
      case 'IdentifySystem':
      case 'StartReplication':
      case 'BaseBackup':
      case 'TimelineHistory':
        // Commands wait for the walwriter's first word on where WAL is flushed.
        if (!this.flushKnown) {
          this.deferred.push(msg);
          return;
        }
        return this.command(msg, ctx);
      case 'SlotAcquired':
        return this.onSlotAcquired(msg as SlotAcquired, ctx);
      case 'WalFlushed':
        this.flushed = Math.max(this.flushed, (msg as WalFlushed).flushed);
        if (!this.flushKnown) {
          this.flushKnown = true;
          for (const command of this.deferred.splice(0)) this.command(command, ctx);
        }
        if (this.phase === 'streaming') this.pump(ctx);
        if (this.phase === 'backup') this.backupStep(ctx);
        return;
      case 'WalStatus':
        this.flushed = Math.max(this.flushed, (msg as WalStatus).flushedLsn);
        this.endKnown = true;
        this.pump(ctx);
        this.finishIfDrained(ctx);
        return;
      case 'WalRead':
        return this.onWalRead(msg as IoResult, ctx);
      case 'StandbyStatusUpdate':
        return this.onReply(msg as StandbyStatusUpdate, ctx);
      case 'HistoryRead':
        return this.onHistoryRead(msg as IoResult, ctx);
      case 'HotStandbyFeedback': {
        // The standby's oldest snapshot (0: none, or feedback turned off): VACUUM here keeps what it may see.
        this.lastHeard = ctx.now();
        const xmin = (msg as HotStandbyFeedback).xmin;
        this.xmin = xmin === 0 ? null : xmin;
        this.feedback = true;
        this.report(ctx);
        return;
      }
      case 'SenderTick':
        return this.tick(ctx);
      case 'ServerGone':
        // The standby went away without a goodbye (killed, crashed): its connection is gone.
        if (this.phase === 'done') return;
        ctx.log('info', 'unexpected EOF on standby connection');
        this.phase = 'done';
        this.leave(ctx);
        ctx.stop(ctx.self, this.stopReason ?? NORMAL);
        return;
      case 'ReplDisconnect':
        this.phase = 'done';
        this.leave(ctx);
        ctx.stop(ctx.self, NORMAL);
        return;
      case 'CheckpointDone':
        ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/${IMAGE_PATH}` }, 'BackupImageRead');
        return;
      case 'BackupImageRead':
        return this.onBackupImage(msg as IoResult, ctx);
      case 'BackupFileRead':
        return this.onBackupFile(msg as IoResult, ctx);
    }
  }

  private flushKnown = false;
  private readonly deferred: Message[] = [];

  private command(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'IdentifySystem':
        this.tell(ctx, {
          type: 'SystemIdentified', systemId: this.args.systemIdentifier, timeline: this.args.timeline,
          xlogpos: this.flushed, walSegmentSize: this.args.segmentSize,
        } satisfies SystemIdentified);
        return;
      case 'StartReplication':
        return this.startReplication(msg as StartReplication, ctx);
      case 'BaseBackup':
        return this.startBackup(ctx);
      case 'TimelineHistory': {
        const timeline = (msg as TimelineHistory).timeline;
        if (timeline <= 1 || timeline > this.args.timeline) {
          throw new PgError({ code: SqlState.UndefinedFile, message: `could not open file "pg_wal/${historyFileName(timeline)}": No such file or directory` });
        }
        this.historyWanted = timeline;
        ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/pg_wal/${historyFileName(timeline)}` }, 'HistoryRead');
        return;
      }
    }
  }

  private historyWanted = 0;

  private onHistoryRead(io: IoResult, ctx: Context): void {
    const filename = historyFileName(this.historyWanted);
    const content = io.ok ? (io.value as Uint8Array | null) : null;
    if (content === null) throw new PgError({ code: SqlState.UndefinedFile, message: `could not open file "pg_wal/${filename}": No such file or directory` });
    this.tell(ctx, { type: 'TimelineHistoryFile', timeline: this.historyWanted, filename, content } satisfies TimelineHistoryFile);
  }

  /** The timeline and its ancestors, as spans of WAL. */
  private get spans(): TimelineSpan[] {
    return timelineSpans(this.args.timeline, this.args.history ?? []);
  }

  /** The file holding segment `segno` (an older timeline's, before a switch). */
  private segmentName(segno: number): string {
    return segmentFileName(timelineOfSegment(this.spans, segno, this.args.segmentSize), segno, this.args.segmentSize);
  }

  /** Sends to the client, tagged with its connection number. */
  private tell<M extends Message>(ctx: Context, msg: M): void {
    ctx.send(this.args.client, { ...msg, connection: this.args.connection });
  }

  private passwordFailed(): PgError {
    return new PgError({ code: SqlState.InvalidPassword, severity: 'FATAL', message: `password authentication failed for user "${this.args.user}"` });
  }

  private onRole(info: RoleInfo, ctx: Context): void {
    this.role = info.role;
    if (this.method === 'trust') return this.authorized(null, ctx);
    this.tell(ctx, { type: 'AuthRequest', method: this.method, walsender: ctx.self } satisfies AuthRequest);
  }

  private onScramFirst(msg: ScramClientFirst, ctx: Context): void {
    const verifier = this.role?.verifier ?? null;
    if (verifier === null || !verifier.startsWith('SCRAM-SHA-256$')) {
      ctx.log('info', `DETAIL:  ${this.role === null ? `Role "${this.args.user}" does not exist.` : `User "${this.args.user}" has no password assigned.`}`);
      throw this.passwordFailed();
    }
    this.scram = new ScramServer(this.args.user, verifier, ctx.newId());
    this.tell(ctx, { type: 'ScramServerFirst', data: this.scram.handleFirst(msg.data) } satisfies ScramServerFirst);
  }

  /** Authentication passed: the role must exist, log in, and have REPLICATION (or be a superuser). */
  private authorized(serverFinal: string | null, ctx: Context): void {
    const role = this.role;
    if (role === null) throw new PgError({ code: SqlState.InvalidAuthorizationSpecification, severity: 'FATAL', message: `role "${this.args.user}" does not exist` });
    if (!role.login) throw new PgError({ code: SqlState.InvalidAuthorizationSpecification, severity: 'FATAL', message: `role "${this.args.user}" is not permitted to log in` });
    if (!role.replication && !role.superuser) {
      throw new PgError({ code: SqlState.InsufficientPrivilege, severity: 'FATAL', message: 'must be superuser or replication role to start walsender' });
    }
    this.phase = 'ready';
    this.tell(ctx, { type: 'AuthOk', serverFinal, walsender: ctx.self } satisfies AuthOk);
    ctx.send(this.args.walwriter, { type: 'WalFlushSubscribe', replyTo: ctx.self } satisfies WalFlushSubscribe);
    this.report(ctx);
  }

  private startReplication(msg: StartReplication, ctx: Context): void {
    if (this.phase !== 'ready') throw new PgError({ code: SqlState.ProtocolViolation, message: 'START_REPLICATION is not allowed now' });
    if (msg.timeline !== this.args.timeline) {
      const span = this.spans.find((s) => s.timeline === msg.timeline);
      if (span === undefined) throw new PgError({ code: SqlState.UndefinedObject, message: `requested timeline ${msg.timeline} is not in this server's history` });
      if (span.end !== null && msg.startLsn > span.end) {
        throw new PgError({
          code: SqlState.ObjectNotInPrerequisiteState,
          message: `requested starting point ${formatLsn(msg.startLsn)} on timeline ${msg.timeline} is not in this server's history`,
          detail: `This server's history forked from timeline ${msg.timeline} at ${formatLsn(span.end)}.`,
        });
      }
    }
    if (msg.startLsn > this.flushed) {
      throw new PgError({
        code: SqlState.ObjectNotInPrerequisiteState,
        message: `requested starting point ${formatLsn(msg.startLsn)} is ahead of the WAL flush position of this server ${formatLsn(this.flushed)}`,
      });
    }
    this.sent = msg.startLsn;
    this.streamStart = msg.startLsn;
    if (msg.slot === null) return this.beginStreaming(ctx);
    this.slot = msg.slot;
    ctx.send(this.args.shmem, { type: 'SlotAcquire', slot: msg.slot, pid: this.args.pid, startLsn: msg.startLsn, replyTo: ctx.self } satisfies SlotAcquire);
  }

  private onSlotAcquired(msg: SlotAcquired, ctx: Context): void {
    if (!msg.ok) {
      this.slot = null;
      throw new PgError(msg.error);
    }
    this.beginStreaming(ctx);
  }

  private beginStreaming(ctx: Context): void {
    this.phase = 'streaming';
    this.state = 'catchup';
    this.tell(ctx, { type: 'CopyBoth' } satisfies CopyBoth);
    this.lastHeard = ctx.now();
    this.timer = ctx.after(this.tickMs(), { type: 'SenderTick' });
    this.report(ctx);
    this.pump(ctx);
    // Nothing to send: caught up already.
    if (!this.reading && this.sent >= this.flushed) {
      this.state = 'streaming';
      this.report(ctx);
    }
  }

  private tickMs(): number {
    return this.args.walSenderTimeoutMs > 0 ? Math.max(1, Math.floor(this.args.walSenderTimeoutMs / 4)) : 10_000;
  }

  /** Reads the next piece of flushed WAL, if the window allows and no read is in flight. */
  private pump(ctx: Context): void {
    if (this.reading || this.sent >= this.flushed) return;
    if (this.sent - Math.max(this.write, this.streamStart) >= SEND_WINDOW && this.state !== 'stopping') return;
    const segno = segnoOf(this.sent, this.args.segmentSize);
    const segmentEnd = segmentStart(segno + 1, this.args.segmentSize);
    const length = Math.min(this.flushed, segmentEnd, this.sent + MAX_SEND_SIZE) - this.sent;
    this.reading = true;
    this.readTarget = this.flushed;
    ctx.io({
      kind: 'file.read', path: this.walPath(segno),
      offset: this.sent - segmentStart(segno, this.args.segmentSize), length,
    }, 'WalRead');
  }

  private walPath(segno: number): string {
    return `${this.args.dataDir}/pg_wal/${this.segmentName(segno)}`;
  }

  private onWalRead(io: IoResult, ctx: Context): void {
    this.reading = false;
    if (this.phase !== 'streaming') return;
    const bytes = io.ok ? (io.value as Uint8Array | null) : null;
    if (bytes === null || bytes.length === 0) {
      const name = this.segmentName(segnoOf(this.sent, this.args.segmentSize));
      throw new PgError({ code: SqlState.UndefinedFile, message: `requested WAL segment ${name} has already been removed` });
    }
    const start = this.sent;
    this.sent += bytes.length;
    this.lag.sent(this.sent, Math.round(ctx.now() * 1000));
    this.tell(ctx, { type: 'XLogData', start, walEnd: this.flushed, sendTime: ctx.now(), bytes } satisfies XLogData);
    // Caught up: this read reached what was flushed when it was issued (more may have come since).
    if (this.state === 'catchup' && this.sent >= this.readTarget) {
      this.state = 'streaming';
      ctx.log('debug', `"${this.args.applicationName}" has now caught up with upstream server`);
      this.report(ctx);
    }
    this.pump(ctx);
  }

  private onReply(msg: StandbyStatusUpdate, ctx: Context): void {
    this.lastHeard = ctx.now();
    this.pinged = false;
    this.write = Math.max(this.write, msg.write);
    this.flush = Math.max(this.flush, msg.flush);
    this.apply = Math.max(this.apply, msg.apply);
    this.replyTime = msg.replyTime;
    this.lag.reply({ write: this.write, flush: this.flush, apply: this.apply }, this.sent, Math.round(ctx.now() * 1000));
    this.report(ctx);
    if (msg.replyRequested) this.keepalive(false, ctx);
    this.pump(ctx);
    if (this.state === 'stopping') this.finishIfDrained(ctx);
  }

  private tick(ctx: Context): void {
    this.timer = ctx.after(this.tickMs(), { type: 'SenderTick' });
    const timeout = this.args.walSenderTimeoutMs;
    const silent = ctx.now() - this.lastHeard;
    if (timeout > 0 && silent >= timeout) {
      ctx.log('info', 'terminating walsender process due to replication timeout');
      this.phase = 'done';
      this.leave(ctx);
      ctx.stop(ctx.self, this.stopReason ?? NORMAL);
      return;
    }
    if (timeout > 0 && silent >= timeout / 2 && !this.pinged) {
      this.pinged = true;
      this.keepalive(true, ctx);
    } else if (this.sent >= this.flushed) {
      this.keepalive(false, ctx);
    }
  }

  private keepalive(replyRequested: boolean, ctx: Context): void {
    this.tell(ctx, { type: 'PrimaryKeepalive', walEnd: this.flushed, sendTime: ctx.now(), replyRequested } satisfies PrimaryKeepalive);
  }

  private finishIfDrained(ctx: Context): void {
    if (this.state !== 'stopping' || !this.endKnown || this.sent < this.flushed || this.flush < this.sent) return;
    this.tell(ctx, { type: 'EndOfStream', walEnd: this.sent } satisfies EndOfStream);
    this.phase = 'done';
    this.leave(ctx);
    ctx.stop(ctx.self, this.stopReason ?? NORMAL);
  }

  /** What pg_stat_replication shows for this connection. */
  private report(ctx: Context): void {
    ctx.send(this.args.shmem, {
      type: 'WalSenderReport', pid: this.args.pid, usename: this.args.user, applicationName: this.args.applicationName,
      clientAddr: this.args.address, state: this.state, sent: this.phase === 'streaming' ? this.sent : null,
      write: this.phase === 'streaming' ? this.write : null, flush: this.phase === 'streaming' ? this.flush : null,
      apply: this.phase === 'streaming' ? this.apply : null,
      writeLag: this.lag.writeLag, flushLag: this.lag.flushLag, replayLag: this.lag.replayLag, replyTime: this.replyTime,
      slot: this.slot, backendStart: this.startedAt ??= ctx.now(), xmin: this.xmin, feedback: this.feedback,
    } satisfies WalSenderReport);
  }

  private startedAt: number | null = null;
  /** hot_standby_feedback: the standby's xmin, and whether it has said anything about it yet. */
  private xmin: number | null = null;
  private feedback = false;

  /** Gone: pg_stat_replication forgets us, the slot is free again, the walwriter stops telling us. */
  private leave(ctx: Context): void {
    if (this.timer !== null) ctx.cancel(this.timer);
    this.timer = null;
    ctx.send(this.args.shmem, { type: 'WalSenderGone', pid: this.args.pid, slot: this.slot } satisfies WalSenderGone);
    ctx.send(this.args.walwriter, { type: 'WalFlushUnsubscribe', replyTo: ctx.self });
    if (this.args.clientServer !== null && this.args.directory !== null) {
      ctx.send(this.args.directory, { type: 'Unwatch', port: this.args.clientServer.port, replyTo: ctx.self } satisfies Unwatch);
    }
    if (this.backup !== null) ctx.send(this.args.shmem, { type: 'BackupHold', key: `backup-${this.args.pid}`, lsn: null } satisfies BackupHold);
  }

  /** Logged here and told to the client; this connection ends. */
  private fail(error: PgError, ctx: Context): void {
    ctx.log(error.severity === 'FATAL' ? 'fatal' : 'error', error.message);
    if (error.detail !== undefined) ctx.log('info', `DETAIL:  ${error.detail}`);
    this.tell(ctx, { type: 'ReplError', error: error.toFields() } satisfies ReplError);
    this.phase = 'done';
    this.leave(ctx);
    ctx.stop(ctx.self, NORMAL);
  }

  // --- BASE_BACKUP -------------------------------------------------------------------

  /**
   * A consistent copy while the server keeps writing: the WAL from now on is held (a
   * backup hold works like a slot for the checkpointer), a checkpoint gives the image and
   * its redo point (the backup's start), then the configuration files, the image, and every
   * WAL segment from the start to the flush position at that moment (the backup's end) are
   * sent, the control file last. The standby is consistent once it has replayed to the end.
   */
  private startBackup(ctx: Context): void {
    if (this.phase !== 'ready') throw new PgError({ code: SqlState.ProtocolViolation, message: 'BASE_BACKUP is not allowed now' });
    this.phase = 'backup';
    this.state = 'backup';
    this.backup = { startLsn: 0, endLsn: 0, files: [], image: null };
    ctx.send(this.args.shmem, { type: 'BackupHold', key: `backup-${this.args.pid}`, lsn: 0 } satisfies BackupHold);
    this.report(ctx);
    ctx.send(this.args.checkpointer, { type: 'CheckpointNow', replyTo: ctx.self, tag: 0, reason: 'force wait' } satisfies CheckpointNow);
  }

  private onBackupImage(io: IoResult, ctx: Context): void {
    const image = io.ok ? (io.value as Uint8Array | null) : null;
    if (image === null) throw new PgError({ code: SqlState.InternalError, message: `could not read file "${IMAGE_PATH}"` });
    const backup = this.backup!;
    backup.image = image;
    backup.startLsn = decodeImage(image).redoLsn;
    backup.endLsn = Math.max(this.flushed, backup.startLsn);
    ctx.send(this.args.shmem, { type: 'BackupHold', key: `backup-${this.args.pid}`, lsn: backup.startLsn } satisfies BackupHold);
    const first = segnoOf(backup.startLsn, this.args.segmentSize);
    const last = segnoOf(Math.max(backup.endLsn - 1, backup.startLsn), this.args.segmentSize);
    const segments: string[] = [];
    for (let s = first; s <= last; s++) segments.push(`pg_wal/${this.segmentName(s)}`);
    // The history files of this timeline's lineage go too, as pg_basebackup copies them: the
    // copy recovers along the same timeline.
    const histories = this.spans.filter((s) => s.timeline > 1).map((s) => `pg_wal/${historyFileName(s.timeline)}`);
    backup.files = [...BACKUP_CONFIG_FILES, ...histories, ...segments, CONTROL_FILE_PATH];
    const totalBytes = image.length + segments.length * this.args.segmentSize;
    this.tell(ctx, { type: 'BackupStart', startLsn: backup.startLsn, timeline: this.args.timeline, totalBytes } satisfies BackupStart);
    this.tell(ctx, { type: 'BackupFile', path: IMAGE_PATH, bytes: image } satisfies BackupFile);
    this.backupStep(ctx);
  }

  /** Sends the next file; WAL only once it is flushed up to the backup's end. */
  private backupStep(ctx: Context): void {
    const backup = this.backup;
    if (backup === null || this.reading) return;
    const next = backup.files[0];
    if (next === undefined) return;
    if (next.startsWith('pg_wal/') && this.flushed < backup.endLsn) return;
    this.reading = true;
    ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/${next}` }, 'BackupFileRead');
  }

  private onBackupFile(io: IoResult, ctx: Context): void {
    this.reading = false;
    const backup = this.backup!;
    const path = backup.files.shift()!;
    let bytes = io.ok ? (io.value as Uint8Array | null) : null;
    if (bytes === null) {
      if (path.startsWith('pg_wal/') || path === CONTROL_FILE_PATH) throw new PgError({ code: SqlState.UndefinedFile, message: `could not open file "${path}": No such file or directory` });
      // A configuration file this server does not have is not copied.
      return this.backupStep(ctx);
    }
    const segment = path.startsWith('pg_wal/') ? parseSegmentFileName(path.slice('pg_wal/'.length), this.args.segmentSize) : null;
    if (segment !== null && segment.segno === segnoOf(backup.endLsn - 1, this.args.segmentSize)) {
      // Nothing past the backup's end: what follows may not be flushed yet (pg_basebackup -X stream ships flushed WAL only).
      const end = backup.endLsn - segmentStart(segment.segno, this.args.segmentSize);
      if (end < bytes.length) {
        bytes = bytes.slice();
        bytes.fill(0, end);
      }
    }
    if (path === CONTROL_FILE_PATH) {
      // The copy starts from the backup's checkpoint and is consistent at its end.
      const control = decodeControlFile(bytes, path);
      bytes = encodeControlFile({
        ...control, state: 'in production', checkpointLsn: backup.startLsn, redoLsn: backup.startLsn, minRecoveryPoint: backup.endLsn, time: ctx.now(),
      });
    }
    this.tell(ctx, { type: 'BackupFile', path, bytes } satisfies BackupFile);
    if (backup.files.length > 0) return this.backupStep(ctx);
    this.tell(ctx, { type: 'BackupEnd', endLsn: backup.endLsn } satisfies BackupEnd);
    ctx.send(this.args.shmem, { type: 'BackupHold', key: `backup-${this.args.pid}`, lsn: null } satisfies BackupHold);
    this.backup = null;
    this.phase = 'ready';
    this.state = 'startup';
    this.report(ctx);
  }
}

function passwordMatches(password: string, verifier: string): boolean {
  const parts = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(verifier);
  if (parts === null) return false;
  return scramVerifier(password, Buffer.from(parts[2]!, 'base64'), Number(parts[1])) === verifier;
}

export const WALSENDER = defineBehaviour(import.meta.url, 'WalSender', (args: WalSenderArgs) => new WalSender(args));
