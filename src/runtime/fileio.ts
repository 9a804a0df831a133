/*
 * fileio.ts — the file operations actors may ask for, and their real implementation.
 *
 * Actors describe a file operation as data (`ctx.io(op, tag)`); the real scheduler runs it
 * here and the simulator runs it on a SimDisk (simdisk.ts), where unsynced data is really
 * lost at a crash. The set is what a WAL writer, a checkpointer and a control file need:
 * batched positional writes with optional fdatasync (one round trip per group commit),
 * zero-filled preallocation (a reader must see zeros past the end of valid WAL), atomic
 * replacement (write, sync, rename, sync the directory), reads, listings, renames, unlinks.
 * An archive adds two: writing a new file under a private name, and publishing it under its
 * real name only if no file has that name yet (link(2), which refuses an existing name
 * atomically, where rename(2) would silently replace it).
 *
 * The real implementation makes synchronous system calls from the node's own thread: an
 * fdatasync through libuv's pool costs ~100 µs more than a direct call, and a commit is
 * waiting on it. Descriptors are cached per path and closed when the kernel shuts down.
 */
import {
  appendFileSync, closeSync, existsSync, fdatasyncSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readSync,
  renameSync, unlinkSync, writeSync,
} from 'node:fs';
import { fdatasync, write } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import type { IoOp } from './io.js';

export interface FileWrite {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

export interface FileBatchEntry {
  readonly path: string;
  /** Create (zero-filled to this size, synced with its directory) if the file is missing or shorter. */
  readonly preallocate?: number;
  readonly writes: readonly FileWrite[];
}

export type FileOp =
  /** The whole file, or `length` bytes from `offset` (fewer if the file is shorter); null if there is no file. */
  | { readonly kind: 'file.read'; readonly path: string; readonly offset?: number; readonly length?: number }
  | {
    readonly kind: 'file.writeBatch';
    readonly files: readonly FileBatchEntry[];
    readonly sync: boolean;
    /**
     * Run the writes and syncs off the node's thread (libuv's pool): each costs more, but the
     * thread keeps working meanwhile, which is what lets concurrent commits pile up behind a
     * flush and share the next one. Blocking is faster for a lone committer.
     */
    readonly background?: boolean;
  }
  | { readonly kind: 'file.writeAtomic'; readonly path: string; readonly bytes: Uint8Array }
  | { readonly kind: 'file.list'; readonly dir: string }
  | { readonly kind: 'file.mkdir'; readonly path: string }
  | { readonly kind: 'file.rename'; readonly from: string; readonly to: string }
  | { readonly kind: 'file.unlink'; readonly path: string }
  | { readonly kind: 'file.append'; readonly path: string; readonly bytes: Uint8Array }
  /** fdatasync of files written before (a walreceiver reports the write, then flushes). */
  | { readonly kind: 'file.sync'; readonly paths: readonly string[] }
  /**
   * Creates `path` (failing with EEXIST if it exists), writes `bytes` and fsyncs the file. Its
   * directory entry is not synced: the file is meant to be published by file.publish or a rename.
   */
  | { readonly kind: 'file.writeNew'; readonly path: string; readonly bytes: Uint8Array }
  /**
   * Gives the complete, synced file `from` the name `to` unless `to` exists, then removes
   * `from` either way: `{ published: true }`, or `{ published: false }` when a file named `to`
   * was there first (it is left as it was). Either way `to` is durable when this completes:
   * the directory is fsynced, and so is an existing `to` (whoever wrote it may not have).
   * When the op fails, `from` is left for the caller to remove.
   */
  | { readonly kind: 'file.publish'; readonly from: string; readonly to: string };

export interface FilePublishResult {
  readonly published: boolean;
}

export const FILE_OP_KINDS = [
  'file.read', 'file.writeBatch', 'file.writeAtomic', 'file.list', 'file.mkdir', 'file.rename', 'file.unlink', 'file.append', 'file.sync',
  'file.writeNew', 'file.publish',
] as const;

const ZEROS = new Uint8Array(1024 * 1024);
const writeAsync = promisify(write) as unknown as (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesWritten: number }>;
const fdatasyncAsync = promisify(fdatasync);

function errno(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

function unlinkIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw err;
  }
}

/** Real file I/O for one kernel; `close` releases its cached descriptors. */
export class RealFileIo {
  private readonly fds = new Map<string, number>();

  /** Runs an operation; background batches resolve later, everything else at once. */
  async runAsync(op: IoOp): Promise<unknown> {
    const file = op as FileOp;
    if (file.kind !== 'file.writeBatch' || file.background !== true) return this.run(op);
    for (const entry of file.files) {
      if (entry.preallocate !== undefined) this.preallocate(entry.path, entry.preallocate);
      const fd = this.fd(entry.path);
      for (const w of entry.writes) {
        let done = 0;
        while (done < w.bytes.length) done += (await writeAsync(fd, w.bytes, done, w.bytes.length - done, w.offset + done)).bytesWritten;
      }
      if (file.sync && entry.writes.length > 0) await fdatasyncAsync(fd);
    }
    return null;
  }

