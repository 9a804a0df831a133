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
 * Standby mode (continuous replay) comes with streaming replication.
 */
import { PgError, SqlState } from '../errors.js';
import { reportingFatal } from './fatal.js';
import { defineBehaviour, NORMAL, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import type { FileOp } from '../runtime/fileio.js';
import type { IoResult } from '../runtime/io.js';
import { CONTROL_FILE_PATH, decodeControlFile, encodeControlFile, newSystemIdentifier, type ControlFile } from '../storage/control.js';
import { DatabaseState } from '../storage/state.js';
import { FirstNormalXid } from '../storage/clog.js';
import { FirstNormalObjectId } from '../storage/catalog.js';
import { renderAutoConf } from '../config/conffile.js';
import { formatLsn, maxAlign, type Lsn } from '../wal/lsn.js';
import { WalReader } from '../wal/reader.js';
import type { WalRecord } from '../wal/record.js';
import { segmentFileName, segmentStart, type SegmentNumber } from '../wal/segment.js';
import { decodeImage, encodeImage, type LoadImage, type RecoveryDone, type Replay } from './shmem.js';

export const IMAGE_PATH = 'base/state.image';

export interface StartupArgs {
  readonly dataDir: string;
  readonly shmem: ActorRef;
  /** Create the cluster if the data directory has none (initdb). */
  readonly initdb: boolean;
  /** For initdb: the segment size to fix for the cluster's life. */
  readonly walSegmentSize: number;
  /** For initdb: written as postgresql.conf. */
  readonly postgresqlConf: string;
}

const REPLAY_BATCH = 1000;

class Startup implements Actor<IoResult> {
  private control: ControlFile | null = null;
  private reader: WalReader | null = null;
  private replayed = 0;
  private firstLsn: Lsn | null = null;
  private pendingSegment: SegmentNumber | null = null;

  constructor(private readonly args: StartupArgs) {}

  start(ctx: Context): 'later' {
    this.io(ctx, { kind: 'file.read', path: this.path(CONTROL_FILE_PATH) }, 'ControlRead');
    return 'later';
  }

  receive(msg: IoResult, ctx: Context): void {
    reportingFatal(ctx, () => this.handle(msg, ctx));
  }

  private handle(msg: IoResult, ctx: Context): void {
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
        const control = this.control!;
        // Replay starts where the image stands (see encodeImage), which may be past the control file's redo point.
        this.reader = new WalReader({
          systemIdentifier: control.systemIdentifier, timeline: control.timeline, segmentSize: control.walSegmentSize,
          startLsn: startOfRecord(decodeImage(image).redoLsn),
        });
        ctx.send(this.args.shmem, { type: 'LoadImage', image } satisfies LoadImage);
        return this.readWal(ctx);
      }
      case 'SegmentRead':
        this.reader!.supply(this.pendingSegment!, msg.value as Uint8Array | null);
        return this.readWal(ctx);
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
    if (control.state === 'shut down') {
      ctx.log('info', `database system was shut down at ${when}`);
    } else {
      ctx.log('info', `database system was interrupted; last known up at ${when}`);
      ctx.log('info', 'database system was not properly shut down; automatic recovery in progress');
    }
    this.io(ctx, { kind: 'file.read', path: this.path(IMAGE_PATH) }, 'ImageRead');
  }

  private readWal(ctx: Context): void {
    const reader = this.reader!;
    const control = this.control!;
    let batch: WalRecord[] = [];
    const flushBatch = (): void => {
      if (batch.length > 0) ctx.send(this.args.shmem, { type: 'Replay', records: batch } satisfies Replay);
      batch = [];
    };
    for (;;) {
      const r = reader.next();
      if (r.kind === 'record') {
        if (this.firstLsn === null) {
          this.firstLsn = r.record.lsn;
          if (control.state !== 'shut down') ctx.log('info', `redo starts at ${formatLsn(r.record.lsn)}`);
        }
        batch.push(r.record);
        this.replayed++;
        if (batch.length >= REPLAY_BATCH) flushBatch();
        continue;
      }
      flushBatch();
      if (r.kind === 'need') {
        this.pendingSegment = r.segno;
        this.io(ctx, { kind: 'file.read', path: this.path(`pg_wal/${segmentFileName(control.timeline, r.segno, control.walSegmentSize)}`) }, 'SegmentRead');
        return;
      }
      if (r.foreign) {
        throw new PgError({ code: SqlState.DataCorrupted, severity: 'FATAL', message: r.reason, hint: 'The WAL in pg_wal does not belong to this cluster or timeline; remove or replace it.' });
      }
      if (control.state !== 'shut down') {
        if (this.firstLsn === null) ctx.log('info', 'redo is not required');
        else ctx.log('info', `redo done at ${formatLsn(reader.lastRecordLsn)}`);
      }
      ctx.send(this.args.shmem, {
        type: 'RecoveryDone', endLsn: r.lsn, lastLsn: reader.lastRecordLsn,
        systemIdentifier: control.systemIdentifier.toString(), timeline: control.timeline, walSegmentSize: control.walSegmentSize,
      } satisfies RecoveryDone);
      const updated: ControlFile = { ...control, state: 'in production', time: ctx.now() };
      this.io(ctx, { kind: 'file.writeAtomic', path: this.path(CONTROL_FILE_PATH), bytes: encodeControlFile(updated) }, 'ControlWritten');
      return;
    }
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
      { kind: 'file.mkdir', path: this.path('base') },
      { kind: 'file.mkdir', path: this.path('log') },
      { kind: 'file.writeAtomic', path: this.path('postgresql.conf'), bytes: new TextEncoder().encode(this.args.postgresqlConf) },
      { kind: 'file.writeAtomic', path: this.path('postgresql.auto.conf'), bytes: new TextEncoder().encode(renderAutoConf(new Map())) },
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
