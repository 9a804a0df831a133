/*
 * simdisk.ts — a simulated disk for the simulator: files in memory where only synced data
 * survives a crash.
 *
 * Each file has a durable image and a list of writes made since its last sync. Reads see
 * both. `crash()` is a power cut: by default every unsynced write is lost; in `torn` mode a
 * seeded prefix of them survives, the last one possibly cut mid-write, as a real disk may
 * leave it. Creating, renaming, publishing and unlinking files are durable at once (the real
 * implementation syncs the directory for each), and preallocation syncs what it creates.
 * Publishing is a link: the file keeps its unsynced writes under its new name.
 * Latencies come from the run's seed, so crash points land between operations differently
 * for every seed and identically for the same one.
 */
import { dirname } from 'node:path';
import { FILE_OP_KINDS, type FileBatchEntry, type FileOp } from './fileio.js';
import type { IoOp, SimIoCompletion, SimIoHandler } from './io.js';

interface SimFile {
  durable: Uint8Array;
  pending: { offset: number; bytes: Uint8Array }[];
}

export interface SimDiskOptions {
  /** Virtual milliseconds a write with fdatasync takes, before jitter. */
  readonly syncLatencyMs?: number;
}

export class SimDisk {
  private readonly files = new Map<string, SimFile>();
  private readonly dirs = new Set<string>(['/']);
  private readonly syncLatencyMs: number;
  /** Counters tests can use to check a scenario really exercised the disk. */
  syncs = 0;
  crashes = 0;

  constructor(options: SimDiskOptions = {}) {
    this.syncLatencyMs = options.syncLatencyMs ?? 0.1;
  }

  /** Handlers to pass as `io` to a SimScheduler. */
  handlers(): Record<string, SimIoHandler> {
    const handler: SimIoHandler = (op, random) => this.complete(op, random);
    return Object.fromEntries(FILE_OP_KINDS.map((k) => [k, handler]));
  }

  /** A power cut: unsynced writes are lost (or, when `torn`, a random prefix of them survives). */
  crash(random: () => number, mode: 'lose' | 'torn' = 'lose'): void {
    this.crashes++;
    for (const file of this.files.values()) {
      if (mode === 'torn' && file.pending.length > 0) {
        const keep = Math.floor(random() * (file.pending.length + 1));
        for (let i = 0; i < keep; i++) {
          const w = file.pending[i]!;
          const bytes = i === keep - 1 ? w.bytes.subarray(0, Math.floor(random() * (w.bytes.length + 1))) : w.bytes;
          file.durable = apply(file.durable, w.offset, bytes);
        }
      }
      file.pending = [];
    }
  }

  /** What a read would return now (tests inspect files with it). */
  read(path: string): Uint8Array | null {
    const file = this.files.get(path);
    if (file === undefined) return null;
    // A copy: apply() writes in place, and reading must not make pending writes durable.
    let image: Uint8Array = file.durable.slice();
    for (const w of file.pending) image = apply(image, w.offset, w.bytes);
    return image;
  }

  /** Creates a directory and its parents (test and cluster setup). */
  mkdirp(path: string): void {
    this.run({ kind: 'file.mkdir', path });
  }


  private complete(op: IoOp, random: () => number): SimIoCompletion {
    const jitter = (base: number): number => base * (0.5 + random());
    try {
      const value = this.run(op as FileOp);
      const latencyMs = syncs(op as FileOp) ? jitter(this.syncLatencyMs) : jitter(this.syncLatencyMs / 10);
      return { latencyMs, outcome: { ok: true, value } };
    } catch (err) {
      return { latencyMs: 0, outcome: { ok: false, error: { message: (err as Error).message, code: (err as { code?: string }).code ?? 'EIO' } } };
    }
  }

