/*
 * startup.ts — bringing the cluster's state back: initdb on a new data directory, crash
 * recovery after a crash, a plain start after a clean shutdown.
 *
 * It reads global/pg_control and the image of the last checkpoint, hands the image to shmem,
 * then reads WAL from the checkpoint's redo point to the end of valid WAL and sends the
 * records to shmem to replay, in batches, through the same redo the primary used. It logs
 * as PostgreSQL does ("database system was interrupted; last known up at ...", "redo starts
 * at ...", "redo done at ...") and reports `$started` only when recovery is complete, so the
 * postmaster starts the walwriter and lets sessions in only then. A segment from another
 * cluster or timeline, or a damaged control file, stops the server with a FATAL.
 *
 * In standby mode (standby.signal) recovery never ends by itself. After the local WAL it
 * goes round PostgreSQL's WAL sources (27.2.2): the archive (restore_command, one segment at
 * a time) until it runs out, then pg_wal, then streaming (it asks the postmaster for a
 * walreceiver and replays what that receives, as it arrives, from in-memory copies of the
 * segments being filled), and when streaming fails or ends, back to the archive. Without
 * restore_command it only streams; without primary_conninfo it is a warm standby, fed by the
 * archive and pg_wal alone, asking again every wal_retrieve_retry_interval. It tells the
 * postmaster when replay has passed the minimum recovery point (the end of the base backup,
 * or what a previous run had replayed): the state is consistent and read-only sessions may
 * come in. It also loads the replication slots from pg_replslot, as PostgreSQL's startup does.
 *
 * Timelines: recovery follows the newest timeline pg_wal has a history file of, reading each
 * segment from the timeline whose file holds it; a walreceiver that finds its upstream on a
 * newer timeline offers it here, and it is followed unless replay went past the fork. On
 * promotion (the postmaster's Promote, once the walreceiver is gone) it replays what the
 * archive and pg_wal have, then ends recovery on a new timeline: history file, the switch
 * segment copied and the old one renamed .partial, standby.signal removed, control file.
 */
import { PgError, SqlState } from '../errors.js';
import { reportingFatal } from './fatal.js';
import { defineBehaviour, NORMAL, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context, TimerId } from '../runtime/context.js';
import type { FileOp } from '../runtime/fileio.js';
import type { IoResult } from '../runtime/io.js';
import { CONTROL_FILE_PATH, decodeControlFile, encodeControlFile, newSystemIdentifier, type ControlFile } from '../storage/control.js';
import { DatabaseState } from '../storage/state.js';
import { FirstNormalXid } from '../storage/clog.js';
import { FirstNormalObjectId } from '../storage/catalog.js';
import { renderAutoConf } from '../config/conffile.js';
import { DEFAULT_HBA_CONF } from '../replication/hba.js';
import { formatLsn, maxAlign, type Lsn } from '../wal/lsn.js';
import { WalReader } from '../wal/reader.js';
import { formatHistory, historyFileName, parseHistory, parseHistoryFileName, switchSegmentCopy, timelineSpans, type HistoryEntry } from '../wal/timeline.js';
import type { WalRecord } from '../wal/record.js';
import { segmentFileName, segmentStart, segnoOf, type SegmentNumber } from '../wal/segment.js';
import { decodeImage, encodeImage, type LoadImage, type LoadSlots, type RecoveryDone, type Replay, type ReplayListener } from './shmem.js';
import { decodeSlot, slotPath, type PersistedSlot } from '../replication/slots.js';
import { buildRestoreCommand, restoredLine, restoreFailureLines } from '../archive/command.js';
import { RestoreJob } from '../archive/store.js';
import type { ProcessRunResult } from '../runtime/shell.js';

export const IMAGE_PATH = 'base/state.image';

export interface StartupArgs {
  readonly dataDir: string;
  readonly shmem: ActorRef;
  /** standby.signal was found: replay streamed WAL until promotion. */
  readonly standbyMode?: boolean;
  /** restore_command: what the local WAL lacks is restored from the archive, segment by segment. */
  readonly restoreCommand?: string;
  /**
   * restore_library = 'basic_archive': restored by walship's own reader from this directory
   * (basic_archive.archive_directory), compressed or not, instead of by a command.
   */
  readonly restoreDirectory?: string;
  /** primary_conninfo is set: WAL the archive and pg_wal do not have is streamed. */
  readonly streaming?: boolean;
  /** archive_mode: at promotion, the new history file and the old timeline's .partial are marked for archiving. */
  readonly archiveMode?: string;
  /** How long to wait before asking a source again that had nothing (wal_retrieve_retry_interval). */
  readonly retryIntervalMs?: number;
  /** Create the cluster if the data directory has none (initdb). */
  readonly initdb: boolean;
  /** For initdb: the segment size to fix for the cluster's life. */
  readonly walSegmentSize: number;
  /** For initdb: written as postgresql.conf. */
  readonly postgresqlConf: string;
}

const REPLAY_BATCH = 1000;

