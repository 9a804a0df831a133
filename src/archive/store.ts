/*
 * store.ts — walship's built-in directory archive (archive_library = 'basic_archive'), as
 * plans of file operations an actor runs one step at a time.
 *
 * Archiving a file writes it under a private name in the archive directory
 * (`.<name>.<unique>.tmp`, created new and fsynced), then publishes it under its real name
 * with file.publish: a link(2), which refuses an existing name atomically, then a sync of the
 * directory. That makes a shared archive safe without a lock (27.2.9: two servers may archive
 * the same file at the same time). If the name was taken, the job reads the archived file and
 * compares: the identical file archived twice is a success, as basic_archive says ("archive
 * file ... already exists with identical contents"), since a server may crash after archiving
 * a segment and before recording it; different contents are its ERROR `archive file "%s"
 * already exists`, and the archived file is never replaced. Unlike basic_archive, which looks
 * first and renames over what it finds, two racing jobs cannot both win here.
 *
 * With basic_archive.compression = gzip the job first compresses the file on the offload pool
 * (compress.ts) and archives the result as `<name>.gz`, under the same rules: the same
 * compressed bytes are the identical file. A `.gz` of other bytes is decompressed and compared
 * with the file before being refused, since another zlib may compress the same segment
 * differently.
 *
 * Restoring reads `<directory>/<name>` and, if the archive has no such file,
 * `<directory>/<name>.gz`, decompressed on the offload pool; it checks the size and writes the
 * file to a target path with file.writeAtomic (which replaces, as restoring to RECOVERYXLOG
 * must). A file the archive has under neither name is an answer, not an error: recovery asks
 * for files until the archive runs out. The plain file wins when both exist: compression
 * switched on while a segment was being archived can leave both, with the same contents.
 *
 * The jobs do no I/O. `next(result)` takes the outcome of the previous step (null the first
 * time) and returns the next operation (a file operation, or an offload of compress.ts's
 * tasks), or how the job ended:
 *
 *   const job = new ArchiveJob({ name, source, directory, unique: ctx.newId(), compression });
 *   run(job.next(null));                        // ctx.io(step, 'ArchiveStep') until 'done' in step
 *   on 'ArchiveStep' (io) => run(job.next(io));
 *
 * Leftover `.tmp` files (a crash between writing and publishing) are harmless and left for a
 * cleanup that knows no job can still be using them.
 */
import { assert } from '../assert.js';
import type { FileOp, FilePublishResult } from '../runtime/fileio.js';
import type { IoError, IoOp } from '../runtime/io.js';
import { offload } from '../runtime/offload.js';
import { GUNZIP, GZIP, type GunzipResult } from './compress.js';
import { MAX_DECOMPRESSED_BYTES } from '../constants.js';

/** The outcome of the step before, as the `ctx.io` reply carries it (an IoResult fits). */
export type StepResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: IoError };

export type ArchiveDone =
  | { readonly done: true; readonly ok: true; readonly destination: string; readonly alreadyArchived: boolean }
  | { readonly done: true; readonly ok: false; readonly error: string };

/** basic_archive.compression. */
export type ArchiveCompression = 'off' | 'gzip';

/** An offload of one of compress.ts's tasks (`kind: 'offload'`); its result is the task's. */
export type OffloadStep = IoOp;

export type ArchiveStep = FileOp | OffloadStep | ArchiveDone;

export interface ArchiveJobOptions {
  /** The file's name in the archive (a segment's, a history file's): no '/', no leading '.'. */
  readonly name: string;
  /** The archive directory. */
  readonly directory: string;
  /** Makes the temporary file's name this job's own (ctx.newId()): jobs on other servers may share the directory. */
  readonly unique: string;
  /** The file's contents; or else */
  readonly bytes?: Uint8Array;
  /** the path to read them from (pg_wal/<name>). */
  readonly source?: string;
  /** 'gzip' archives `<name>.gz`; 'off' (the default) the file as it is. */
  readonly compression?: ArchiveCompression;
}

type ArchiveState = 'start' | 'reading' | 'compressing' | 'writing' | 'publishing' | 'cleaning' | 'comparing' | 'decompressing' | 'done';

export class ArchiveJob {
  readonly destination: string;
  readonly temporary: string;
  private readonly compressed: boolean;
  /** The file's contents, then (compressed) what is archived. */
  private file: Uint8Array | null;
  private bytes: Uint8Array | null = null;
  private state: ArchiveState = 'start';
  /** The error to report once the temporary file is cleaned up. */
  private pendingError = '';

