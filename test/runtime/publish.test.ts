/*
 * publish.test.ts — file.writeNew and file.publish, on the real file system and on SimDisk:
 * a file published under a name nobody has taken yet, and never over one somebody has.
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealFileIo, type FileOp } from '../../src/runtime/fileio.js';
import { seededRandom } from '../../src/runtime/prng.js';
import { SimDisk } from '../../src/runtime/simdisk.js';

/** One disk behind the same few calls, so every case runs on both. */
interface Disk {
  readonly dir: string;
  run(op: FileOp): unknown;
  contents(path: string): string | null;
  names(): string[];
  crash(): void;
}

function realDisk(): Disk & { close(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'walship-publish-'));
  const io = new RealFileIo();
  return {
    dir,
    run: (op) => io.run(op),
    contents: (path) => {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return null;
      }
    },
    names: () => readdirSync(dir).sort(),
    crash: () => undefined,
    close: () => {
      io.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function simDisk(): Disk & { close(): void } {
  const disk = new SimDisk();
  const dir = '/archive';
  disk.mkdirp(dir);
  const handler = disk.handlers()['file.read']!;
  const random = seededRandom(7);
  const run = (op: FileOp): unknown => {
    const { outcome } = handler(op, random);
    if (!outcome.ok) throw Object.assign(new Error(outcome.error.message), { code: outcome.error.code });
    return outcome.value;
  };
  return {
    dir,
    run,
    contents: (path) => {
      const bytes = disk.read(path);
      return bytes === null ? null : Buffer.from(bytes).toString('utf8');
    },
    names: () => run({ kind: 'file.list', dir }) as string[],
    crash: () => disk.crash(random),
    close: () => undefined,
  };
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

for (const [label, make] of [['real file system', realDisk], ['SimDisk', simDisk]] as const) {
  describe(`file.writeNew and file.publish (${label})`, () => {
    let disk: ReturnType<typeof make>;
    beforeEach(() => {
      disk = make();
    });
    afterEach(() => disk.close());

    it('publishes a file under a free name, durably, and removes the temporary name', () => {
      const tmp = join(disk.dir, '.seg.a.tmp');
      const to = join(disk.dir, 'seg');
      disk.run({ kind: 'file.writeNew', path: tmp, bytes: bytes('one') });
      expect(disk.run({ kind: 'file.publish', from: tmp, to })).to.deep.equal({ published: true });
      disk.crash();
      expect(disk.contents(to)).to.equal('one');
      expect(disk.names()).to.deep.equal(['seg']);
    });

    it('leaves a taken name as it was, reports published: false and still removes the temporary name', () => {
      const to = join(disk.dir, 'seg');
      disk.run({ kind: 'file.writeNew', path: join(disk.dir, '.seg.a.tmp'), bytes: bytes('first') });
      disk.run({ kind: 'file.publish', from: join(disk.dir, '.seg.a.tmp'), to });
      disk.run({ kind: 'file.writeNew', path: join(disk.dir, '.seg.b.tmp'), bytes: bytes('second') });
      expect(disk.run({ kind: 'file.publish', from: join(disk.dir, '.seg.b.tmp'), to })).to.deep.equal({ published: false });
      expect(disk.contents(to)).to.equal('first');
      expect(disk.names()).to.deep.equal(['seg']);
    });

    it('refuses to write a new file over an existing one', () => {
      const path = join(disk.dir, '.seg.a.tmp');
      disk.run({ kind: 'file.writeNew', path, bytes: bytes('mine') });
      expect(() => disk.run({ kind: 'file.writeNew', path, bytes: bytes('theirs') })).to.throw().with.property('code', 'EEXIST');
      expect(disk.contents(path)).to.equal('mine');
    });

    it('fails when the file to publish does not exist, and creates nothing', () => {
      expect(() => disk.run({ kind: 'file.publish', from: join(disk.dir, '.ghost.tmp'), to: join(disk.dir, 'seg') }))
        .to.throw().with.property('code', 'ENOENT');
      expect(disk.names()).to.deep.equal([]);
    });
  });
}

describe('file.publish (real file system)', () => {
  it('syncs a file found under the name, since whoever wrote it may not have', () => {
    const disk = realDisk();
    try {
      // Written by an archive_command with cp, say: nothing fsynced it.
      writeFileSync(join(disk.dir, 'seg'), 'by cp');
      disk.run({ kind: 'file.writeNew', path: join(disk.dir, '.seg.a.tmp'), bytes: bytes('by cp') });
      expect(disk.run({ kind: 'file.publish', from: join(disk.dir, '.seg.a.tmp'), to: join(disk.dir, 'seg') })).to.deep.equal({ published: false });
      expect(disk.contents(join(disk.dir, 'seg'))).to.equal('by cp');
    } finally {
      disk.close();
    }
  });
});

describe('file.publish (SimDisk)', () => {
  it('keeps a published file\'s unsynced writes unsynced: a crash still loses them', () => {
    const disk = new SimDisk();
    disk.mkdirp('/a');
    const run = (op: FileOp): unknown => {
      const { outcome } = disk.handlers()[op.kind]!(op, seededRandom(1));
      if (!outcome.ok) throw new Error(outcome.error.message);
      return outcome.value;
    };
    run({ kind: 'file.writeBatch', files: [{ path: '/a/.f.tmp', preallocate: 4, writes: [{ offset: 0, bytes: bytes('abcd') }] }], sync: false });
    expect(run({ kind: 'file.publish', from: '/a/.f.tmp', to: '/a/f' })).to.deep.equal({ published: true });
    expect(Buffer.from(disk.read('/a/f')!).toString()).to.equal('abcd');
    disk.crash(seededRandom(2));
    expect([...disk.read('/a/f')!]).to.deep.equal([0, 0, 0, 0]);
  });
});