/** Startup asks the postmaster for a walreceiver streaming from `startLsn`. */
export interface StartWalReceiver extends Message {
  readonly type: 'StartWalReceiver';
  readonly startLsn: Lsn;
  readonly timeline: number;
  readonly systemIdentifier: string;
  readonly segmentSize: number;
  /** The history of `timeline`: the walreceiver names segment files by it. */
  readonly history: readonly HistoryEntry[];
}
/** The standby now follows a newer timeline (its upstream was promoted). */
export interface TimelineChanged extends Message { readonly type: 'TimelineChanged'; readonly timeline: number; readonly history: readonly HistoryEntry[] }
/** The walreceiver got the upstream's newer timeline's history: may recovery follow it? */
export interface TimelineOffered extends Message { readonly type: 'TimelineOffered'; readonly timeline: number; readonly history: readonly HistoryEntry[]; readonly replyTo: ActorRef }
/** Startup's answer: null to follow, else where recovery already is (past the fork). */
export interface TimelineVerdict extends Message { readonly type: 'TimelineVerdict'; readonly timeline: number; readonly refusedAt: Lsn | null }
/** The walreceiver fetched the upstream's newer timeline's history (written to pg_wal): recovery follows it. */
export interface TimelineHistoryFetched extends Message { readonly type: 'TimelineHistoryFetched'; readonly timeline: number; readonly history: readonly HistoryEntry[] }
/** After a reload: where WAL may come from now. */
export interface WalSourceSettings extends Message {
  readonly type: 'WalSourceSettings';
  readonly restoreCommand: string;
  readonly restoreDirectory: string;
  readonly streaming: boolean;
  readonly retryIntervalMs: number;
}
/** Replay has reached the minimum recovery point: read-only sessions may start. */
/** Replay has passed the minimum recovery point; with the WAL's identity, for cascading walsenders. */
export interface ConsistentState extends Message {
  readonly type: 'ConsistentState';
  readonly lsn: Lsn;
  readonly systemIdentifier: string;
  readonly timeline: number;
  readonly segmentSize: number;
  readonly history: readonly HistoryEntry[];
}
/** The postmaster tells startup which walreceiver to tell of replay progress (null: none now). */
export interface WalReceiverAttached extends Message { readonly type: 'WalReceiverAttached'; readonly walreceiver: ActorRef | null }
/** WAL the walreceiver has written and flushed, for replay. */
export interface WalReceived extends Message { readonly type: 'WalReceived'; readonly chunks: readonly { readonly start: Lsn; readonly bytes: Uint8Array }[] }

/**
 * Where a standby's WAL comes from now: its own pg_wal as it was at start ('local'), then
 * the archive, pg_wal, streaming, round again (PostgreSQL's XLOG_FROM_ARCHIVE/PG_WAL/STREAM).
 */
type WalSource = 'local' | 'archive' | 'pg_wal' | 'stream';

/** A segment being filled by streaming: its bytes so far. */
interface Filling {
  readonly bytes: Uint8Array;
  filled: number;
}

class Startup implements Actor<IoResult> {
  private control: ControlFile | null = null;
  private reader: WalReader | null = null;
  private replayed = 0;
  private firstLsn: Lsn | null = null;
  private pendingSegment: SegmentNumber | null = null;
  private source: WalSource = 'local';
  /** When the WAL being replayed arrived (streamed, restored or read): hot standby conflicts wait from then. */
  private receivedAt = 0;
  /** When a walreceiver was last asked for (streaming is tried at most once per wal_retrieve_retry_interval). */
  private lastStreamRequest: number | null = null;
  private readonly filling = new Map<SegmentNumber, Filling>();
  private receivedUpTo: Lsn = 0;
  private consistent = false;
  private minRecoveryPoint: Lsn = 0;

  private restoreCommand: string;
  private restoreDirectory: string;
  private streamingConfigured: boolean;
  private retryIntervalMs: number;

  constructor(private readonly args: StartupArgs) {
    this.restoreCommand = args.restoreCommand ?? '';
    this.restoreDirectory = args.restoreDirectory ?? '';
    this.streamingConfigured = args.streaming === true;
    this.retryIntervalMs = args.retryIntervalMs ?? 5_000;
  }

  start(ctx: Context): 'later' {
    this.io(ctx, { kind: 'file.read', path: this.path(CONTROL_FILE_PATH) }, 'ControlRead');
    return 'later';
  }

  receive(msg: IoResult | Message, ctx: Context): void {
    reportingFatal(ctx, () => this.handle(msg as IoResult, ctx));
  }