  constructor(private readonly options: ArchiveJobOptions) {
    validateName(options.name);
    assert(typeof options.unique === 'string' && /^[A-Za-z0-9_-]+$/.test(options.unique), `an archive job's unique part is a plain word (ctx.newId()), not "${options.unique}"`);
    assert((options.bytes === undefined) !== (options.source === undefined), 'an archive job takes either bytes or a source path');
    this.compressed = (options.compression ?? 'off') === 'gzip';
    const archived = this.compressed ? `${options.name}.gz` : options.name;
    this.destination = joinPath(options.directory, archived);
    this.temporary = joinPath(options.directory, `.${archived}.${options.unique}.tmp`);
    this.file = options.bytes ?? null;
  }

  next(last: StepResult | null): ArchiveStep {
    assert((last === null) === (this.state === 'start'), `archive job for "${this.options.name}" stepped out of turn (${this.state})`);
    switch (this.state) {
      case 'start':
        if (this.file === null) {
          this.state = 'reading';
          return { kind: 'file.read', path: this.options.source! };
        }
        return this.compressOrWrite();
      case 'reading': {
        const source = this.options.source!;
        if (!last!.ok) return this.fail(`could not read file "${source}": ${strerror(last!.error)}`);
        if (last!.value === null) return this.fail(`could not open file "${source}": No such file or directory`);
        this.file = last!.value as Uint8Array;
        return this.compressOrWrite();
      }
      case 'compressing':
        if (!last!.ok) return this.fail(`could not compress file "${this.options.source ?? this.options.name}": ${last!.error.message}`);
        this.bytes = last!.value as Uint8Array;
        return this.write();
      case 'writing':
        // file.writeNew removes what it could not finish.
        if (!last!.ok) return this.fail(`could not create file "${this.temporary}": ${strerror(last!.error)}`);
        this.state = 'publishing';
        return { kind: 'file.publish', from: this.temporary, to: this.destination };
      case 'publishing': {
        if (!last!.ok) {
          this.pendingError = `could not link file "${this.temporary}" to "${this.destination}": ${strerror(last!.error)}`;
          this.state = 'cleaning';
          return { kind: 'file.unlink', path: this.temporary };
        }
        if ((last!.value as FilePublishResult).published) return this.succeed(false);
        // Someone archived a file of this name first: fine only if it is this very file.
        this.state = 'comparing';
        return { kind: 'file.read', path: this.destination };
      }
      case 'cleaning':
        return this.fail(this.pendingError);
      case 'comparing': {
        if (!last!.ok) return this.fail(`could not read file "${this.destination}": ${strerror(last!.error)}`);
        const archived = last!.value as Uint8Array | null;
        // Removed since (archive_cleanup_command, a DBA): nothing to compare; a retry publishes again.
        if (archived === null) return this.fail(`could not open file "${this.destination}": No such file or directory`);
        if (sameBytes(archived, this.bytes!)) return this.succeed(true);
        if (!this.compressed) return this.alreadyExists();
        // Compressed differently, perhaps by another zlib: the same file if it decompresses to it.
        this.state = 'decompressing';
        return offload(GUNZIP, { bytes: archived, maxBytes: this.file!.length });
      }
      case 'decompressing': {
        if (!last!.ok) return this.fail(`could not decompress file "${this.destination}": ${last!.error.message}`);
        const archived = last!.value as GunzipResult;
        // Corrupt, or another file: either way not ours to replace.
        if (archived.ok && sameBytes(archived.bytes, this.file!)) return this.succeed(true);
        return this.alreadyExists();
      }
      case 'done':
        assert(false, `archive job for "${this.options.name}" stepped after it ended`);
    }
  }

  private compressOrWrite(): ArchiveStep {
    if (!this.compressed) {
      this.bytes = this.file;
      return this.write();
    }
    this.state = 'compressing';
    return offload(GZIP, { bytes: this.file! });
  }

  private alreadyExists(): ArchiveDone {
    return this.fail(`archive file "${this.destination}" already exists`);
  }

  private write(): FileOp {
    this.state = 'writing';
    return { kind: 'file.writeNew', path: this.temporary, bytes: this.bytes! };
  }

  private succeed(alreadyArchived: boolean): ArchiveDone {
    this.state = 'done';
    return { done: true, ok: true, destination: this.destination, alreadyArchived };
  }

  private fail(error: string): ArchiveDone {
    this.state = 'done';
    return { done: true, ok: false, error };
  }
}

export type RestoreDone =
  | { readonly done: true; readonly ok: true; readonly found: false }
  | { readonly done: true; readonly ok: true; readonly found: true; readonly size: number }
  | { readonly done: true; readonly ok: false; readonly error: string };

export type RestoreStep = FileOp | OffloadStep | RestoreDone;

export interface RestoreJobOptions {
  /** The file's name in the archive. */
  readonly name: string;
  readonly directory: string;
  /** Where to put it (pg_wal/RECOVERYXLOG, say); replaced if it exists. */
  readonly target: string;
  /** A segment's size: a file of another size is refused (PostgreSQL's "has wrong size"). */
  readonly expectedSize?: number;
}

