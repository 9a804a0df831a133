/*
 * checkpointer.ts — checkpoints: on checkpoint_timeout, on CHECKPOINT, at shutdown.
 *
 * A checkpoint asks shmem for the state image and the WAL position it reflects (shmem first
 * flushes WAL to that position: WAL before data), writes the image atomically, logs a
 * checkpoint record, then rewrites the control file to point at both, and removes WAL
 * segments older than the redo point, which recovery will never read again. A shutdown
 * checkpoint leaves the control file saying "shut down", so the next start needs no
 * recovery. Log lines follow PostgreSQL's log_checkpoints (on by default since 15).
 */
import { defineBehaviour, type Actor, type ActorRef, type ExitReason, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import type { IoResult } from '../runtime/io.js';
import { CONTROL_FILE_PATH, decodeControlFile, encodeControlFile, type ControlFile } from '../storage/control.js';
import * as rec from '../storage/records.js';
import { formatLsn } from '../wal/lsn.js';
import { parseSegmentFileName, segnoOf } from '../wal/segment.js';
import type { CheckpointImage, CheckpointRequest, InsertRecords } from './shmem.js';
import { IMAGE_PATH } from './startup.js';
import type { WalInserted } from './walwriter.js';

export interface CheckpointerArgs {
  readonly dataDir: string;
  readonly shmem: ActorRef;
  readonly checkpointTimeoutMs: number;
}

export interface CheckpointNow extends Message {
  readonly type: 'CheckpointNow';
  readonly replyTo: ActorRef | null;
  readonly tag: number;
  /** Why, as log_checkpoints says it: the CHECKPOINT command by default, `wal` for max_wal_size. */
  readonly reason?: string;
}

/** New checkpoint_timeout after a reload. */
export interface CheckpointerSettings extends Message {
  readonly type: 'CheckpointerSettings';
  readonly checkpointTimeoutMs: number;
}

export interface CheckpointDone extends Message {
  readonly type: 'CheckpointDone';
  readonly tag: number;
}

interface Running {
  shutdown: boolean;
  reason: string;
  readonly waiters: { replyTo: ActorRef; tag: number }[];
  image?: CheckpointImage;
  checkpointLsn?: number;
}

class Checkpointer implements Actor {
  private control: ControlFile | null = null;
  private running: Running | null = null;
  private queued: Running | null = null;
  private stopAfter: ExitReason | null = null;
  private timeoutMs: number;

  constructor(private readonly args: CheckpointerArgs) {
    this.timeoutMs = args.checkpointTimeoutMs;
  }

  start(ctx: Context): 'later' {
    ctx.io({ kind: 'file.read', path: `${this.args.dataDir}/${CONTROL_FILE_PATH}` }, 'ControlRead');
    return 'later';
  }

  stopping(reason: ExitReason, ctx: Context): 'later' {
    this.stopAfter = reason;
    this.request({ shutdown: true, reason: 'shutdown immediate', waiters: [] }, ctx);
    return 'later';
  }

  receive(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'ControlRead': {
        const io = msg as IoResult;
        if (!io.ok) throw new Error(`could not read the control file: ${io.error.message}`);
        this.control = decodeControlFile(io.value as Uint8Array, CONTROL_FILE_PATH);
        ctx.after(this.timeoutMs, { type: 'CheckpointTimeout' });
        ctx.ready();
        return;
      }
      case 'CheckpointerSettings':
        this.timeoutMs = (msg as CheckpointerSettings).checkpointTimeoutMs;
        return;
      case 'CheckpointTimeout':
        ctx.after(this.timeoutMs, { type: 'CheckpointTimeout' });
        if (this.running === null) this.request({ shutdown: false, reason: 'time', waiters: [] }, ctx);
        return;
      case 'CheckpointNow': {
        const m = msg as CheckpointNow;
        this.request({ shutdown: false, reason: m.reason ?? 'immediate force wait', waiters: m.replyTo === null ? [] : [{ replyTo: m.replyTo, tag: m.tag }] }, ctx);
        return;
      }
      case 'CheckpointImage':
        return this.onImage(msg as CheckpointImage, ctx);
      case 'ImageWritten': {
        const run = this.running!;
        ctx.send(this.args.shmem, {
          type: 'InsertRecords', flush: true, replyTo: ctx.self, tag: 1,
          records: [rec.checkpoint(run.shutdown, {
            redo: run.image!.redoLsn, timeline: this.control!.timeline, time: ctx.now(),
            running: run.image!.running, nextXid: run.image!.nextXid, nextOid: run.image!.nextOid,
          })],
        } satisfies InsertRecords);
        return;
      }
      case 'WalInserted': {
        const run = this.running!;
        run.checkpointLsn = (msg as WalInserted).lsn;
        const control: ControlFile = {
          ...this.control!, state: run.shutdown ? 'shut down' : 'in production', time: ctx.now(),
          checkpointLsn: run.checkpointLsn, redoLsn: run.image!.redoLsn, nextXid: run.image!.nextXid, nextOid: run.image!.nextOid,
        };
        this.control = control;
        ctx.io({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/${CONTROL_FILE_PATH}`, bytes: encodeControlFile(control) }, 'ControlWritten');
        return;
      }
      case 'ControlWritten':
        ctx.io({ kind: 'file.list', dir: `${this.args.dataDir}/pg_wal` }, 'WalListed');
        return;
      case 'WalListed':
        return this.removeOldSegments(((msg as IoResult).ok ? (msg as IoResult & { value: string[] }).value : []) ?? [], ctx);
      case 'SegmentRemoved':
        return;
    }
  }

  private request(run: Running, ctx: Context): void {
    if (this.running !== null) {
      // One at a time; requests that arrive meanwhile share the next checkpoint.
      if (this.queued === null) this.queued = run;
      else {
        this.queued.waiters.push(...run.waiters);
        // A shutdown request must not dissolve into an ordinary queued checkpoint.
        if (run.shutdown) {
          this.queued.shutdown = true;
          this.queued.reason = run.reason;
        }
      }
      return;
    }
    this.running = run;
    ctx.log('info', `${run.shutdown ? 'shutdown checkpoint' : 'checkpoint'} starting: ${run.reason}`);
    ctx.send(this.args.shmem, { type: 'CheckpointRequest', replyTo: ctx.self } satisfies CheckpointRequest);
  }

  private onImage(image: CheckpointImage, ctx: Context): void {
    this.running!.image = image;
    ctx.io({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/${IMAGE_PATH}`, bytes: image.image }, 'ImageWritten');
  }

  private removeOldSegments(names: readonly string[], ctx: Context): void {
    const run = this.running!;
    const segmentSize = this.control!.walSegmentSize;
    const keepFrom = segnoOf(run.image!.redoLsn, segmentSize);
    let removed = 0;
    for (const name of names) {
      const parsed = parseSegmentFileName(name, segmentSize);
      if (parsed === null || parsed.segno >= keepFrom) continue;
      ctx.io({ kind: 'file.unlink', path: `${this.args.dataDir}/pg_wal/${name}` }, 'SegmentRemoved');
      removed++;
    }
    ctx.log('info', `checkpoint complete: ${removed} WAL file(s) removed; lsn=${formatLsn(run.checkpointLsn!)}, redo lsn=${formatLsn(run.image!.redoLsn)}`);
    for (const w of run.waiters) ctx.send(w.replyTo, { type: 'CheckpointDone', tag: w.tag } satisfies CheckpointDone);
    this.running = null;
    if (run.shutdown && this.stopAfter !== null) {
      ctx.stop(ctx.self, this.stopAfter);
      return;
    }
    const next = this.queued;
    this.queued = null;
    if (next !== null) this.request(next, ctx);
  }
}

export const CHECKPOINTER = defineBehaviour(import.meta.url, 'Checkpointer', (args: CheckpointerArgs) => new Checkpointer(args));
