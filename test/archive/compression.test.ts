/*
 * compression.test.ts — the directory archive with basic_archive.compression = gzip: a
 * segment archived as <name>.gz that gunzip reads, the identical file archived twice, a
 * different one refused and never overwritten, restoring that prefers the plain file and
 * finds the .gz, and a corrupt .gz named in the error. On the real file system and on SimDisk
 * step by step (compression in-process, as the simulator runs it), and through a kernel with
 * the real offload pool.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ArchiveJob, RestoreJob, type ArchiveDone, type ArchiveStep, type RestoreDone, type RestoreStep } from '../../src/archive/store.js';
import { checkValue, requireSetting } from '../../src/config/settings.js';
import { PgError } from '../../src/errors.js';
import { defineBehaviour, type Message } from '../../src/runtime/actor.js';
import type { Context } from '../../src/runtime/context.js';
import type { IoResult } from '../../src/runtime/io.js';
import { Kernel } from '../../src/runtime/kernel.js';
import { until } from '../helpers.js';
import { DISKS, drive, simDisk, type Disk } from './disks.js';

const SEG = '000000010000000000000003';

/** WAL-like contents: repetitive records with counters, as a segment under an insert load. */
function segment(label: string, size = 64 * 1024): Uint8Array {
  const out = new Uint8Array(size);
  const encoder = new TextEncoder();
  for (let at = 0, i = 0; at < size; i++) {
    const record = encoder.encode(`${label} xid ${1000 + i} rel 16384 block ${i >> 5} offset ${i & 31} tuple (${i}, 'customer ${i % 97}')\n`);
    out.set(record.subarray(0, size - at), at);
    at += record.length;
  }
  return out;
}

const gunzipped = (data: Uint8Array | null): Uint8Array | null => (data === null ? null : new Uint8Array(gunzipSync(data)));

