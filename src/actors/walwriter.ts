/*
 * walwriter.ts — WAL insertion, writing and flushing, with group commit.
 *
 * PostgreSQL splits this between backends (XLogInsert, XLogFlush) and the walwriter process;
 * here one actor owns the WAL stream, so insertion order is message order and there is never
 * more than one write+fdatasync in flight. Commits that arrive while a flush is running
 * queue up and share the next one: that is group commit, with no timer and no tuning.
 *
 * Messages:
 *   XLogInsert { records, flush, replyTo, tag }  inserts the records contiguously. With
 *       `flush` (synchronous_commit = local and above) the reply waits until they are on
 *       disk; without it (synchronous_commit = off) it comes at once, and the records are
 *       flushed by the next background flush, at most `walWriterDelayMs` later (or sooner
 *       once `walWriterFlushAfterBytes` are waiting), as PostgreSQL's walwriter does.
 *   XLogFlush { upto, replyTo, tag }  replies once everything below `upto` is on disk.
 *   WalStatusRequest { replyTo }      replies with the insert, write and flush positions.
 * Replies: WalInserted { tag, lsn, endLsn, flushed } and WalStatus.
 *
 * Owned positions: insert (in WalWriterCore) >= written >= flushed, each only moving forward.
 * A failed write or fdatasync crashes the actor: like PostgreSQL's PANIC, nothing that may
 * not be on disk is ever acknowledged, and the server restarts through crash recovery.
 */