  private handle(msg: IoResult, ctx: Context): void {
    switch (msg.type) {
      case 'WalReceived':
        return this.onReceived(msg as unknown as WalReceived, ctx);
      case 'WalReceiverAttached':
        // Replay progress goes to it from shmem, which alone knows what is really replayed.
        ctx.send(this.args.shmem, { type: 'ReplayListener', walreceiver: (msg as unknown as WalReceiverAttached).walreceiver } satisfies ReplayListener);
        return;
      case 'RestoreDone':
        return this.onRestoreDone(msg as IoResult, ctx);
      case 'RestoredRead':
        return this.onRestoredRead(msg as IoResult, ctx);
      case 'RestoreStep':
        return this.stepRestore(msg as IoResult, ctx);
      case 'RestoredKept':
        return this.keepStep(msg as IoResult, ctx);
      case 'SourceRetry':
        this.retryTimer = null;
        if (this.promoting) return;
        return this.firstSource(ctx);
      case 'Promote':
        return this.onPromote(ctx);
      case 'PromoteStep':
        return this.promoteStep(msg as IoResult, ctx);
      case 'PromoteProbed':
        return this.onArchiveProbed(msg as IoResult, ctx);
      case 'PromoteArchiveListed':
        return this.onArchiveListed(msg as IoResult, ctx);
      case 'WalSourceSettings': {
        // A reload: the archive and the upstream as they are now (PostgreSQL 13 and later re-read them).
        const m = msg as unknown as WalSourceSettings;
        this.restoreCommand = m.restoreCommand;
        this.restoreDirectory = m.restoreDirectory;
        this.streamingConfigured = m.streaming;
        this.retryIntervalMs = m.retryIntervalMs;
        return;
      }
      case 'TimelineOffered': {
        // As rescanLatestTimeLine: a timeline that forked off before what replay has read is refused.
        const m = msg as unknown as TimelineOffered;
        const fork = m.history.find((e) => e.parent === this.timeline);
        const at = this.reader?.nextLsn ?? 0;
        const refused = fork === undefined || at > fork.switchpoint;
        if (refused) ctx.log('info', `new timeline ${m.timeline} forked off current database system timeline ${this.timeline} before current recovery point ${formatLsn(at)}`);
        ctx.send(m.replyTo, { type: 'TimelineVerdict', timeline: m.timeline, refusedAt: refused ? at : null } satisfies TimelineVerdict);
        return;
      }
      case 'TimelineHistoryFetched': {
        const m = msg as unknown as TimelineHistoryFetched;
        if (m.timeline <= this.timeline || this.reader === null) return;
        this.timeline = m.timeline;
        this.history = [...m.history];
        this.reader.followTimeline(m.timeline, timelineSpans(m.timeline, this.history));
        ctx.log('info', `new target timeline is ${m.timeline}`);
        // What was received on the old timeline past the segment start is streamed again on the new one.
        ctx.send(this.args.shmem, { type: 'TimelineFollowed' });
        ctx.send(ctx.parent, { type: 'TimelineChanged', timeline: m.timeline, history: this.history } satisfies TimelineChanged);
        return;
      }
      case 'NoWalReceiver':
        // primary_conninfo is empty now: streaming failed before it began.
        if (this.source !== 'stream') return;
        this.leaveStreaming();
        if (this.hasArchive()) return this.firstSource(ctx);
        this.source = 'pg_wal';
        this.retryTimer = ctx.after(this.retryIntervalMs, { type: 'SourceRetry' });
        return;
      case 'RestartWalReceiver':
        // The walreceiver ended (streaming failed, or primary_conninfo changed): back to the
        // archive if there is one, else stream on from what we have.
        if (this.source !== 'stream') return;
        if (this.hasArchive()) {
          this.leaveStreaming();
          return this.firstSource(ctx);
        }
        this.requestWalReceiver(ctx);
        return;
    }
    if (!msg.ok) throw new PgError({ code: SqlState.InternalError, severity: 'FATAL', message: `could not access the data directory "${this.args.dataDir}": ${msg.error.message}` });
    switch (msg.type) {
      case 'ControlRead':
        return this.onControl(msg.value as Uint8Array | null, ctx);
      case 'InitStep':
        return this.initStep(ctx);
      case 'Initialized':
        ctx.log('info', 'database cluster initialized');
        this.io(ctx, { kind: 'file.read', path: this.path(CONTROL_FILE_PATH) }, 'ControlRead');
        return;
      case 'ImageRead': {
        const image = msg.value as Uint8Array | null;
        if (image === null) throw new PgError({ code: SqlState.DataCorrupted, severity: 'FATAL', message: `could not open file "${this.path(IMAGE_PATH)}": No such file or directory` });
        this.image = image;
        // The newest timeline pg_wal has a history of is the one to recover along (recovery_target_timeline = latest).
        ctx.io({ kind: 'file.list', dir: this.path('pg_wal') }, 'WalDirListed');
        return;
      }
      case 'WalDirListed': {
        let newest = this.control!.timeline;
        for (const name of (msg.value as string[] | null) ?? []) newest = Math.max(newest, parseHistoryFileName(name) ?? 0);
        this.timeline = newest;
        if (newest === 1) return this.startReplay(ctx);
        ctx.io({ kind: 'file.read', path: this.path(`pg_wal/${historyFileName(newest)}`) }, 'HistoryRead');
        return;
      }
      case 'HistoryRead': {
        const path = this.path(`pg_wal/${historyFileName(this.timeline)}`);
        const bytes = msg.value as Uint8Array | null;
        if (bytes === null) throw new PgError({ code: SqlState.UndefinedFile, severity: 'FATAL', message: `could not open file "${path}": No such file or directory` });
        try {
          this.history = parseHistory(new TextDecoder().decode(bytes), this.timeline, path);
        } catch (err) {
          throw new PgError({ code: SqlState.DataCorrupted, severity: 'FATAL', message: (err as Error).message });
        }
        return this.startReplay(ctx);
      }
      case 'SlotsListed':
        this.slotNames = ((msg.value as string[] | null) ?? []).slice();
        return this.loadSlot(ctx);
      case 'SlotRead': {
        const name = this.slotNames.shift()!;
        const bytes = msg.value as Uint8Array | null;
        if (bytes !== null) this.slots.push(decodeSlot(bytes, this.path(slotPath(name))));
        return this.loadSlot(ctx);
      }
      case 'SegmentRead':
        return this.onSegmentRead(msg, ctx);
      case 'ControlWritten':
        ctx.ready();
        ctx.stop(ctx.self, NORMAL);
        return;
    }
  }