for (const [label, make] of DISKS) {
  describe(`the directory archive with gzip compression (${label})`, () => {
    let disk: Disk;
    let archive: string;
    let target: string;
    beforeEach(() => {
      disk = make();
      archive = join(disk.root, 'archive');
      target = join(disk.root, 'RECOVERYXLOG');
      disk.run({ kind: 'file.mkdir', path: archive });
    });
    afterEach(() => disk.close());

    const archiveGzip = (contents: Uint8Array, unique = 'a1') =>
      drive(new ArchiveJob({ name: SEG, directory: archive, unique, bytes: contents, compression: 'gzip' }), disk);
    const restore = (expectedSize?: number) =>
      drive(new RestoreJob({ name: SEG, directory: archive, target, ...(expectedSize === undefined ? {} : { expectedSize }) }), disk);

    it('archives a segment as <name>.gz, smaller, which gunzip reads back, leaving no temporary file', () => {
      const contents = segment('segment 3');
      expect(archiveGzip(contents)).to.deep.equal({ done: true, ok: true, destination: join(archive, `${SEG}.gz`), alreadyArchived: false });
      expect(disk.list(archive)).to.deep.equal([`${SEG}.gz`]);
      const archived = disk.read(join(archive, `${SEG}.gz`))!;
      expect(archived.length).to.be.below(contents.length / 4);
      expect(gunzipped(archived)).to.deep.equal(contents);
    });

    it('restores a compressed segment: found as <name>.gz, decompressed, of the expected size', () => {
      const contents = segment('segment 3');
      archiveGzip(contents);
      expect(restore(contents.length)).to.deep.equal({ done: true, ok: true, found: true, size: contents.length });
      expect(disk.read(target)).to.deep.equal(contents);
    });

    it('takes the identical segment archived twice as archived', () => {
      archiveGzip(segment('segment 3'), 'first');
      expect(archiveGzip(segment('segment 3'), 'second')).to.deep.equal({ done: true, ok: true, destination: join(archive, `${SEG}.gz`), alreadyArchived: true });
      expect(disk.list(archive)).to.deep.equal([`${SEG}.gz`]);
    });

    it('takes the same segment compressed by another compressor as archived', () => {
      const contents = segment('segment 3');
      const other = new Uint8Array(gzipSync(contents, { level: 9 }));
      expect(Buffer.from(other).equals(gzipSync(contents, { level: 1 })), 'other bytes than ours').to.equal(false);
      disk.run({ kind: 'file.writeAtomic', path: join(archive, `${SEG}.gz`), bytes: other });
      expect(archiveGzip(contents)).to.deep.include({ ok: true, alreadyArchived: true });
      expect(disk.read(join(archive, `${SEG}.gz`)), 'left as it was').to.deep.equal(other);
    });

    it('refuses a different segment under an archived name and never overwrites it', () => {
      archiveGzip(segment('timeline 1'), 'first');
      expect(archiveGzip(segment('timeline 2'), 'second')).to.deep.equal({
        done: true, ok: false, error: `archive file "${join(archive, `${SEG}.gz`)}" already exists`,
      });
      expect(gunzipped(disk.read(join(archive, `${SEG}.gz`)))).to.deep.equal(segment('timeline 1'));
      expect(disk.list(archive)).to.deep.equal([`${SEG}.gz`]);
    });

    it('refuses to replace a corrupt archived .gz', () => {
      const corrupt = new TextEncoder().encode('not gzip at all');
      disk.run({ kind: 'file.writeAtomic', path: join(archive, `${SEG}.gz`), bytes: corrupt });
      expect(archiveGzip(segment('segment 3'))).to.deep.equal({ done: true, ok: false, error: `archive file "${join(archive, `${SEG}.gz`)}" already exists` });
      expect(disk.read(join(archive, `${SEG}.gz`))).to.deep.equal(corrupt);
    });

    it('restores the plain file when the archive has both', () => {
      drive(new ArchiveJob({ name: SEG, directory: archive, unique: 'p', bytes: segment('plain'), compression: 'off' }), disk);
      archiveGzip(segment('gzip!'));
      expect(disk.list(archive)).to.deep.equal([SEG, `${SEG}.gz`]);
      expect(restore(64 * 1024)).to.deep.include({ ok: true, found: true });
      expect(disk.read(target)).to.deep.equal(segment('plain'));
    });

    it('answers "not found" when the archive has neither <name> nor <name>.gz', () => {
      expect(restore()).to.deep.equal({ done: true, ok: true, found: false });
      expect(disk.read(target)).to.equal(null);
    });

    for (const [what, bytes, why] of [
      ['not gzip', new TextEncoder().encode('plain text, not gzip'), 'incorrect header check'],
      ['truncated', new Uint8Array(gzipSync(segment('segment 3'))).subarray(0, 200), 'unexpected end of file'],
    ] as const) {
      it(`names a corrupt .gz (${what}) in the error, and writes nothing`, () => {
        disk.run({ kind: 'file.writeAtomic', path: join(archive, `${SEG}.gz`), bytes });
        expect(restore(64 * 1024)).to.deep.equal({ done: true, ok: false, error: `could not decompress file "${join(archive, `${SEG}.gz`)}": ${why}` });
        expect(disk.read(target)).to.equal(null);
      });
    }

    it('refuses a .gz that decompresses to the wrong size, smaller or larger', () => {
      archiveGzip(segment('segment 3'));
      expect(restore(128 * 1024)).to.deep.equal({
        done: true, ok: false, error: `archive file "${SEG}.gz" has wrong size once decompressed: ${64 * 1024} instead of ${128 * 1024}`,
      });
      expect(restore(16 * 1024)).to.deep.equal({
        done: true, ok: false, error: `archive file "${SEG}.gz" has wrong size once decompressed: more than ${16 * 1024} instead of ${16 * 1024}`,
      });
      expect(disk.read(target)).to.equal(null);
    });
  });
}

