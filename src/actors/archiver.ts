/*
 * archiver.ts — continuous archiving: every completed WAL segment copied out, in order.
 *
 * With archive_mode on, the walwriter marks each completed segment with
 * pg_wal/archive_status/<name>.ready and tells the archiver. The archiver archives them one
 * at a time, oldest first: with archive_command (a real shell command, `%p` the segment's
 * path relative to the data directory, `%f` its file name; exit code 0 means archived), or
 * with archive_library = 'basic_archive' (walship's built-in directory archive,
 * basic_archive.archive_directory: written to a temporary file, fsynced, then published
 * under its name only if no file has that name; the identical file archived twice is fine,
 * a different one is refused and never overwritten; with basic_archive.compression = gzip it
 * is compressed on the offload pool first and archived as <name>.gz). An archived segment's
 * `.ready` becomes `.done`, which lets the checkpointer remove it. A failure keeps `.ready`
 * (so the segment stays in pg_wal), is logged as PostgreSQL logs it, counted in
 * pg_stat_archiver, and retried: three times a second apart, then after a minute, or at once
 * on a reload or a new segment.
 */
import { defineBehaviour, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context, TimerId } from '../runtime/context.js';
import type { IoResult } from '../runtime/io.js';
import { archiveFailureLines, archiveRetriesExhaustedLine, buildArchiveCommand, type LogLine } from '../archive/command.js';
import { ArchiveJob, type ArchiveCompression, type ArchiveStep } from '../archive/store.js';
import type { ProcessRunResult } from '../runtime/shell.js';
import type { ArchiverStatus } from '../monitoring/views.js';
import type { ArchiverReport } from './shmem.js';
import type { SegmentReady } from './walwriter.js';

export interface ArchiverArgs {
  readonly dataDir: string;
  readonly shmem: ActorRef;
  readonly archiveCommand: string;
  readonly archiveLibrary: string;
  readonly archiveDirectory: string;
  /** basic_archive.compression; 'off' when not given. */
  readonly archiveCompression?: ArchiveCompression;
}

/** New archive_command / archive_library settings after a reload. */
export interface ArchiverSettings extends Message {
  readonly type: 'ArchiverSettings';
  readonly archiveCommand: string;
  readonly archiveLibrary: string;
  readonly archiveDirectory: string;
  /** 'off' when not given. */
  readonly archiveCompression?: ArchiveCompression;
}

/** PostgreSQL's NUM_ARCHIVE_RETRIES, and the pause after them (its archiver's timeout). */
const RETRIES = 3;
const RETRY_DELAY_MS = 1_000;
const PAUSE_MS = 60_000;

/** Segments, a promotion's `.partial` last segment of the old timeline, and timeline history files. */
const READY = /^([0-9A-F]{24}(?:\.partial)?|[0-9A-F]{8}\.history)\.ready$/;