  private onControl(bytes: Uint8Array | null, ctx: Context): void {
    if (bytes === null) {
      if (!this.args.initdb) {
        throw new PgError({ code: SqlState.InternalError, severity: 'FATAL', message: `could not open file "${this.path(CONTROL_FILE_PATH)}": No such file or directory` });
      }
      return this.initdb(ctx);
    }
    const control = decodeControlFile(bytes, this.path(CONTROL_FILE_PATH));
    this.control = control;
    const when = new Date(control.time).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    const standby = this.args.standbyMode === true;
    if (control.state === 'shut down') {
      ctx.log('info', `database system was shut down at ${when}`);
    } else if (control.state === 'shut down in recovery') {
      ctx.log('info', `database system was shut down in recovery at ${when}`);
    } else if (control.state === 'in archive recovery') {
      ctx.log('info', `database system was interrupted while in recovery at log time ${when}`);
    } else {
      ctx.log('info', `database system was interrupted; last known up at ${when}`);
      if (!standby) ctx.log('info', 'database system was not properly shut down; automatic recovery in progress');
    }
    if (standby) ctx.log('info', 'entering standby mode');
    this.io(ctx, { kind: 'file.read', path: this.path(IMAGE_PATH) }, 'ImageRead');
  }

  private image: Uint8Array | null = null;
  /** The timeline recovery follows (the newest with a history in pg_wal), and that history. */
  private timeline = 1;
  private history: HistoryEntry[] = [];

  /** The image and the timeline history in hand: replay begins where the image stands. */
  private startReplay(ctx: Context): void {
    const control = this.control!;
    const image = this.image!;
    // Replay starts where the image stands (see encodeImage), which may be past the control file's redo point.
    const redoLsn = decodeImage(image).redoLsn;
    this.reader = new WalReader({
      systemIdentifier: control.systemIdentifier, timeline: this.timeline, segmentSize: control.walSegmentSize,
      startLsn: startOfRecord(redoLsn), timelines: timelineSpans(this.timeline, this.history),
    });
    ctx.send(this.args.shmem, { type: 'LoadImage', image, standby: this.args.standbyMode === true } satisfies LoadImage);
    if (this.args.standbyMode === true) {
      this.minRecoveryPoint = control.minRecoveryPoint;
      this.checkConsistency(redoLsn, ctx);
    }
    this.image = null;
    ctx.io({ kind: 'file.list', dir: this.path('pg_replslot') }, 'SlotsListed');
  }

  private slotNames: string[] = [];
  private readonly slots: PersistedSlot[] = [];

  /** Reads pg_replslot/<name>/state one at a time, then replay begins. */
  private loadSlot(ctx: Context): void {
    const name = this.slotNames[0];
    if (name !== undefined) {
      ctx.io({ kind: 'file.read', path: this.path(slotPath(name)) }, 'SlotRead');
      return;
    }
    ctx.send(this.args.shmem, { type: 'LoadSlots', slots: this.slots } satisfies LoadSlots);
    this.readWal(ctx);
  }

  private checkConsistency(lsn: Lsn, ctx: Context): void {
    if (this.consistent || lsn < this.minRecoveryPoint) return;
    this.consistent = true;
    ctx.log('info', `consistent recovery state reached at ${formatLsn(lsn)}`);
    const control = this.control!;
    ctx.send(ctx.parent, {
      type: 'ConsistentState', lsn, systemIdentifier: control.systemIdentifier.toString(), timeline: this.timeline, segmentSize: control.walSegmentSize, history: this.history,
    } satisfies ConsistentState);
  }

  private readWal(ctx: Context): void {
    const reader = this.reader!;
    const control = this.control!;
    const standby = this.args.standbyMode === true;
    let batch: WalRecord[] = [];
    const flushBatch = (): void => {
      if (batch.length > 0) ctx.send(this.args.shmem, { type: 'Replay', records: batch, receivedAt: this.receivedAt, source: this.source === 'stream' ? 'stream' : 'archive' } satisfies Replay);
      batch = [];
    };
    for (;;) {
      const r = reader.next();
      if (r.kind === 'record') {
        if (this.firstLsn === null) {
          this.firstLsn = r.record.lsn;
          if (control.state !== 'shut down' || standby) ctx.log('info', `redo starts at ${formatLsn(r.record.lsn)}`);
        }
        batch.push(r.record);
        this.replayed++;
        if (batch.length >= REPLAY_BATCH) flushBatch();
        if (standby && !this.consistent && r.record.endLsn >= this.minRecoveryPoint) {
          flushBatch();
          this.checkConsistency(r.record.endLsn, ctx);
        }
        continue;
      }
      flushBatch();
      if (r.kind === 'need') {
        if (this.source === 'stream') {
          // The walreceiver has not reached this segment yet: its first bytes will resume us.
          const filling = this.filling.get(r.segno);
          if (filling !== undefined) {
            reader.supply(r.segno, filling.bytes.subarray(0, filling.filled));
            continue;
          }
          return;
        }
        if (this.source === 'archive') return this.restore(r.segno, ctx);
        return this.readLocalSegment(r.segno, ctx);
      }
      if (r.foreign) {
        throw new PgError({ code: SqlState.DataCorrupted, severity: 'FATAL', message: r.reason, hint: 'The WAL in pg_wal does not belong to this cluster or timeline; remove or replace it.' });
      }
      if (standby) {
        // Not the end of recovery: the end of what this source has so far.
        if (this.source === 'stream') return;
        return this.nextSource(ctx);
      }
      if (control.state !== 'shut down') {
        if (this.firstLsn === null) ctx.log('info', 'redo is not required');
        else ctx.log('info', `redo done at ${formatLsn(reader.lastRecordLsn)}`);
      }
      ctx.send(this.args.shmem, {
        type: 'RecoveryDone', endLsn: r.lsn, lastLsn: reader.lastRecordLsn,
        systemIdentifier: control.systemIdentifier.toString(), timeline: this.timeline, walSegmentSize: control.walSegmentSize, history: this.history,
      } satisfies RecoveryDone);
      const updated: ControlFile = { ...control, timeline: this.timeline, state: 'in production', time: ctx.now() };
      this.io(ctx, { kind: 'file.writeAtomic', path: this.path(CONTROL_FILE_PATH), bytes: encodeControlFile(updated) }, 'ControlWritten');
      return;
    }
  }

