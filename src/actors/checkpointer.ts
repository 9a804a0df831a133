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
import type { Context, TimerId } from '../runtime/context.js';
import type { IoResult } from '../runtime/io.js';
import { CONTROL_FILE_PATH, decodeControlFile, encodeControlFile, type ControlFile } from '../storage/control.js';
import * as rec from '../storage/records.js';
import { formatLsn } from '../wal/lsn.js';
import { parseSegmentFileName, segmentFileName, segnoOf } from '../wal/segment.js';
import { buildArchiveCleanupCommand, recoveryCommandFailureLines } from '../archive/command.js';
import type { ProcessRunResult } from '../runtime/shell.js';
import type { CheckpointImage, CheckpointRequest, InsertRecords, RestartpointSkipped, SlotsAtCheckpoint, SlotsSaved, SwitchWal } from './shmem.js';
import type { AttachArchiver, SegmentReady } from './walwriter.js';
import { IMAGE_PATH } from './startup.js';
import type { WalInserted } from './walwriter.js';

export interface CheckpointerArgs {
  readonly dataDir: string;
  readonly shmem: ActorRef;
  readonly checkpointTimeoutMs: number;
  /** A standby: checkpoints are restartpoints (no WAL written; the image is the replayed state). */
  readonly standby?: boolean;
  readonly walKeepSizeMb?: number;
  readonly maxSlotWalKeepSizeMb?: number;
  /** archive_mode is on: a segment not yet archived (no .done) is never removed. */
  readonly archiving?: boolean;
  /** archive_timeout (0: off): a segment with WAL in it is switched at least this often. */
  readonly archiveTimeoutMs?: number;
  /** archive_cleanup_command, run after each restartpoint with %r = the restartpoint's segment. */
  readonly archiveCleanupCommand?: string;
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
  readonly walKeepSizeMb: number;
  readonly maxSlotWalKeepSizeMb: number;
  readonly archiveTimeoutMs: number;
  readonly archiveCleanupCommand: string;
}

/** After a promotion. */
export interface CheckpointerPromoted extends Message {
  readonly type: 'CheckpointerPromoted';
  readonly archiving: boolean;
  readonly archiveTimeoutMs: number;
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
  keepFrom?: number;
}

class Checkpointer implements Actor {
  private control: ControlFile | null = null;
  private running: Running | null = null;
  private queued: Running | null = null;
  private stopAfter: ExitReason | null = null;
  private timeoutMs: number;
  private archiveTimeoutMs: number;
  private archiveTimer: TimerId | null = null;
  private archiver: ActorRef | null = null;
  private walFiles: readonly string[] = [];
  private statusFiles = new Set<string>();
  private walKeepSizeMb: number;
  private maxSlotWalKeepSizeMb: number;
  private archiveCleanupCommand: string;

  /** Restartpoints (a standby) until promotion; then checkpoints. */
  private standby: boolean;
  private archiving: boolean;

  constructor(private readonly args: CheckpointerArgs) {
    this.standby = args.standby === true;
    this.archiving = args.archiving === true;
    this.archiveCleanupCommand = args.archiveCleanupCommand ?? '';
    this.timeoutMs = args.checkpointTimeoutMs;
    this.walKeepSizeMb = args.walKeepSizeMb ?? 0;
    this.maxSlotWalKeepSizeMb = args.maxSlotWalKeepSizeMb ?? -1;
    this.archiveTimeoutMs = args.archiveTimeoutMs ?? 0;
  }

  private scheduleArchiveTimeout(ctx: Context): void {
    if (this.archiveTimer !== null) ctx.cancel(this.archiveTimer);
    this.archiveTimer = this.archiveTimeoutMs > 0 ? ctx.after(this.archiveTimeoutMs, { type: 'ArchiveTimeout' }) : null;
  }