/** History files first (a standby restoring needs them before the segments), then WAL order. */
function archiveOrder(a: string, b: string): number {
  const ha = a.endsWith('.history');
  const hb = b.endsWith('.history');
  if (ha !== hb) return ha ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

class Archiver implements Actor {
  private settings: Omit<ArchiverSettings, 'type'>;
  /** Segments waiting, oldest first (their names sort in WAL order). */
  private readonly ready = new Set<string>();
  private busy: string | null = null;
  private job: ArchiveJob | null = null;
  private failures = 0;
  private timer: TimerId | null = null;
  private warnedUnconfigured = false;
  private readonly stats: { -readonly [K in keyof ArchiverStatus]: ArchiverStatus[K] };

  constructor(private readonly args: ArchiverArgs) {
    this.settings = {
      archiveCommand: args.archiveCommand, archiveLibrary: args.archiveLibrary, archiveDirectory: args.archiveDirectory, archiveCompression: args.archiveCompression ?? 'off',
    };
    this.stats = { archivedCount: 0, lastArchivedWal: null, lastArchivedTime: null, failedCount: 0, lastFailedWal: null, lastFailedTime: null, statsReset: 0 };
  }

  start(ctx: Context): void {
    this.stats.statsReset = ctx.now();
    this.report(ctx);
    // What was marked before this archiver started (a restart, a crash) is archived first.
    ctx.io({ kind: 'file.list', dir: this.statusDir() }, 'StatusListed');
  }

  receive(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'StatusListed': {
        const io = msg as IoResult;
        for (const file of (io.ok ? (io.value as string[] | null) : null) ?? []) {
          const name = READY.exec(file)?.[1];
          if (name !== undefined) this.ready.add(name);
        }
        return this.next(ctx);
      }
      case 'SegmentReady':
        this.ready.add((msg as SegmentReady).name);
        return this.wakeUp(ctx);
      case 'ArchiverSettings': {
        const { type: _, ...settings } = msg as ArchiverSettings;
        this.settings = settings;
        this.warnedUnconfigured = false;
        return this.wakeUp(ctx);
      }
      case 'ArchiveRetry':
        this.timer = null;
        return this.next(ctx);
      case 'CommandDone':
        return this.onCommand(msg as IoResult, ctx);
      case 'JobStep':
        return this.stepJob(msg as IoResult, ctx);
      case 'MarkedDone':
        return this.onMarkedDone(ctx);
    }
  }

  /** A new segment or new settings end a pause between retries, as they set PostgreSQL's archiver's latch. */
  private wakeUp(ctx: Context): void {
    if (this.timer !== null && this.busy === null) {
      ctx.cancel(this.timer);
      this.timer = null;
      this.failures = 0;
    }
    this.next(ctx);
  }

  private next(ctx: Context): void {
    if (this.busy !== null || this.timer !== null) return;
    const name = [...this.ready].sort(archiveOrder)[0];
    if (name === undefined) return;
    const { archiveCommand, archiveLibrary } = this.settings;
    if (archiveLibrary === 'basic_archive') {
      this.busy = name;
      this.job = new ArchiveJob({
        name, source: `${this.args.dataDir}/pg_wal/${name}`, directory: this.settings.archiveDirectory, unique: ctx.newId(),
        compression: this.settings.archiveCompression ?? 'off',
      });
      return this.runStep(this.job.next(null), ctx);
    }
    if (archiveCommand === '') {
      // Nothing archives: the segments stay in pg_wal, marked .ready, until something does.
      if (!this.warnedUnconfigured) ctx.log('warning', 'archive_mode enabled, yet archiving is not configured');
      this.warnedUnconfigured = true;
      return;
    }
    this.busy = name;
    const command = buildArchiveCommand(archiveCommand, `pg_wal/${name}`, name);
    ctx.io({ kind: 'process.run', command, cwd: this.args.dataDir }, 'CommandDone');
  }

  private onCommand(io: IoResult, ctx: Context): void {
    const name = this.busy!;
    if (!io.ok) return this.failed(name, [{ level: 'warning', text: `could not run archive command: ${io.error.message}` }], ctx);
    const result = io.value as ProcessRunResult;
    if (result.exitCode === 0) return this.archived(name, ctx);
    const command = buildArchiveCommand(this.settings.archiveCommand, `pg_wal/${name}`, name);
    this.failed(name, archiveFailureLines(result, command), ctx);
  }

  private runStep(step: ArchiveStep, ctx: Context): void {
    if ('done' in step) {
      if (step.ok) return this.archived(this.busy!, ctx);
      return this.failed(this.busy!, [{ level: 'error', text: step.error }], ctx);
    }
    ctx.io(step, 'JobStep');
  }

  private stepJob(io: IoResult, ctx: Context): void {
    this.runStep(this.job!.next(io), ctx);
  }

  private archived(name: string, ctx: Context): void {
    this.job = null;
    ctx.io({ kind: 'file.rename', from: `${this.statusDir()}/${name}.ready`, to: `${this.statusDir()}/${name}.done` }, 'MarkedDone');
  }

  private onMarkedDone(ctx: Context): void {
    const name = this.busy!;
    this.busy = null;
    this.ready.delete(name);
    this.failures = 0;
    this.stats.archivedCount++;
    this.stats.lastArchivedWal = name;
    this.stats.lastArchivedTime = ctx.now();
    this.report(ctx);
    this.next(ctx);
  }

  private failed(name: string, lines: readonly LogLine[], ctx: Context): void {
    this.busy = null;
    this.job = null;
    lines.forEach((line, i) => ctx.log(line.level, line.text, i === 0 ? { event: 'archiver_failed', file: name } : undefined));
    this.stats.failedCount++;
    this.stats.lastFailedWal = name;
    this.stats.lastFailedTime = ctx.now();
    this.report(ctx);
    this.failures++;
    if (this.failures >= RETRIES) {
      const line = archiveRetriesExhaustedLine(name);
      ctx.log(line.level, line.text);
      this.failures = 0;
      this.timer = ctx.after(PAUSE_MS, { type: 'ArchiveRetry' });
      return;
    }
    this.timer = ctx.after(RETRY_DELAY_MS, { type: 'ArchiveRetry' });
  }

  private report(ctx: Context): void {
    ctx.send(this.args.shmem, { type: 'ArchiverReport', status: { ...this.stats } } satisfies ArchiverReport);
  }

  private statusDir(): string {
    return `${this.args.dataDir}/pg_wal/archive_status`;
  }
}

export const ARCHIVER = defineBehaviour(import.meta.url, 'Archiver', (args: ArchiverArgs) => new Archiver(args));