  private readLocalSegment(segno: SegmentNumber, ctx: Context): void {
    const control = this.control!;
    this.pendingSegment = segno;
    this.fallbackTimelines = this.olderTimelinesOf(segno);
    this.io(ctx, { kind: 'file.read', path: this.path(`pg_wal/${segmentFileName(this.reader!.timelineOf(segno), segno, control.walSegmentSize)}`) }, 'SegmentRead');
  }

  /**
   * Older timelines of the history that wrote into segment `segno` before switching, newest
   * first, with where each ended: if pg_wal lacks the new timeline's file of a switch segment
   * (a crash right after a standby took the new timeline's history), the old one serves, up
   * to the switch point.
   */
  private olderTimelinesOf(segno: SegmentNumber): { timeline: number; end: Lsn }[] {
    const size = this.control!.walSegmentSize;
    const start = segmentStart(segno, size);
    const current = this.reader!.timelineOf(segno);
    return timelineSpans(this.timeline, this.history)
      .filter((s) => s.timeline < current && s.end !== null && s.end > start && s.begin < start + size)
      .map((s) => ({ timeline: s.timeline, end: s.end! }))
      .reverse();
  }

  private fallbackTimelines: { timeline: number; end: Lsn }[] = [];

  /** A segment file read from pg_wal: missing, an older timeline's copy may serve (cut at its end). */
  private onSegmentRead(io: IoResult, ctx: Context): void {
    const segno = this.pendingSegment!;
    const size = this.control!.walSegmentSize;
    const bytes = io.ok ? (io.value as Uint8Array | null) : null;
    if (bytes === null && this.fallbackTimelines.length > 0) {
      const older = this.fallbackTimelines.shift()!;
      this.fallbackEnd = older.end - segmentStart(segno, size);
      this.io(ctx, { kind: 'file.read', path: this.path(`pg_wal/${segmentFileName(older.timeline, segno, size)}`) }, 'SegmentRead');
      return;
    }
    const supplied = bytes !== null && this.fallbackEnd !== null ? bytes.subarray(0, Math.min(bytes.length, this.fallbackEnd)) : bytes;
    this.fallbackEnd = null;
    this.receivedAt = ctx.now();
    this.reader!.supply(segno, supplied);
    this.reader!.resume();
    this.readWal(ctx);
  }

  private fallbackEnd: number | null = null;

  private hasArchive(): boolean {
    return this.restoreCommand !== '' || this.restoreDirectory !== '';
  }

  /**
   * The current source has no more WAL at the reader's position: the next one, in
   * PostgreSQL's order — archive, pg_wal, streaming — and round again.
   */
  private nextSource(ctx: Context): void {
    switch (this.source) {
      case 'local':
      case 'stream':
        return this.firstSource(ctx);
      case 'archive':
        this.source = 'pg_wal';
        return this.readLocalSegment(this.readerSegment(), ctx);
      case 'pg_wal':
        // Promotion: what the archive and pg_wal had is replayed; the upstream is not asked again.
        if (this.promoting) return this.finishPromotion(ctx);
        if (this.streamingConfigured) return this.startStreaming(ctx);
        // A warm standby: round again after wal_retrieve_retry_interval.
        this.retryTimer = ctx.after(this.retryIntervalMs, { type: 'SourceRetry' });
        return;
    }
  }

  /** The top of the loop: the archive if there is one, else pg_wal (or at once streaming, after the local WAL). */
  private firstSource(ctx: Context): void {
    if (this.hasArchive()) {
      this.source = 'archive';
      return this.restore(this.readerSegment(), ctx);
    }
    if (this.source === 'local' && this.streamingConfigured) return this.startStreaming(ctx);
    this.source = 'pg_wal';
    this.readLocalSegment(this.readerSegment(), ctx);
  }

  /**
   * The segment to fetch next: the one the next record starts in, unless the archive gave it
   * whole already (then the record runs on into the next one, which is what is missing). A
   * segment from pg_wal or streaming may be cut short, or preallocated and zero past its end.
   */
  private readerSegment(): SegmentNumber {
    let segno = segnoOf(this.reader!.nextLsn, this.control!.walSegmentSize);
    for (const done of [...this.restoredWhole]) if (done < segno) this.restoredWhole.delete(done);
    while (this.restoredWhole.has(segno)) segno++;
    return segno;
  }

  /** Segments the archive gave (archived segments are whole), from the reader's on. */
  private readonly restoredWhole = new Set<SegmentNumber>();

  /** Streaming, from the reader's position; not sooner than wal_retrieve_retry_interval after the last try. */
  private startStreaming(ctx: Context): void {
    if (this.promoting) return this.finishPromotion(ctx);
    const wait = this.lastStreamRequest === null ? 0 : this.lastStreamRequest + this.retryIntervalMs - ctx.now();
    if (wait > 0) {
      this.source = 'pg_wal';
      this.retryTimer = ctx.after(wait, { type: 'SourceRetry' });
      return;
    }
    this.source = 'stream';
    this.lastStreamRequest = ctx.now();
    this.enterStreaming(this.reader!.nextLsn, ctx);
  }

