/*
 * store.test.ts — the built-in directory archive: archiving a file atomically and durably,
 * the identical file archived twice, a different one refused and never overwritten, two
 * servers racing on one name, and restoring. On the real file system and on SimDisk, step by
 * step and through actors.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArchiveJob, RestoreJob, type ArchiveDone, type ArchiveStep, type RestoreDone, type RestoreStep } from '../../src/archive/store.js';
import { defineBehaviour, type Message } from '../../src/runtime/actor.js';
import type { Context } from '../../src/runtime/context.js';
import type { FileOp } from '../../src/runtime/fileio.js';
import type { IoResult } from '../../src/runtime/io.js';
import { Kernel } from '../../src/runtime/kernel.js';
import { seededRandom } from '../../src/runtime/prng.js';
import { SimDisk } from '../../src/runtime/simdisk.js';
import { SimScheduler } from '../../src/runtime/simulator.js';
import { until } from '../helpers.js';
import { DISKS, drive, type Disk } from './disks.js';

const SEG = '000000010000000000000003';
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array | null): string | null => (data === null ? null : Buffer.from(data).toString('utf8'));

for (const [label, make] of DISKS) {
  describe(`the directory archive (${label})`, () => {
    let disk: Disk;
    let archive: string;
    beforeEach(() => {
      disk = make();
      archive = join(disk.root, 'archive');
      disk.run({ kind: 'file.mkdir', path: archive });
    });
    afterEach(() => disk.close());

    const archiveJob = (contents: string, unique = 'a1') => new ArchiveJob({ name: SEG, directory: archive, unique, bytes: bytes(contents) });

    it('archives a segment under its name, leaving no temporary file', () => {
      expect(drive(archiveJob('segment 3'), disk)).to.deep.equal({ done: true, ok: true, destination: join(archive, SEG), alreadyArchived: false });
      expect(text(disk.read(join(archive, SEG)))).to.equal('segment 3');
      expect(disk.list(archive)).to.deep.equal([SEG]);
    });

    it('reads the segment from its path when given one', () => {
      disk.run({ kind: 'file.mkdir', path: join(disk.root, 'pg_wal') });
      disk.run({ kind: 'file.writeAtomic', path: join(disk.root, 'pg_wal', SEG), bytes: bytes('from pg_wal') });
      const job = new ArchiveJob({ name: SEG, directory: archive, unique: 'b2', source: join(disk.root, 'pg_wal', SEG) });
      expect(drive(job, disk)).to.deep.include({ ok: true, alreadyArchived: false });
      expect(text(disk.read(join(archive, SEG)))).to.equal('from pg_wal');
    });

    it('takes the identical file archived twice as archived', () => {
      drive(archiveJob('segment 3', 'first'), disk);
      expect(drive(archiveJob('segment 3', 'second'), disk)).to.deep.equal({ done: true, ok: true, destination: join(archive, SEG), alreadyArchived: true });
      expect(disk.list(archive)).to.deep.equal([SEG]);
    });

    it('refuses a different file under an archived name and never overwrites it', () => {
      drive(archiveJob('segment 3 of timeline 1', 'first'), disk);
      expect(drive(archiveJob('something else', 'second'), disk)).to.deep.equal({
        done: true, ok: false, error: `archive file "${join(archive, SEG)}" already exists`,
      });
      expect(text(disk.read(join(archive, SEG)))).to.equal('segment 3 of timeline 1');
      expect(disk.list(archive)).to.deep.equal([SEG]);
    });

    it('tells which file is missing: the segment, or the archive directory', () => {
      const source = join(disk.root, 'pg_wal', SEG);
      expect(drive(new ArchiveJob({ name: SEG, directory: archive, unique: 'c3', source }), disk)).to.deep.equal({
        done: true, ok: false, error: `could not open file "${source}": No such file or directory`,
      });
      const missing = join(disk.root, 'no-archive');
      expect(drive(new ArchiveJob({ name: SEG, directory: missing, unique: 'c3', bytes: bytes('x') }), disk)).to.deep.equal({
        done: true, ok: false, error: `could not create file "${join(missing, `.${SEG}.c3.tmp`)}": No such file or directory`,
      });
    });

    for (const [race, contents] of [['identical', ['same segment', 'same segment']], ['different', ['from the primary', 'from the standby']]] as const) {
      it(`lets two servers race on one name with ${race} files, in every interleaving of their steps`, () => {
        const outcomes = new Set<string>();
        let schedules = 0;
        const explore = (schedule: number[]): void => {
          // Replays `schedule` (which job takes each step) on a fresh disk, then tries every next step.
          const fresh = make();
          try {
            const dir = join(fresh.root, 'archive');
            fresh.run({ kind: 'file.mkdir', path: dir });
            const jobs = contents.map((c, i) => new ArchiveJob({ name: SEG, directory: dir, unique: `server${i}`, bytes: bytes(c) }));
            const steps = jobs.map((job) => job.next(null));
            for (const i of schedule) {
              const step = steps[i]!;
              steps[i] = jobs[i]!.next(fresh.run(step as FileOp));
            }
            const running = steps.flatMap((s, i) => ('done' in s ? [] : [i]));
            if (running.length > 0) {
              fresh.close();
              for (const i of running) explore([...schedule, i]);
              return;
            }
            schedules++;
            const done = steps as ArchiveDone[];
            const archived = text(fresh.read(join(dir, SEG)));
            expect(fresh.list(dir), 'no temporary file is left').to.deep.equal([SEG]);
            if (contents[0] === contents[1]) {
              expect(done.every((d) => d.ok), 'both archived').to.equal(true);
              expect(archived).to.equal(contents[0]);
            } else {
              const winners = done.flatMap((d, i) => (d.ok ? [i] : []));
              expect(winners, 'exactly one wins').to.have.length(1);
              expect(archived, 'the archived file is the winner\'s').to.equal(contents[winners[0]!]);
              expect(done[1 - winners[0]!]).to.deep.equal({ done: true, ok: false, error: `archive file "${join(dir, SEG)}" already exists` });
            }
            outcomes.add(done.map((d) => (d.ok ? (d.alreadyArchived ? 'already' : 'published') : 'refused')).join(','));
          } finally {
            fresh.close();
          }
        };
        explore([]);
        // Two steps for the job that publishes first, three for the other (it reads to compare),
        // the winner's publish before the other's: 3 orders with each job winning.
        expect(schedules).to.equal(6);
        expect([...outcomes].sort()).to.deep.equal(race === 'identical' ? ['already,published', 'published,already'] : ['published,refused', 'refused,published']);
      });
    }

    it('restores an archived file to the target path, replacing what was there', () => {
      drive(archiveJob('segment 3'), disk);
      disk.run({ kind: 'file.mkdir', path: join(disk.root, 'pg_wal') });
      const target = join(disk.root, 'pg_wal', 'RECOVERYXLOG');
      disk.run({ kind: 'file.writeAtomic', path: target, bytes: bytes('an older restore') });
      expect(drive(new RestoreJob({ name: SEG, directory: archive, target, expectedSize: 9 }), disk)).to.deep.equal({ done: true, ok: true, found: true, size: 9 });
      expect(text(disk.read(target))).to.equal('segment 3');
    });

    it('answers "not found" for a file the archive does not have, and writes nothing', () => {
      const target = join(disk.root, 'RECOVERYXLOG');
      expect(drive(new RestoreJob({ name: SEG, directory: archive, target }), disk)).to.deep.equal({ done: true, ok: true, found: false });
      expect(disk.read(target)).to.equal(null);
    });

    it('refuses an archived segment of the wrong size, as PostgreSQL does', () => {
      drive(archiveJob('short'), disk);
      const target = join(disk.root, 'RECOVERYXLOG');
      expect(drive(new RestoreJob({ name: SEG, directory: archive, target, expectedSize: 16 }), disk)).to.deep.equal({
        done: true, ok: false, error: `archive file "${SEG}" has wrong size: 5 instead of 16`,
      });
      expect(disk.read(target)).to.equal(null);
    });
  });
}

describe('archive jobs', () => {
  it('refuse names that are not plain file names', () => {
    for (const name of ['', '.hidden', '../escape', 'a/b']) {
      expect(() => new ArchiveJob({ name, directory: '/a', unique: 'x', bytes: new Uint8Array(1) })).to.throw(`invalid archive file name "${name}"`);
      expect(() => new RestoreJob({ name, directory: '/a', target: '/t' })).to.throw(`invalid archive file name "${name}"`);
    }
  });

  it('need a unique part for their temporary file', () => {
    const options = { name: SEG, directory: '/a', bytes: new Uint8Array(1) } as unknown as ConstructorParameters<typeof ArchiveJob>[0];
    expect(() => new ArchiveJob(options)).to.throw('unique part');
    expect(() => new ArchiveJob({ ...options, unique: '../x' })).to.throw('unique part');
  });

  it('remove their temporary file when publishing fails', () => {
    const job = new ArchiveJob({ name: SEG, directory: '/archive', unique: 'u', bytes: bytes('x') });
    expect(job.next(null)).to.deep.include({ kind: 'file.writeNew', path: `/archive/.${SEG}.u.tmp` });
    expect(job.next({ ok: true, value: null })).to.deep.equal({ kind: 'file.publish', from: `/archive/.${SEG}.u.tmp`, to: `/archive/${SEG}` });
    expect(job.next({ ok: false, error: { message: 'EXDEV: cross-device link not permitted, link', code: 'EXDEV' } }))
      .to.deep.equal({ kind: 'file.unlink', path: `/archive/.${SEG}.u.tmp` });
    expect(job.next({ ok: true, value: null })).to.deep.equal({
      done: true, ok: false, error: `could not link file "/archive/.${SEG}.u.tmp" to "/archive/${SEG}": Invalid cross-device link`,
    });
    expect(() => job.next({ ok: true, value: null })).to.throw('stepped after it ended');
  });
});

// ---- through actors: what an archiver does with these jobs ---------------------------------

interface ArchivingArgs {
  readonly name: string;
  readonly directory: string;
  readonly contents: Uint8Array;
  readonly outcomes: ArchiveDone[];
}

/** Archives one file with an ArchiveJob, one ctx.io per step, and records how it ended. */
const ARCHIVING = defineBehaviour(import.meta.url, 'ArchivingOneFile', (args: ArchivingArgs) => {
  let job: ArchiveJob;
  const run = (step: ArchiveStep, ctx: Context): void => {
    if ('done' in step) {
      args.outcomes.push(step);
      ctx.stop(ctx.self);
      return;
    }
    ctx.io(step, 'ArchiveStep');
  };
  return {
    start(ctx: Context) {
      job = new ArchiveJob({ name: args.name, directory: args.directory, unique: ctx.newId(), bytes: args.contents });
      run(job.next(null), ctx);
    },
    receive(msg: Message, ctx: Context) {
      run(job.next(msg as IoResult), ctx);
    },
  };
});