describe('archive jobs with compression, step by step', () => {
  it('compress before writing, and archive the same segment to the same bytes every time', () => {
    const job = () => new ArchiveJob({ name: SEG, directory: '/archive', unique: 'u', bytes: segment('s'), compression: 'gzip' });
    const first = job();
    expect(first.next(null)).to.deep.include({ kind: 'offload', name: 'gzip' });
    expect(first.temporary).to.equal(`/archive/.${SEG}.gz.u.tmp`);
    const runs = [1, 2].map(() => {
      const disk = simDisk();
      disk.run({ kind: 'file.mkdir', path: '/cluster/archive' });
      drive(new ArchiveJob({ name: SEG, directory: '/cluster/archive', unique: 'u', bytes: segment('s'), compression: 'gzip' }), disk);
      return disk.read(`/cluster/archive/${SEG}.gz`);
    });
    expect(runs[0]).to.deep.equal(runs[1]);
  });

  it('report a failed compression with the file it was for', () => {
    const job = new ArchiveJob({ name: SEG, directory: '/archive', unique: 'u', source: `/data/pg_wal/${SEG}`, compression: 'gzip' });
    job.next(null);
    job.next({ ok: true, value: segment('s') });
    expect(job.next({ ok: false, error: { message: 'worker exited' } })).to.deep.equal({
      done: true, ok: false, error: `could not compress file "/data/pg_wal/${SEG}": worker exited`,
    });
  });
});

describe('basic_archive.compression', () => {
  const setting = requireSetting('basic_archive.compression');

  it('is off unless set, and changes at reload', () => {
    expect(setting).to.deep.include({ type: 'enum', default: 'off', values: ['off', 'gzip'], context: 'sighup' });
    expect(checkValue(setting, 'GZIP')).to.equal('gzip');
  });

  it('refuses another method, listing the ones it has', () => {
    let err: unknown;
    try {
      checkValue(setting, 'zstd');
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PgError);
    expect((err as PgError).message).to.equal('invalid value for parameter "basic_archive.compression": "zstd"');
    expect((err as PgError).hint).to.equal('Available values: off, gzip.');
  });
});

// ---- through a kernel: compression on the real offload pool ---------------------------------

const ARCHIVING = defineBehaviour(import.meta.url, 'ArchivingCompressed', (args: { directory: string; contents: Uint8Array; outcomes: ArchiveDone[] }) => {
  let job: ArchiveJob;
  const run = (step: ArchiveStep, ctx: Context): void => {
    if ('done' in step) args.outcomes.push(step);
    else ctx.io(step, 'ArchiveStep');
  };
  return {
    start(ctx: Context) {
      job = new ArchiveJob({ name: SEG, directory: args.directory, unique: ctx.newId(), bytes: args.contents, compression: 'gzip' });
      run(job.next(null), ctx);
    },
    receive: (msg: Message, ctx: Context) => run(job.next(msg as IoResult), ctx),
  };
});

const RESTORING = defineBehaviour(import.meta.url, 'RestoringCompressed', (args: { directory: string; target: string; size: number; outcomes: RestoreDone[] }) => {
  const job = new RestoreJob({ name: SEG, directory: args.directory, target: args.target, expectedSize: args.size });
  const run = (step: RestoreStep, ctx: Context): void => {
    if ('done' in step) args.outcomes.push(step);
    else ctx.io(step, 'RestoreStep');
  };
  return {
    start: (ctx: Context) => run(job.next(null), ctx),
    receive: (msg: Message, ctx: Context) => run(job.next(msg as IoResult), ctx),
  };
});

describe('compressed archiving through a kernel', () => {
  it('on the real file system, two servers archive the same segment gzipped and a third restores it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-archive-'));
    const kernel = new Kernel();
    try {
      const archive = join(dir, 'archive');
      mkdirSync(archive);
      const contents = segment('segment 3', 1024 * 1024);
      const archived: ArchiveDone[] = [];
      for (const server of ['primary', 'standby']) kernel.spawn({ name: server, behaviour: ARCHIVING, args: { directory: archive, contents, outcomes: archived } });
      await until(() => archived.length === 2, 'both archivers');
      expect(archived.every((o) => o.ok)).to.equal(true);
      expect(archived.filter((o) => o.ok && o.alreadyArchived)).to.have.length(1);
      expect(readdirSync(archive)).to.deep.equal([`${SEG}.gz`]);
      const restored: RestoreDone[] = [];
      const target = join(dir, 'RECOVERYXLOG');
      kernel.spawn({ name: 'startup', behaviour: RESTORING, args: { directory: archive, target, size: contents.length, outcomes: restored } });
      await until(() => restored.length === 1, 'the restore');
      expect(restored).to.deep.equal([{ done: true, ok: true, found: true, size: contents.length }]);
      expect(new Uint8Array(readFileSync(target))).to.deep.equal(contents);
    } finally {
      await kernel.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