  private get kind(): string {
    return this.standby ? 'restartpoint' : 'checkpoint';
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
        this.scheduleArchiveTimeout(ctx);
        ctx.ready();
        return;
      }
      case 'CheckpointerSettings': {
        const m = msg as CheckpointerSettings;
        this.timeoutMs = m.checkpointTimeoutMs;
        this.walKeepSizeMb = m.walKeepSizeMb;
        this.maxSlotWalKeepSizeMb = m.maxSlotWalKeepSizeMb;
        this.archiveCleanupCommand = m.archiveCleanupCommand;
        if (m.archiveTimeoutMs !== this.archiveTimeoutMs) {
          this.archiveTimeoutMs = m.archiveTimeoutMs;
          this.scheduleArchiveTimeout(ctx);
        }
        return;
      }
      case 'CheckpointerPromoted': {
        // The standby was promoted: checkpoints from now on, WAL kept for the archiver if it archives now.
        const m = msg as CheckpointerPromoted;
        this.standby = false;
        this.archiving = m.archiving;
        this.archiveCleanupCommand = '';
        if (m.archiveTimeoutMs !== this.archiveTimeoutMs) {
          this.archiveTimeoutMs = m.archiveTimeoutMs;
          this.scheduleArchiveTimeout(ctx);
        }
        return;
      }
      case 'ArchiveCleaned':
        return this.onArchiveCleaned(msg as IoResult, ctx);
      case 'AttachArchiver':
        this.archiver = (msg as AttachArchiver).archiver;
        return;
      case 'ArchiveTimeout':
        this.archiveTimer = null;
        // PostgreSQL's CheckArchiveTimeout: a segment with WAL in it is ended, to be archived.
        ctx.send(this.args.shmem, { type: 'SwitchWal', replyTo: ctx.self, tag: 0 } satisfies SwitchWal);
        this.scheduleArchiveTimeout(ctx);
        return;
      case 'ServerCommandDone':
        return;
      case 'StatusListed': {
        const io = msg as IoResult;
        this.statusFiles = new Set((io.ok ? (io.value as string[] | null) : null) ?? []);
        return this.removeOldSegments(ctx);
      }
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
        if (run.image!.inRecovery) return this.writeControl(run.image!.redoLsn, ctx);
        ctx.send(this.args.shmem, {
          type: 'InsertRecords', flush: true, replyTo: ctx.self, tag: 1,
          records: [rec.checkpoint(run.shutdown, {
            redo: run.image!.redoLsn, timeline: this.control!.timeline, time: ctx.now(),
            running: run.image!.running, nextXid: run.image!.nextXid, nextOid: run.image!.nextOid,
          })],
        } satisfies InsertRecords);
        return;
      }
      case 'WalInserted':
        return this.writeControl((msg as WalInserted).lsn, ctx);
      case 'ControlWritten':
        return this.saveSlots(ctx);
      case 'SlotsSaved':
        for (const slot of (msg as SlotsSaved).invalidated) {
          ctx.log('info', `invalidating slot "${slot.name}" because its restart_lsn ${formatLsn(slot.restartLsn)} exceeds max_slot_wal_keep_size`, { event: 'slot_invalidated', slot: slot.name });
        }
        ctx.io({ kind: 'file.list', dir: `${this.args.dataDir}/pg_wal` }, 'WalListed');
        return;
      case 'RestartpointSkipped': {
        ctx.log('debug', `skipping restartpoint, already performed at ${formatLsn((msg as RestartpointSkipped).redoLsn)}`);
        return this.finish(ctx);
      }
      case 'WalListed':
        this.walFiles = ((msg as IoResult).ok ? (msg as IoResult & { value: string[] | null }).value : []) ?? [];
        ctx.io({ kind: 'file.list', dir: `${this.args.dataDir}/pg_wal/archive_status` }, 'StatusListed');
        return;
      case 'SegmentRemoved':
        return;
    }
  }

  /** The control file names the new checkpoint (on a standby: the restartpoint and how far recovery must go). */
  private writeControl(checkpointLsn: number, ctx: Context): void {
    const run = this.running!;
    const image = run.image!;
    run.checkpointLsn = checkpointLsn;
    const state = image.inRecovery ? (run.shutdown ? 'shut down in recovery' : 'in archive recovery') : run.shutdown ? 'shut down' : 'in production';
    const control: ControlFile = {
      ...this.control!, state, time: ctx.now(),
      checkpointLsn, redoLsn: image.redoLsn, nextXid: image.nextXid, nextOid: image.nextOid,
      minRecoveryPoint: image.inRecovery ? Math.max(this.control!.minRecoveryPoint, image.redoLsn) : 0,
    };
    this.control = control;
    ctx.io({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/${CONTROL_FILE_PATH}`, bytes: encodeControlFile(control) }, 'ControlWritten');
  }

  /**
   * Before WAL goes: shmem invalidates the slots that fall behind what is kept
   * (max_slot_wal_keep_size) and saves every slot that moved (PostgreSQL saves dirty slots
   * at each checkpoint too).
   */
  private saveSlots(ctx: Context): void {
    const run = this.running!;
    run.keepFrom = this.keepFrom(run.image!, this.control!.walSegmentSize);
    ctx.send(this.args.shmem, { type: 'SlotsAtCheckpoint', keepSegno: run.keepFrom, replyTo: ctx.self } satisfies SlotsAtCheckpoint);
  }

  /**
   * The oldest segment to keep (PostgreSQL's KeepLogSeg): the redo point's, or older for the
   * slots (each at most max_slot_wal_keep_size behind), for base backups in progress, and for
   * wal_keep_size.
   */
  private keepFrom(image: CheckpointImage, segmentSize: number): number {
    const mb = (n: number): number => Math.floor((n * 1024 * 1024) / segmentSize);
    const current = segnoOf(image.insertLsn, segmentSize);
    let keep = segnoOf(image.redoLsn, segmentSize);
    const reserved = image.slots.filter((s) => !s.invalidated && s.restartLsn !== 0).map((s) => s.restartLsn);
    if (reserved.length > 0) {
      let slotKeep = segnoOf(Math.min(...reserved), segmentSize);
      if (this.maxSlotWalKeepSizeMb >= 0 && current - slotKeep > mb(this.maxSlotWalKeepSizeMb)) slotKeep = current - mb(this.maxSlotWalKeepSizeMb);
      keep = Math.min(keep, slotKeep);
    }
    if (this.walKeepSizeMb > 0 && current - keep < mb(this.walKeepSizeMb)) keep = Math.max(1, current - mb(this.walKeepSizeMb));
    for (const hold of image.holds) keep = Math.min(keep, segnoOf(hold, segmentSize));
    return keep;
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
    // A restartpoint says it starts only once there is one to make (see RestartpointSkipped).
    if (!this.standby) ctx.log('info', `${run.shutdown ? 'shutdown checkpoint' : 'checkpoint'} starting: ${run.reason}`);
    ctx.send(this.args.shmem, { type: 'CheckpointRequest', replyTo: ctx.self } satisfies CheckpointRequest);
  }

  private onImage(image: CheckpointImage, ctx: Context): void {
    this.running!.image = image;
    if (image.inRecovery) ctx.log('info', `restartpoint starting: ${this.running!.reason}`);
    ctx.io({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/${IMAGE_PATH}`, bytes: image.image }, 'ImageWritten');
  }

  /**
   * Removes the segments below the kept one. With archiving on, only archived ones (their
   * `.done` goes with them); one with neither `.ready` nor `.done` (its mark was lost in a
   * crash) is marked `.ready` again and kept, as PostgreSQL's XLogArchiveCheckDone does. With
   * archiving off, any mark goes with its segment.
   */
  private removeOldSegments(ctx: Context): void {
    const run = this.running!;
    const segmentSize = this.control!.walSegmentSize;
    const keepFrom = run.keepFrom!;
    const statusDir = `${this.args.dataDir}/pg_wal/archive_status`;
    let removed = 0;
    for (const name of this.walFiles) {
      // A promotion's .partial last segment of the old timeline goes like a segment (once archived, if archiving).
      const parsed = parseSegmentFileName(name.replace(/\.partial$/, ''), segmentSize);
      if (parsed === null || parsed.segno >= keepFrom) continue;
      if (this.archiving) {
        if (this.statusFiles.has(`${name}.ready`)) continue;
        if (!this.statusFiles.has(`${name}.done`)) {
          ctx.io({ kind: 'file.writeAtomic', path: `${statusDir}/${name}.ready`, bytes: new Uint8Array(0) }, 'SegmentRemoved');
          if (this.archiver !== null) ctx.send(this.archiver, { type: 'SegmentReady', name } satisfies SegmentReady);
          continue;
        }
        ctx.io({ kind: 'file.unlink', path: `${statusDir}/${name}.done` }, 'SegmentRemoved');
      } else {
        // Not archiving (a standby's walreceiver marks what it received .done): the marks go with the segment.
        for (const status of ['done', 'ready']) {
          if (this.statusFiles.has(`${name}.${status}`)) ctx.io({ kind: 'file.unlink', path: `${statusDir}/${name}.${status}` }, 'SegmentRemoved');
        }
      }
      ctx.io({ kind: 'file.unlink', path: `${this.args.dataDir}/pg_wal/${name}` }, 'SegmentRemoved');
      removed++;
    }
    ctx.log('info', `${this.kind} complete: ${removed} WAL file(s) removed; lsn=${formatLsn(run.checkpointLsn!)}, redo lsn=${formatLsn(run.image!.redoLsn)}`);
    if (run.image!.inRecovery) {
      ctx.log('info', `recovery restart point at ${formatLsn(run.image!.redoLsn)}`);
      if (this.archiveCleanupCommand !== '') return this.cleanArchive(run.image!.redoLsn, ctx);
    }
    this.finish(ctx);
  }

  /**
   * archive_cleanup_command, with %r the segment of the restartpoint just made: the oldest
   * the standby would need to restart, so the archive may drop everything before it. A
   * failure is a WARNING (the restartpoint stands), as in PostgreSQL.
   */
  private cleanArchive(redoLsn: number, ctx: Context): void {
    const control = this.control!;
    const restartFile = segmentFileName(control.timeline, segnoOf(redoLsn, control.walSegmentSize), control.walSegmentSize);
    ctx.io({ kind: 'process.run', command: buildArchiveCleanupCommand(this.archiveCleanupCommand, restartFile), cwd: this.args.dataDir }, 'ArchiveCleaned');
  }

  private onArchiveCleaned(io: IoResult, ctx: Context): void {
    if (!io.ok) ctx.log('warning', `archive_cleanup_command "${this.archiveCleanupCommand}": ${io.error.message}`);
    else if ((io.value as ProcessRunResult).exitCode !== 0) {
      for (const line of recoveryCommandFailureLines('archive_cleanup_command', this.archiveCleanupCommand, io.value as ProcessRunResult)) ctx.log(line.level, line.text);
    }
    this.finish(ctx);
  }

  /** The checkpoint is over: its waiters hear so, and a shutdown ends here, or the next one starts. */
  private finish(ctx: Context): void {
    const run = this.running!;
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