const RESTORING = defineBehaviour(import.meta.url, 'RestoringOneFile', (args: { name: string; directory: string; target: string; outcomes: RestoreDone[] }) => {
  const job = new RestoreJob({ name: args.name, directory: args.directory, target: args.target });
  const run = (step: RestoreStep, ctx: Context): void => {
    if ('done' in step) {
      args.outcomes.push(step);
      return;
    }
    ctx.io(step, 'RestoreStep');
  };
  return {
    start: (ctx: Context) => run(job.next(null), ctx),
    receive: (msg: Message, ctx: Context) => run(job.next(msg as IoResult), ctx),
  };
});

describe('archiving through actors', () => {
  it('under simulation, two servers archiving different files to one name: one wins, whatever the seed', () => {
    const winners = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const disk = new SimDisk();
      disk.mkdirp('/archive');
      const sim = new SimScheduler({ seed, io: disk.handlers(), keepTrace: false });
      const kernel = new Kernel({ id: 'n', scheduler: sim });
      const outcomes: ArchiveDone[][] = [[], []];
      const contents = [bytes('primary'), bytes('standby')];
      contents.forEach((c, i) => kernel.spawn({ name: `archiver${i}`, behaviour: ARCHIVING, args: { name: SEG, directory: '/archive', contents: c, outcomes: outcomes[i]! } }));
      sim.run();
      const done = outcomes.map((o) => o[0]!);
      const winner = done.findIndex((d) => d.ok);
      expect(done.filter((d) => d.ok), `seed ${seed}`).to.have.length(1);
      expect(done[1 - winner]).to.deep.equal({ done: true, ok: false, error: `archive file "/archive/${SEG}" already exists` });
      expect(disk.read(`/archive/${SEG}`)).to.deep.equal(contents[winner]);
      winners.add(winner);
    }
    // The seeds really do interleave the two differently.
    expect([...winners].sort()).to.deep.equal([0, 1]);
  });

  it('under simulation, an archived file survives a crash; restoring it finds it', () => {
    const disk = new SimDisk();
    disk.mkdirp('/archive');
    disk.mkdirp('/data/pg_wal');
    const sim = new SimScheduler({ seed: 5, io: disk.handlers(), keepTrace: false });
    const kernel = new Kernel({ id: 'n', scheduler: sim });
    const archived: ArchiveDone[] = [];
    kernel.spawn({ name: 'archiver', behaviour: ARCHIVING, args: { name: SEG, directory: '/archive', contents: bytes('segment 3'), outcomes: archived } });
    sim.run();
    expect(archived).to.deep.equal([{ done: true, ok: true, destination: `/archive/${SEG}`, alreadyArchived: false }]);
    disk.crash(seededRandom(5));
    const restored: RestoreDone[] = [];
    kernel.spawn({ name: 'startup', behaviour: RESTORING, args: { name: SEG, directory: '/archive', target: '/data/pg_wal/RECOVERYXLOG', outcomes: restored } });
    kernel.spawn({ name: 'startup2', behaviour: RESTORING, args: { name: '000000010000000000000004', directory: '/archive', target: '/data/pg_wal/RECOVERYXLOG2', outcomes: restored } });
    sim.run();
    expect(restored).to.deep.include.members([{ done: true, ok: true, found: true, size: 9 }, { done: true, ok: true, found: false }]);
    expect(text(disk.read('/data/pg_wal/RECOVERYXLOG'))).to.equal('segment 3');
  });

  it('on the real file system, two servers archiving the same file both succeed, through the kernel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-archive-'));
    const kernel = new Kernel();
    try {
      const archive = join(dir, 'archive');
      mkdirSync(archive);
      const outcomes: ArchiveDone[] = [];
      const segment = new Uint8Array(64 * 1024).map((_, i) => i % 251);
      for (const server of ['primary', 'standby']) {
        kernel.spawn({ name: server, behaviour: ARCHIVING, args: { name: SEG, directory: archive, contents: segment, outcomes } });
      }
      await until(() => outcomes.length === 2, 'both archivers');
      expect(outcomes.every((o) => o.ok)).to.equal(true);
      expect(outcomes.filter((o) => o.ok && o.alreadyArchived)).to.have.length(1);
      expect(readdirSync(archive)).to.deep.equal([SEG]);
      expect(new Uint8Array(readFileSync(join(archive, SEG)))).to.deep.equal(segment);
    } finally {
      await kernel.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