type RestoreState = 'start' | 'reading' | 'readingCompressed' | 'decompressing' | 'writing' | 'done';

export class RestoreJob {
  readonly source: string;
  /** Where the archive keeps the file gzipped (basic_archive.compression = gzip). */
  readonly compressedSource: string;
  private state: RestoreState = 'start';
  private size = 0;

  constructor(private readonly options: RestoreJobOptions) {
    validateName(options.name);
    this.source = joinPath(options.directory, options.name);
    this.compressedSource = `${this.source}.gz`;
  }

  next(last: StepResult | null): RestoreStep {
    assert((last === null) === (this.state === 'start'), `restore job for "${this.options.name}" stepped out of turn (${this.state})`);
    switch (this.state) {
      case 'start':
        this.state = 'reading';
        return { kind: 'file.read', path: this.source };
      case 'reading': {
        if (!last!.ok) return this.fail(`could not read file "${this.source}": ${strerror(last!.error)}`);
        const bytes = last!.value as Uint8Array | null;
        if (bytes === null) {
          this.state = 'readingCompressed';
          return { kind: 'file.read', path: this.compressedSource };
        }
        return this.write(bytes, false);
      }
      case 'readingCompressed': {
        if (!last!.ok) return this.fail(`could not read file "${this.compressedSource}": ${strerror(last!.error)}`);
        const bytes = last!.value as Uint8Array | null;
        if (bytes === null) return this.end({ done: true, ok: true, found: false });
        this.state = 'decompressing';
        // One byte more than expected is enough to tell a wrong size, without inflating a bomb.
        const expected = this.options.expectedSize;
        return offload(GUNZIP, { bytes, maxBytes: expected === undefined ? MAX_DECOMPRESSED_BYTES : expected + 1 });
      }
      case 'decompressing': {
        const fail = (why: string) => this.fail(`could not decompress file "${this.compressedSource}": ${why}`);
        if (!last!.ok) return fail(last!.error.message);
        const result = last!.value as GunzipResult;
        const expected = this.options.expectedSize;
        if (!result.ok && result.tooLarge && expected !== undefined) return this.wrongSize(`more than ${expected}`, expected, true);
        if (!result.ok) return fail(result.error);
        return this.write(result.bytes, true);
      }
      case 'writing':
        if (!last!.ok) return this.fail(`could not write to file "${this.options.target}": ${strerror(last!.error)}`);
        return this.end({ done: true, ok: true, found: true, size: this.size });
      case 'done':
        assert(false, `restore job for "${this.options.name}" stepped after it ended`);
    }
  }

  /** Writes the file (decompressed, if it was archived compressed) if its size is right. */
  private write(bytes: Uint8Array, compressed: boolean): RestoreStep {
    const expected = this.options.expectedSize;
    if (expected !== undefined && bytes.length !== expected) return this.wrongSize(String(bytes.length), expected, compressed);
    this.size = bytes.length;
    this.state = 'writing';
    return { kind: 'file.writeAtomic', path: this.options.target, bytes };
  }

  /** PostgreSQL's "has wrong size", naming the file as the archive has it. */
  private wrongSize(size: string, expected: number, compressed: boolean): RestoreDone {
    if (!compressed) return this.fail(`archive file "${this.options.name}" has wrong size: ${size} instead of ${expected}`);
    return this.fail(`archive file "${this.options.name}.gz" has wrong size once decompressed: ${size} instead of ${expected}`);
  }

  private fail(error: string): RestoreDone {
    return this.end({ done: true, ok: false, error });
  }

  private end(done: RestoreDone): RestoreDone {
    this.state = 'done';
    return done;
  }
}

/** A name in the archive directory: a plain file name that cannot be one of the jobs' temporary files. */
function validateName(name: string): void {
  if (name === '' || name.startsWith('.') || name.includes('/') || name.includes('\0')) {
    throw new Error(`invalid archive file name "${name}": expected a plain file name such as 000000010000000000000001`);
  }
}

function joinPath(directory: string, name: string): string {
  return directory.endsWith('/') ? `${directory}${name}` : `${directory}/${name}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** What PostgreSQL's %m prints for the errors a file operation reports. */
const STRERROR: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory', EEXIST: 'File exists', EACCES: 'Permission denied', EPERM: 'Operation not permitted',
  ENOSPC: 'No space left on device', EDQUOT: 'Disk quota exceeded', EIO: 'Input/output error', EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory', EROFS: 'Read-only file system', EXDEV: 'Invalid cross-device link', EMLINK: 'Too many links',
  ENAMETOOLONG: 'File name too long', EMFILE: 'Too many open files', ENFILE: 'Too many open files in system',
};

function strerror(error: IoError): string {
  return (error.code === undefined ? undefined : STRERROR[error.code]) ?? error.message;
}