  run(op: IoOp): unknown {
    const file = op as FileOp;
    switch (file.kind) {
      case 'file.read':
        return file.offset === undefined ? this.read(file.path) : this.readRange(file.path, file.offset, file.length ?? 0);
      case 'file.writeBatch':
        for (const entry of file.files) this.writeEntry(entry, file.sync);
        return null;
      case 'file.writeAtomic':
        this.writeAtomic(file.path, file.bytes);
        return null;
      case 'file.list':
        try {
          return readdirSync(file.dir).sort();
        } catch (err) {
          if (errno(err) === 'ENOENT') return null;
          throw err;
        }
      case 'file.mkdir':
        mkdirSync(file.path, { recursive: true });
        this.syncDir(dirname(file.path));
        return null;
      case 'file.rename':
        this.forget(file.from);
        this.forget(file.to);
        renameSync(file.from, file.to);
        this.syncDir(dirname(file.to));
        return null;
      case 'file.append':
        appendFileSync(file.path, file.bytes);
        return null;
      case 'file.sync':
        for (const path of file.paths) fdatasyncSync(this.fd(path));
        return null;
      case 'file.unlink':
        this.forget(file.path);
        unlinkIfExists(file.path);
        return null;
      case 'file.writeNew':
        this.writeNew(file.path, file.bytes);
        return null;
      case 'file.publish':
        return this.publish(file.from, file.to);
      default:
        throw new Error(`unknown file operation "${(op as IoOp).kind}"`);
    }
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  private fd(path: string): number {
    let fd = this.fds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'r+');
      this.fds.set(path, fd);
    }
    return fd;
  }

  private forget(path: string): void {
    const fd = this.fds.get(path);
    if (fd !== undefined) closeSync(fd);
    this.fds.delete(path);
  }

  private read(path: string): Uint8Array | null {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') return null;
      throw err;
    }
    try {
      const size = fstatSync(fd).size;
      const out = new Uint8Array(size);
      let got = 0;
      while (got < size) {
        const n = readSync(fd, out, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return got === size ? out : out.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  }

  /** A positional read through the cached descriptor (WAL being streamed is read this way, a piece at a time). */
  private readRange(path: string, offset: number, length: number): Uint8Array | null {
    let fd: number;
    try {
      fd = this.fd(path);
    } catch (err) {
      if (errno(err) === 'ENOENT') return null;
      throw err;
    }
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, out, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return got === length ? out : out.subarray(0, got);
  }

  private writeEntry(entry: FileBatchEntry, sync: boolean): void {
    if (entry.preallocate !== undefined) this.preallocate(entry.path, entry.preallocate);
    const fd = this.fd(entry.path);
    for (const w of entry.writes) {
      let done = 0;
      while (done < w.bytes.length) done += writeSync(fd, w.bytes, done, w.bytes.length - done, w.offset + done);
    }
    if (sync && entry.writes.length > 0) fdatasyncSync(fd);
  }

  private preallocate(path: string, size: number): void {
    const existed = existsSync(path);
    const fd = existed ? this.fd(path) : openSync(path, 'w+');
    if (!existed) this.fds.set(path, fd);
    let at = fstatSync(fd).size;
    if (at >= size) return;
    while (at < size) {
      const n = Math.min(ZEROS.length, size - at);
      at += writeSync(fd, ZEROS, 0, n, at);
    }
    fsyncSync(fd);
    if (!existed) this.syncDir(dirname(path));
  }

  private writeAtomic(path: string, bytes: Uint8Array): void {
    const temp = `${path}.tmp`;
    this.forget(temp);
    const fd = openSync(temp, 'w');
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.forget(path);
    renameSync(temp, path);
    this.syncDir(dirname(path));
  }

  private writeNew(path: string, bytes: Uint8Array): void {
    const fd = openSync(path, 'wx');
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, done);
      fsyncSync(fd);
    } catch (err) {
      // A half-written file would only take space: nobody can have it published yet.
      closeSync(fd);
      unlinkIfExists(path);
      throw err;
    }
    closeSync(fd);
  }

  private publish(from: string, to: string): FilePublishResult {
    this.forget(from);
    let published = true;
    try {
      linkSync(from, to);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      published = false;
    }
    unlinkIfExists(from);
    if (!published) this.syncFile(to);
    this.syncDir(dirname(to));
    return { published };
  }

  private syncFile(path: string): void {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private syncDir(dir: string): void {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