  /** Asks the archive for segment `segno` (restore_command, %p = pg_wal/RECOVERYXLOG). */
  private restore(segno: SegmentNumber, ctx: Context): void {
    const control = this.control!;
    const reader = this.reader!;
    const name = segmentFileName(reader.timelineOf(segno), segno, control.walSegmentSize);
    const restartSegment = segnoOf(control.redoLsn, control.walSegmentSize);
    const lastRestartPoint = segmentFileName(reader.timelineOf(restartSegment), restartSegment, control.walSegmentSize);
    this.restoring = { segno, name };
    if (this.restoreDirectory !== '') {
      this.restoreJob = new RestoreJob({ name, directory: this.restoreDirectory, target: this.path('pg_wal/RECOVERYXLOG'), expectedSize: control.walSegmentSize });
      return this.stepRestore(null, ctx);
    }
    ctx.io({ kind: 'process.run', command: buildRestoreCommand(this.restoreCommand, 'pg_wal/RECOVERYXLOG', name, lastRestartPoint), cwd: this.args.dataDir }, 'RestoreDone');
  }

  private restoreJob: RestoreJob | null = null;

  /** The built-in archive's reader, one file operation at a time. */
  private stepRestore(io: IoResult | null, ctx: Context): void {
    const step = this.restoreJob!.next(io);
    if (!('done' in step)) {
      ctx.io(step, 'RestoreStep');
      return;
    }
    this.restoreJob = null;
    if (step.ok && step.found) {
      this.keepRestored(ctx);
      return;
    }
    if (!step.ok) ctx.log('warning', step.error);
    else ctx.log('debug', `could not restore file "${this.restoring!.name}" from archive: not in "${this.restoreDirectory}"`);
    this.restoring = null;
    this.nextSource(ctx);
  }

  private onRestoreDone(io: IoResult, ctx: Context): void {
    const { name } = this.restoring!;
    const result = io.ok ? (io.value as ProcessRunResult) : null;
    if (result === null || result.exitCode !== 0) {
      // Not in the archive (yet): the next source.
      if (result !== null) for (const line of restoreFailureLines(result, name)) ctx.log(line.level, line.text);
      this.restoring = null;
      return this.nextSource(ctx);
    }
    this.keepRestored(ctx);
  }

  /**
   * A restored segment is kept in pg_wal under its own name, as PostgreSQL keeps it (a
   * cascading walsender sends it on, a restart finds it), marked `.done` — `.ready` with
   * archive_mode = always — then read for replay.
   */
  private keepRestored(ctx: Context): void {
    const { name } = this.restoring!;
    const status = this.args.archiveMode === 'always' ? 'ready' : 'done';
    this.keepSteps = [
      { kind: 'file.rename', from: this.path('pg_wal/RECOVERYXLOG'), to: this.path(`pg_wal/${name}`) },
      { kind: 'file.writeAtomic', path: this.path(`pg_wal/archive_status/${name}.${status}`), bytes: new Uint8Array(0) },
    ];
    this.keepStep(null, ctx);
  }

  private keepSteps: FileOp[] = [];

  private keepStep(io: IoResult | null, ctx: Context): void {
    if (io !== null && !io.ok) {
      this.restoring = null;
      return this.nextSource(ctx);
    }
    const step = this.keepSteps.shift();
    if (step !== undefined) {
      ctx.io(step, 'RestoredKept');
      return;
    }
    ctx.io({ kind: 'file.read', path: this.path(`pg_wal/${this.restoring!.name}`) }, 'RestoredRead');
  }

  private onRestoredRead(io: IoResult, ctx: Context): void {
    const { segno, name } = this.restoring!;
    const bytes = io.ok ? (io.value as Uint8Array | null) : null;
    if (bytes === null) {
      this.restoring = null;
      return this.nextSource(ctx);
    }
    const line = restoredLine(name);
    ctx.log(line.level, line.text);
    this.restoring = null;
    this.receivedAt = ctx.now();
    this.restoredWhole.add(segno);
    this.reader!.supply(segno, bytes);
    this.reader!.resume();
    this.readWal(ctx);
  }

  private restoring: { segno: SegmentNumber; name: string } | null = null;

  /**
   * The local WAL ran out: from now on WAL comes from the walreceiver, from the start of the
   * segment where it ran out (as PostgreSQL requests it).
   */
  private enterStreaming(end: Lsn, ctx: Context): void {
    const segmentSize = this.control!.walSegmentSize;
    const segno = segnoOf(end, segmentSize);
    this.filling.set(segno, { bytes: new Uint8Array(segmentSize), filled: 0 });
    this.receivedUpTo = segmentStart(segno, segmentSize);
    this.requestWalReceiver(ctx);
  }

  private requestWalReceiver(ctx: Context): void {
    const control = this.control!;
    ctx.send(ctx.parent, {
      type: 'StartWalReceiver', startLsn: this.receivedUpTo, timeline: this.timeline,
      systemIdentifier: control.systemIdentifier.toString(), segmentSize: control.walSegmentSize, history: this.history,
    } satisfies StartWalReceiver);
  }

  /** Streaming ended: what was being filled is forgotten (it is in pg_wal, and streamed again if needed). */
  private leaveStreaming(): void {
    this.filling.clear();
  }