import { assert } from '../assert.js';
import { defineBehaviour, refKey, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import type { FileBatchEntry, FileOp } from '../runtime/fileio.js';
import type { IoResult } from '../runtime/io.js';
import type { Lsn } from '../wal/lsn.js';
import type { WalRecordInput } from '../wal/record.js';
import { segmentFileName, type SegmentNumber, type SystemIdentifier, type TimelineId } from '../wal/segment.js';
import { WalWriterCore } from '../wal/writer.js';
import type { CheckpointNow } from './checkpointer.js';

export interface WalWriterArgs {
  /** The pg_wal directory. */
  readonly walDir: string;
  readonly systemIdentifier: SystemIdentifier;
  readonly timeline: TimelineId;
  readonly segmentSize: number;
  /** Just past the last valid record, as recovery found it. */
  readonly insertLsn: Lsn;
  /** Start of the last valid record (InvalidLsn for a new cluster). */
  readonly prevLsn: Lsn;
  /** wal_writer_delay, in milliseconds (PostgreSQL's default: 200). */
  readonly walWriterDelayMs: number;
  /** wal_writer_flush_after, in bytes (PostgreSQL's default: 1MB). */
  readonly walWriterFlushAfterBytes: number;
  /** max_wal_size in bytes: this much WAL since the last checkpoint asks for another. */
  readonly maxWalSizeBytes?: number;
  /** archive_mode is on (or always): each completed segment is marked .ready for the archiver. */
  readonly archiving?: boolean;
}

/** Tells the walwriter whom to wake when a segment is ready to archive. */
export interface AttachArchiver extends Message {
  readonly type: 'AttachArchiver';
  readonly archiver: ActorRef;
}

/** A completed segment has its archive_status/<name>.ready file (PostgreSQL's XLogArchiveNotify). */
export interface SegmentReady extends Message {
  readonly type: 'SegmentReady';
  readonly name: string;
}

/** Tells the walwriter whom to ask for checkpoints when max_wal_size fills. */
export interface AttachCheckpointer extends Message {
  readonly type: 'AttachCheckpointer';
  readonly checkpointer: ActorRef;
}

export interface XLogInsert extends Message {
  readonly type: 'XLogInsert';
  readonly records: readonly WalRecordInput[];
  readonly flush: boolean;
  readonly replyTo: ActorRef;
  readonly tag: number;
}

export interface XLogFlush extends Message {
  readonly type: 'XLogFlush';
  readonly upto: Lsn;
  readonly replyTo: ActorRef;
  readonly tag: number;
}

export interface WalStatusRequest extends Message {
  readonly type: 'WalStatusRequest';
  readonly replyTo: ActorRef;
}

export interface WalInserted extends Message {
  readonly type: 'WalInserted';
  readonly tag: number;
  /** Start of the first record inserted. */
  readonly lsn: Lsn;
  /** Just past the last record inserted. */
  readonly endLsn: Lsn;
  /** True when the reply waited for the flush. */
  readonly flushed: boolean;
  /** Just past the last record itself (differs from endLsn after a segment switch). */
  readonly recordEnd?: Lsn;
}

/** Walsenders ask to hear of every flush: `WalFlushed` comes at once and after each flush. */
export interface WalFlushSubscribe extends Message {
  readonly type: 'WalFlushSubscribe';
  readonly replyTo: ActorRef;
}

export interface WalFlushed extends Message {
  readonly type: 'WalFlushed';
  readonly flushed: Lsn;
}

/** New wal_writer_delay / wal_writer_flush_after after a reload. */
export interface WalWriterSettings extends Message {
  readonly type: 'WalWriterSettings';
  readonly walWriterDelayMs: number;
  readonly walWriterFlushAfterBytes: number;
  readonly maxWalSizeBytes: number;
}

export interface WalStatus extends Message {
  readonly type: 'WalStatus';
  readonly insertLsn: Lsn;
  readonly writtenLsn: Lsn;
  readonly flushedLsn: Lsn;
}

interface Waiter {
  readonly upto: Lsn;
  readonly lsn: Lsn;
  readonly replyTo: ActorRef;
  readonly tag: number;
}

type WalWriterMessage =
  | XLogInsert | XLogFlush | WalStatusRequest | WalWriterSettings | AttachCheckpointer | IoResult | WalFlushSubscribe
  | AttachArchiver | { readonly type: 'WalFlushUnsubscribe'; readonly replyTo: ActorRef } | { readonly type: 'WalWriterTick' } | { readonly type: 'CheckpointDone' };

class WalWriter implements Actor<WalWriterMessage> {
  private readonly core: WalWriterCore;
  private flushed: Lsn;
  /** Target of the write+fdatasync in flight, if any. */
  private flushing: Lsn | null = null;
  /** Waiters in LSN order (insertion order is LSN order). */
  private waiters: Waiter[] = [];
  private readonly preallocated = new Set<SegmentNumber>();
  /** A background flush came due while another flush was running: run it right after. */
  private flushOwed = false;
  /** How many commits the previous flush released (a sign of concurrency). */
  private lastGroup = 0;

  private delayMs: number;
  private flushAfterBytes: number;
  private maxWalSizeBytes: number;
  private checkpointer: ActorRef | null = null;
  /** Where WAL stood when the last checkpoint was asked for (or at start). */
  private sinceCheckpoint: Lsn;
  private checkpointAsked = false;
  /** Walsenders to tell of each flush, by ref key. */
  private readonly subscribers = new Map<string, ActorRef>();
  private archiver: ActorRef | null = null;
  /** .ready files being written, in order (the archiver hears of each once it exists). */
  private readonly readyWrites: string[] = [];
  /** Segments below this one are complete and marked for archiving. */
  private completedBelow: SegmentNumber;

  constructor(private readonly args: WalWriterArgs) {
    this.core = new WalWriterCore(args);
    this.flushed = args.insertLsn;
    this.delayMs = args.walWriterDelayMs;
    this.flushAfterBytes = args.walWriterFlushAfterBytes;
    this.maxWalSizeBytes = args.maxWalSizeBytes ?? Infinity;
    this.sinceCheckpoint = args.insertLsn;
    this.completedBelow = Math.floor(args.insertLsn / args.segmentSize);
  }

  start(ctx: Context): void {
    ctx.after(this.delayMs, { type: 'WalWriterTick' });
  }

  receive(msg: WalWriterMessage, ctx: Context): void {
    switch (msg.type) {
      case 'XLogInsert':
        return this.onInsert(msg as XLogInsert, ctx);
      case 'XLogFlush': {
        const m = msg as XLogFlush;
        this.wait({ upto: Math.min(m.upto, this.core.insertLsn), lsn: m.upto, replyTo: m.replyTo, tag: m.tag }, ctx);
        return;
      }
      case 'WalStatusRequest':
        ctx.send((msg as WalStatusRequest).replyTo, {
          type: 'WalStatus', insertLsn: this.core.insertLsn, writtenLsn: this.core.writtenLsn, flushedLsn: this.flushed,
        } satisfies WalStatus);
        return;
      case 'WalWriterSettings':
        this.delayMs = (msg as WalWriterSettings).walWriterDelayMs;
        this.flushAfterBytes = (msg as WalWriterSettings).walWriterFlushAfterBytes;
        this.maxWalSizeBytes = (msg as WalWriterSettings).maxWalSizeBytes;
        return;
      case 'WalFlushSubscribe': {
        const m = msg as WalFlushSubscribe;
        this.subscribers.set(refKey(m.replyTo), m.replyTo);
        ctx.send(m.replyTo, { type: 'WalFlushed', flushed: this.flushed } satisfies WalFlushed);
        return;
      }
      case 'WalFlushUnsubscribe':
        this.subscribers.delete(refKey((msg as { replyTo: ActorRef }).replyTo));
        return;
      case 'AttachArchiver':
        this.archiver = (msg as AttachArchiver).archiver;
        return;
      case 'ReadyWritten': {
        const io = msg as IoResult;
        const name = this.readyWrites.shift()!;
        if (!io.ok) throw new Error(`could not create archive status file "${name}.ready": ${io.error.message}`);
        if (this.archiver !== null) ctx.send(this.archiver, { type: 'SegmentReady', name } satisfies SegmentReady);
        return;
      }
      case 'AttachCheckpointer':
        this.checkpointer = (msg as AttachCheckpointer).checkpointer;
        return;
      case 'CheckpointDone':
        this.checkpointAsked = false;
        return;
      case 'WalWriterTick':
        ctx.after(this.delayMs, { type: 'WalWriterTick' });
        if (this.flushing !== null) this.flushOwed = true;
        else this.startFlush(ctx);
        return;
      case 'WalFlushDone':
        return this.onFlushDone(msg as IoResult, ctx);
    }
  }

  private onInsert(msg: XLogInsert, ctx: Context): void {
    assert(msg.records.length > 0, 'XLogInsert carries at least one record');
    let first: Lsn | null = null;
    let endLsn = 0;
    let recordEnd = 0;
    for (const record of msg.records) {
      const placed = this.core.insert(record);
      first ??= placed.lsn;
      endLsn = placed.endLsn;
      recordEnd = placed.recordEnd;
    }
    if (msg.flush) {
      this.wait({ upto: endLsn, lsn: first!, replyTo: msg.replyTo, tag: msg.tag }, ctx);
      return;
    }
    ctx.send(msg.replyTo, { type: 'WalInserted', tag: msg.tag, lsn: first!, endLsn, recordEnd, flushed: false } satisfies WalInserted);
    if (this.core.insertLsn - this.flushed >= this.flushAfterBytes) this.startFlush(ctx);
  }

  private wait(waiter: Waiter, ctx: Context): void {
    if (waiter.upto <= this.flushed) {
      this.reply(waiter, ctx);
      return;
    }
    this.waiters.push(waiter);
    this.startFlush(ctx);
  }

  /** Writes and syncs everything inserted so far, unless a flush is already running. */
  private startFlush(ctx: Context): void {
    if (this.flushing !== null) return;
    const target = this.core.insertLsn;
    if (target <= this.flushed) return;
    const bySegment = new Map<SegmentNumber, FileBatchEntry>();
    for (const write of this.core.takeWrites(target)) {
      const entry = bySegment.get(write.segno) ?? this.entry(write.segno);
      bySegment.set(write.segno, { ...entry, writes: [...entry.writes, { offset: write.offset, bytes: write.bytes }] });
    }
    // Create the next segment ahead of need, so that a commit crossing into it does not wait for zero-filling.
    const last = Math.max(...bySegment.keys());
    if (!this.preallocated.has(last + 1)) bySegment.set(last + 1, this.entry(last + 1));
    this.flushing = target;
    // A lone committer is served fastest by a blocking fdatasync; once commits queue up, the
    // flush runs in the background so that the next group can form while it is on its way.
    const background = this.waiters.length > 1 || this.lastGroup > 1;
    this.lastGroup = this.waiters.length;
    const op: FileOp = { kind: 'file.writeBatch', files: [...bySegment.values()], sync: true, background };
    ctx.io(op, 'WalFlushDone');
  }

  private entry(segno: SegmentNumber): FileBatchEntry {
    const path = segmentPath(this.args.walDir, this.core.timeline, segno, this.args.segmentSize);
    if (this.preallocated.has(segno)) return { path, writes: [] };
    this.preallocated.add(segno);
    return { path, preallocate: this.args.segmentSize, writes: [] };
  }

  private onFlushDone(done: IoResult, ctx: Context): void {
    const target = this.flushing;
    assert(target !== null, 'a flush completion answers a flush in flight');
    if (!done.ok) {
      throw new Error(`could not write or fdatasync WAL up to ${target}: ${done.error.message}`);
    }
    assert(target >= this.flushed, 'the flush position only advances');
    assert(target <= this.core.writtenLsn, 'never flushed more than was written');
    this.flushed = target;
    this.flushing = null;
    if (this.checkpointer !== null && !this.checkpointAsked && target - this.sinceCheckpoint > this.maxWalSizeBytes) {
      // max_wal_size is full: a checkpoint lets the oldest segments go.
      this.checkpointAsked = true;
      this.sinceCheckpoint = target;
      ctx.send(this.checkpointer, { type: 'CheckpointNow', replyTo: ctx.self, tag: 0, reason: 'wal' } satisfies CheckpointNow);
    }
    let released = 0;
    while (released < this.waiters.length && this.waiters[released]!.upto <= target) this.reply(this.waiters[released++]!, ctx);
    this.waiters = released === 0 ? this.waiters : this.waiters.slice(released);
    this.markCompleted(target, ctx);
    // Then the walsenders: a local commit is answered before any standby hears of it.
    for (const [key, subscriber] of this.subscribers) {
      if (!ctx.send(subscriber, { type: 'WalFlushed', flushed: target } satisfies WalFlushed)) this.subscribers.delete(key);
    }
    // Commits that queued up behind this flush share the next one; so does a background
    // flush that came due meanwhile, which bounds what synchronous_commit = off can lose.
    if (this.waiters.length > 0 || this.flushOwed) {
      this.flushOwed = false;
      this.startFlush(ctx);
    }
  }

  /**
   * Every segment now wholly on disk gets archive_status/<name>.ready (when archiving), and
   * the archiver hears of it once the file exists.
   */
  private markCompleted(flushed: Lsn, ctx: Context): void {
    const complete = Math.floor(flushed / this.args.segmentSize);
    if (this.args.archiving !== true) {
      this.completedBelow = Math.max(this.completedBelow, complete);
      return;
    }
    for (; this.completedBelow < complete; this.completedBelow++) {
      const name = segmentFileName(this.core.timeline, this.completedBelow, this.args.segmentSize);
      this.readyWrites.push(name);
      ctx.io({ kind: 'file.writeAtomic', path: `${this.args.walDir}/archive_status/${name}.ready`, bytes: new Uint8Array(0) }, 'ReadyWritten');
    }
  }

  private reply(waiter: Waiter, ctx: Context): void {
    ctx.send(waiter.replyTo, { type: 'WalInserted', tag: waiter.tag, lsn: waiter.lsn, endLsn: waiter.upto, flushed: true } satisfies WalInserted);
  }
}

export const WALWRITER = defineBehaviour(import.meta.url, 'WalWriter', (args: WalWriterArgs) => new WalWriter(args));

/** Where the WAL file for `segno` lives. */
export function segmentPath(walDir: string, timeline: TimelineId, segno: SegmentNumber, segmentSize: number): string {
  return `${walDir}/${segmentFileName(timeline, segno, segmentSize)}`;
}
