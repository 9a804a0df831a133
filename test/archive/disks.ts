/*
 * disks.ts — where the archive tests run the jobs' steps: the real file system in a temp
 * dir, or a SimDisk; offload steps (compression) run in-process, as the simulator runs them.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StepResult } from '../../src/archive/store.js';
import { RealFileIo, type FileOp } from '../../src/runtime/fileio.js';
import type { IoOp } from '../../src/runtime/io.js';
import { simulatedOffload } from '../../src/runtime/offload.js';
import { seededRandom } from '../../src/runtime/prng.js';
import { SimDisk } from '../../src/runtime/simdisk.js';

/** A disk the jobs' steps run on. */
export interface Disk {
  /** A directory to work in (created). */
  readonly root: string;
  run(op: FileOp): StepResult;
  read(path: string): Uint8Array | null;
  list(dir: string): string[];
  close(): void;
}

export function realDisk(): Disk {
  const root = mkdtempSync(join(tmpdir(), 'walship-archive-'));
  const io = new RealFileIo();
  return {
    root,
    run(op) {
      try {
        return { ok: true, value: io.run(op) };
      } catch (err) {
        return { ok: false, error: { message: (err as Error).message, code: (err as { code?: string }).code } };
      }
    },
    read: (path) => (existsSync(path) ? new Uint8Array(readFileSync(path)) : null),
    list: (dir) => readdirSync(dir).sort(),
    close() {
      io.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export function simDisk(): Disk {
  const disk = new SimDisk();
  const root = '/cluster';
  disk.mkdirp(root);
  const handlers = disk.handlers();
  const random = seededRandom(11);
  return {
    root,
    run: (op) => handlers[op.kind]!(op, random).outcome,
    read: (path) => disk.read(path),
    list(dir) {
      const op: FileOp = { kind: 'file.list', dir };
      const { outcome } = handlers[op.kind]!(op, random);
      return outcome.ok ? (outcome.value as string[]) : [];
    },
    close: () => undefined,
  };
}

export const DISKS = [['real file system', realDisk], ['SimDisk', simDisk]] as const;

const offloadRandom = seededRandom(7);

/** One step on `disk`: a file operation, or an offload run in-process. */
export function runStep(step: FileOp | IoOp, disk: Disk): StepResult {
  return step.kind === 'offload' ? simulatedOffload(step, offloadRandom).outcome : disk.run(step as FileOp);
}

/** Runs a job to its end, one step at a time. */
export function drive<D extends { done: true }>(job: { next(last: StepResult | null): FileOp | IoOp | D }, disk: Disk): D {
  let step = job.next(null);
  while (!('done' in step)) step = job.next(runStep(step, disk));
  return step;
}