  /** Streamed WAL, on disk already: copied into the segments being filled, then replayed. */
  private onReceived(msg: WalReceived, ctx: Context): void {
    // Sent before the walreceiver ended, read after we moved on: that source is not ours now.
    if (this.source !== 'stream') return;
    this.receivedAt = ctx.now();
    const segmentSize = this.control!.walSegmentSize;
    const reader = this.reader!;
    for (const chunk of msg.chunks) {
      let at = 0;
      while (at < chunk.bytes.length) {
        const pos = chunk.start + at;
        const segno = segnoOf(pos, segmentSize);
        let filling = this.filling.get(segno);
        if (filling === undefined) {
          filling = { bytes: new Uint8Array(segmentSize), filled: 0 };
          this.filling.set(segno, filling);
        }
        const offset = pos - segmentStart(segno, segmentSize);
        const n = Math.min(chunk.bytes.length - at, segmentSize - offset);
        filling.bytes.set(chunk.bytes.subarray(at, at + n), offset);
        filling.filled = Math.max(filling.filled, offset + n);
        at += n;
      }
      this.receivedUpTo = Math.max(this.receivedUpTo, chunk.start + chunk.bytes.length);
    }
    // Segments the reader has passed are done with; the others it sees as they stand now.
    const current = segnoOf(reader.nextLsn, segmentSize);
    for (const [segno, filling] of [...this.filling]) {
      if (segno < current) this.filling.delete(segno);
      else {
        reader.supply(segno, filling.bytes.subarray(0, filling.filled));
        this.restoredWhole.delete(segno);
      }
    }
    reader.resume();
    this.readWal(ctx);
  }

  private retryTimer: TimerId | null = null;
  private promoting = false;
  /** Promotion, once replay has ended: the new timeline and where it begins. */
  private promotion: { switchLsn: Lsn; timeline: number; steps: FileOp[] } | null = null;

  /**
   * pg_promote(), the trigger file, `server.promote()`: the walreceiver is gone (the
   * postmaster stopped it); what the archive and pg_wal have is replayed, then recovery ends
   * on a new timeline.
   */
  private onPromote(ctx: Context): void {
    if (this.args.standbyMode !== true || this.promoting || this.reader === null) return;
    this.promoting = true;
    ctx.log('info', 'received promote request');
    this.streamingConfigured = false;
    if (this.source === 'stream') {
      this.leaveStreaming();
      return this.firstSource(ctx);
    }
    if (this.retryTimer !== null) {
      ctx.cancel(this.retryTimer);
      this.retryTimer = null;
      return this.firstSource(ctx);
    }
    // A restore or a read of pg_wal is under way: the round ends in nextSource, which finishes.
  }

  /** The end of replay: a new timeline, higher than any in pg_wal or the archive. */
  private finishPromotion(ctx: Context): void {
    if (this.promotion !== null) return;
    const reader = this.reader!;
    ctx.log('info', `redo done at ${formatLsn(reader.lastRecordLsn)}`);
    this.promotion = { switchLsn: reader.nextLsn, timeline: this.timeline + 1, steps: [] };
    if (this.restoreDirectory !== '') {
      ctx.io({ kind: 'file.list', dir: this.restoreDirectory }, 'PromoteArchiveListed');
      return;
    }
    this.probeArchive(ctx);
  }

  /** restore_command is asked for the history file of the would-be new timeline, until it has none. */
  private probeArchive(ctx: Context): void {
    if (this.restoreCommand === '') return this.writeNewTimeline(ctx);
    const name = historyFileName(this.promotion!.timeline);
    ctx.io({ kind: 'process.run', command: buildRestoreCommand(this.restoreCommand, 'pg_wal/RECOVERYHISTORY', name, ''), cwd: this.args.dataDir }, 'PromoteProbed');
  }

  private onArchiveProbed(io: IoResult, ctx: Context): void {
    if (io.ok && (io.value as ProcessRunResult).exitCode === 0) {
      this.promotion!.timeline++;
      return this.probeArchive(ctx);
    }
    // What a probe restored was only looked at.
    this.promotion!.steps.push({ kind: 'file.unlink', path: this.path('pg_wal/RECOVERYHISTORY') });
    this.writeNewTimeline(ctx);
  }

  private onArchiveListed(io: IoResult, ctx: Context): void {
    for (const name of (io.ok ? (io.value as string[] | null) : null) ?? []) {
      const timeline = parseHistoryFileName(name.replace(/\.gz$/, ''));
      if (timeline !== null && timeline >= this.promotion!.timeline) this.promotion!.timeline = timeline + 1;
    }
    this.writeNewTimeline(ctx);
  }