  private run(op: FileOp): unknown {
    switch (op.kind) {
      case 'file.read': {
        const whole = this.read(op.path);
        if (whole === null || op.offset === undefined) return whole;
        return whole.slice(op.offset, op.offset + (op.length ?? 0));
      }
      case 'file.writeBatch':
        for (const entry of op.files) this.writeEntry(entry, op.sync);
        return null;
      case 'file.writeAtomic':
        this.requireDir(dirname(op.path));
        this.files.set(op.path, { durable: op.bytes.slice(), pending: [] });
        return null;
      case 'file.list': {
        if (!this.dirs.has(op.dir)) return null;
        const prefix = op.dir.endsWith('/') ? op.dir : `${op.dir}/`;
        const names = new Set<string>();
        for (const path of [...this.files.keys(), ...this.dirs]) {
          if (path.startsWith(prefix) && path.length > prefix.length) names.add(path.slice(prefix.length).split('/')[0]!);
        }
        return [...names].sort();
      }
      case 'file.mkdir': {
        let dir = op.path;
        while (!this.dirs.has(dir)) {
          this.dirs.add(dir);
          dir = dirname(dir);
        }
        return null;
      }
      case 'file.rename': {
        const file = this.files.get(op.from);
        if (file === undefined) throw Object.assign(new Error(`ENOENT: no such file, rename '${op.from}'`), { code: 'ENOENT' });
        this.files.delete(op.from);
        this.files.set(op.to, file);
        return null;
      }
      case 'file.unlink':
        this.files.delete(op.path);
        return null;
      case 'file.sync':
        for (const path of op.paths) {
          const file = this.files.get(path);
          if (file === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
          for (const w of file.pending) file.durable = apply(file.durable, w.offset, w.bytes);
          file.pending = [];
          this.syncs++;
        }
        return null;
      case 'file.writeNew': {
        this.requireDir(dirname(op.path));
        if (this.files.has(op.path) || this.dirs.has(op.path)) throw exists(`open '${op.path}'`);
        this.files.set(op.path, { durable: op.bytes.slice(), pending: [] });
        this.syncs++;
        return null;
      }
      case 'file.publish': {
        const file = this.files.get(op.from);
        if (file === undefined) throw Object.assign(new Error(`ENOENT: no such file, link '${op.from}' -> '${op.to}'`), { code: 'ENOENT' });
        this.requireDir(dirname(op.to));
        this.files.delete(op.from);
        const existing = this.files.get(op.to);
        if (existing === undefined && !this.dirs.has(op.to)) {
          this.files.set(op.to, file);
          return { published: true };
        }
        if (existing !== undefined) {
          for (const w of existing.pending) existing.durable = apply(existing.durable, w.offset, w.bytes);
          existing.pending = [];
          this.syncs++;
        }
        return { published: false };
      }
      case 'file.append': {
        this.requireDir(dirname(op.path));
        const file = this.files.get(op.path) ?? { durable: new Uint8Array(0), pending: [] };
        this.files.set(op.path, file);
        const size = Math.max(file.durable.length, ...file.pending.map((w) => w.offset + w.bytes.length));
        file.pending.push({ offset: size, bytes: op.bytes.slice() });
        return null;
      }
    }
  }

  private writeEntry(entry: FileBatchEntry, sync: boolean): void {
    let file = this.files.get(entry.path);
    if (entry.preallocate !== undefined) {
      this.requireDir(dirname(entry.path));
      if (file === undefined) {
        file = { durable: new Uint8Array(entry.preallocate), pending: [] };
        this.files.set(entry.path, file);
      } else if (file.durable.length < entry.preallocate) {
        file.durable = apply(file.durable, entry.preallocate - 1, new Uint8Array(1));
      }
    }
    if (file === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${entry.path}'`), { code: 'ENOENT' });
    for (const w of entry.writes) file.pending.push({ offset: w.offset, bytes: w.bytes.slice() });
    if (sync) {
      for (const w of file.pending) file.durable = apply(file.durable, w.offset, w.bytes);
      file.pending = [];
      this.syncs++;
    }
  }

  private requireDir(dir: string): void {
    if (!this.dirs.has(dir)) throw Object.assign(new Error(`ENOENT: no such directory '${dir}'`), { code: 'ENOENT' });
  }
}

function syncs(op: FileOp): boolean {
  return (op.kind === 'file.writeBatch' && op.sync) || op.kind === 'file.writeNew' || op.kind === 'file.publish';
}

function exists(what: string): Error {
  return Object.assign(new Error(`EEXIST: file already exists, ${what}`), { code: 'EEXIST' });
}

/** `image` with `bytes` written at `offset`, grown (zero-filled) if needed. */
function apply(image: Uint8Array, offset: number, bytes: Uint8Array): Uint8Array {
  const needed = offset + bytes.length;
  let out = image;
  if (needed > image.length) {
    out = new Uint8Array(needed);
    out.set(image);
  }
  out.set(bytes, offset);
  return out;
}