  /**
   * The new timeline's history file; the segment holding the switch point copied to the new
   * timeline's file (its header saying so), the old one renamed `.partial`; both marked for
   * the archiver when archiving; the control file on the new timeline, in production.
   */
  private writeNewTimeline(ctx: Context): void {
    const promotion = this.promotion!;
    const control = this.control!;
    const reader = this.reader!;
    const size = control.walSegmentSize;
    const { switchLsn, timeline } = promotion;
    ctx.log('info', `selected new timeline ID: ${timeline}`);
    const history = historyFileName(timeline);
    const entries = [...this.history, { parent: this.timeline, switchpoint: switchLsn, reason: 'no recovery target specified' }];
    // The new timeline's copy of the switch segment first, then its history file: a crash
    // between the two leaves a stray file of a timeline nobody follows, not a history whose
    // first segment is missing.
    const steps: FileOp[] = [...promotion.steps];
    const archiving = this.args.archiveMode !== undefined && this.args.archiveMode !== 'off';
    const mark = (name: string): void => {
      if (archiving) steps.push({ kind: 'file.writeAtomic', path: this.path(`pg_wal/archive_status/${name}.ready`), bytes: new Uint8Array(0) });
    };
    const segno = segnoOf(switchLsn, size);
    const offset = switchLsn - segmentStart(segno, size);
    const old = reader.segment(segno);
    const oldName = segmentFileName(reader.timelineOf(segno), segno, size);
    const partial = offset > 0 && old != null;
    if (partial) {
      const copy = switchSegmentCopy(old, switchLsn, size, control.systemIdentifier, reader.timelineOf(segno), timeline);
      steps.push({ kind: 'file.writeAtomic', path: this.path(`pg_wal/${segmentFileName(timeline, segno, size)}`), bytes: copy });
    }
    steps.push({ kind: 'file.writeAtomic', path: this.path(`pg_wal/${history}`), bytes: new TextEncoder().encode(formatHistory(entries)) });
    mark(history);
    if (partial) {
      steps.push({ kind: 'file.rename', from: this.path(`pg_wal/${oldName}`), to: this.path(`pg_wal/${oldName}.partial`) });
      mark(`${oldName}.partial`);
    }
    // A crash from here on recovers as a primary, along the new timeline (its history is in pg_wal).
    steps.push({ kind: 'file.unlink', path: this.path('standby.signal') });
    const updated: ControlFile = { ...control, timeline, state: 'in production', time: ctx.now(), minRecoveryPoint: 0 };
    steps.push({ kind: 'file.writeAtomic', path: this.path(CONTROL_FILE_PATH), bytes: encodeControlFile(updated) });
    promotion.steps = steps;
    this.promoteStep(null, ctx);
  }

  private promoteStep(io: IoResult | null, ctx: Context): void {
    const promotion = this.promotion!;
    // A rename of an old segment that is not in pg_wal (it came from the archive) is nothing to undo.
    if (io !== null && !io.ok && io.error.code !== 'ENOENT') throw new PgError({ code: SqlState.InternalError, severity: 'FATAL', message: `could not finish promotion: ${io.error.message}` });
    const step = promotion.steps.shift();
    if (step !== undefined) {
      ctx.io(step, 'PromoteStep');
      return;
    }
    const control = this.control!;
    ctx.log('info', 'archive recovery complete');
    ctx.send(this.args.shmem, {
      type: 'RecoveryDone', endLsn: promotion.switchLsn, lastLsn: this.reader!.lastRecordLsn,
      systemIdentifier: control.systemIdentifier.toString(), timeline: promotion.timeline, walSegmentSize: control.walSegmentSize,
      history: [...this.history, { parent: this.timeline, switchpoint: promotion.switchLsn, reason: 'no recovery target specified' }],
    } satisfies RecoveryDone);
    ctx.ready();
    ctx.stop(ctx.self, NORMAL);
  }

  /** A new cluster: directories, postgresql.conf, an empty image and a control file pointing at the first segment. */
  private initdb(ctx: Context): void {
    const control: ControlFile = {
      systemIdentifier: newSystemIdentifier(ctx.now(), () => ctx.random()), walSegmentSize: this.args.walSegmentSize,
      state: 'shut down', time: ctx.now(), checkpointLsn: 0, redoLsn: segmentStart(1, this.args.walSegmentSize), timeline: 1,
      nextXid: FirstNormalXid, nextOid: FirstNormalObjectId, minRecoveryPoint: 0,
    };
    const steps: FileOp[] = [
      { kind: 'file.mkdir', path: this.path('global') },
      { kind: 'file.mkdir', path: this.path('pg_wal') },
      { kind: 'file.mkdir', path: this.path('pg_wal/archive_status') },
      { kind: 'file.mkdir', path: this.path('base') },
      { kind: 'file.mkdir', path: this.path('log') },
      { kind: 'file.writeAtomic', path: this.path('postgresql.conf'), bytes: new TextEncoder().encode(this.args.postgresqlConf) },
      { kind: 'file.writeAtomic', path: this.path('postgresql.auto.conf'), bytes: new TextEncoder().encode(renderAutoConf(new Map())) },
      { kind: 'file.writeAtomic', path: this.path('pg_hba.conf'), bytes: new TextEncoder().encode(DEFAULT_HBA_CONF) },
      { kind: 'file.writeAtomic', path: this.path(IMAGE_PATH), bytes: encodeImage(new DatabaseState().image(), control.redoLsn) },
      { kind: 'file.writeAtomic', path: this.path(CONTROL_FILE_PATH), bytes: encodeControlFile(control) },
    ];
    // One operation at a time, in order: the control file last, so a half-made cluster has none.
    this.initSteps = steps;
    this.initStep(ctx);
  }

  private initSteps: FileOp[] = [];

  private initStep(ctx: Context): void {
    const step = this.initSteps.shift();
    if (step !== undefined) this.io(ctx, step, this.initSteps.length === 0 ? 'Initialized' : 'InitStep');
  }

  private io(ctx: Context, op: FileOp, tag: string): void {
    ctx.io(op, tag);
  }

  private path(relative: string): string {
    return `${this.args.dataDir}/${relative}`;
  }
}

/** The first record position at or after `lsn` (a checkpoint's redo point is a record end). */
export function startOfRecord(lsn: Lsn): Lsn {
  return maxAlign(lsn);
}

export const STARTUP = defineBehaviour(import.meta.url, 'Startup', (args: StartupArgs) => new Startup(args));
