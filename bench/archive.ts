/*
 * archive.ts — how fast the built-in directory archive takes WAL segments, against a plain
 * copy, in one run on the same disk:
 *
 *   copy        fs.copyFileSync + fdatasync of each segment (no directory sync)
 *   archive     ArchiveJob (basic_archive.compression = off): read, write a new file and
 *               fsync it, publish with link(2) and a directory fsync, through RealFileIo
 *   gzip        the same with compression = gzip: the compression runs on the offload pool
 *               (piscina), as the archiver runs it; the compression ratio beside it
 *
 * Segments are one at a time, as the archiver archives them; the three take turns for
 * --rounds rounds and each figure is the median (of the rates, and of each round's ratio to
 * the copy). The segments are real WAL: a walship
 * primary (inline, 16 MB segments, archive_command copying them out) under INSERT ... SELECT
 * of order-like rows until --segments full segments are archived (the first, initdb's, is
 * skipped). With --wal DIR the segments are kept in DIR, and a DIR that has them already is
 * used as it is (no new cluster run).
 * Also printed: gzipSync level 1 against level 6 on one thread, the choice compress.ts made.
 * Usage: node dist/bench/archive.js [--segments N] [--rounds R] [--wal DIR]
 */
import { closeSync, copyFileSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ArchiveJob, type StepResult } from '../src/archive/store.js';
import { Cluster } from '../src/index.js';
import { RealFileIo } from '../src/runtime/fileio.js';
import { ioError, type IoOp } from '../src/runtime/io.js';
import { acquireOffloadPool } from '../src/runtime/offload.js';
import { quantile } from './raw.js';
import { arg, numberArg } from './args.js';

const SEGMENTS = numberArg('segments', 16);
const ROUNDS = numberArg('rounds', 3);
const WAL = arg('wal', '');
const SEGMENT_NAME = /^[0-9A-F]{24}$/;

/** Full 16 MB segments of real WAL, written by a primary under an insert load, copied into `into`. */
async function generateSegments(dir: string, into: string): Promise<void> {
  const cluster = await Cluster.create({ dir: join(dir, 'cluster'), placement: 'inline' });
  try {
    const primary = await cluster.initPrimary('primary', { settings: { archive_mode: 'on', archive_command: `cp %p ${into}/%f` } });
    await primary.query('CREATE TABLE orders (id int PRIMARY KEY, customer text, item text, quantity int, note text)');
    const session = await primary.connect({ settings: { synchronous_commit: 'off' } });
    let id = 0;
    const archived = async () => (await primary.query('SELECT archived_count FROM pg_stat_archiver')).rows[0]!['archived_count'] as number;
    while (await archived() < SEGMENTS + 1) {
      for (let i = 0; i < 20; i++) {
        await session.query(
          `INSERT INTO orders SELECT g, 'customer ' || (g % 9973), 'item-' || (g % 311) || '-' || $1, g % 17 + 1, 'shipped to warehouse ' || (g % 23) || ' on route ' || (g % 101) FROM generate_series($2::int, $3::int) g`,
          [['red', 'green', 'blue', 'large', 'small'][id % 5]!, id, id + 999],
        );
        id += 1000;
      }
    }
    session.close();
  } finally {
    await cluster.destroy();
  }
}

function copyWithSync(from: string, to: string): void {
  copyFileSync(from, to);
  const fd = openSync(to, 'r+');
  fdatasyncSync(fd);
  closeSync(fd);
}

/** Runs an ArchiveJob to its end: file steps on the node's thread, offload steps on the pool. */
async function archiveOne(io: RealFileIo, offload: (op: IoOp) => Promise<unknown>, job: ArchiveJob): Promise<void> {
  let step = job.next(null);
  while (!('done' in step)) {
    const op: IoOp = step;
    let result: StepResult;
    try {
      result = { ok: true, value: op.kind === 'offload' ? await offload(op) : io.run(op) };
    } catch (err) {
      result = { ok: false, error: ioError(err) };
    }
    step = job.next(result);
  }
  if (!step.ok) throw new Error(step.error);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env['WALSHIP_BENCH_DIR'] ?? tmpdir(), 'walship-archive-bench-'));
  const pool = acquireOffloadPool();
  const io = new RealFileIo();
  try {
    const walDir = WAL === '' ? join(dir, 'wal') : WAL;
    mkdirSync(walDir, { recursive: true });
    const generate = readdirSync(walDir).filter((n) => SEGMENT_NAME.test(n)).length <= SEGMENTS;
    if (generate) {
      const t0 = performance.now();
      await generateSegments(dir, walDir);
      console.log(`generated WAL in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
    const names = readdirSync(walDir).filter((n) => SEGMENT_NAME.test(n)).sort().slice(1, 1 + SEGMENTS);
    if (names.length < SEGMENTS) throw new Error(`${walDir} has ${names.length} segments, ${SEGMENTS} wanted`);
    const sources = names.map((n) => join(walDir, n));
    const totalBytes = sources.reduce((sum, s) => sum + statSync(s).size, 0);

    const methods: Record<string, (target: string) => Promise<void>> = {
      copy: async (target) => { for (const [i, s] of sources.entries()) copyWithSync(s, join(target, names[i]!)); },
      archive: async (target) => {
        for (const [i, s] of sources.entries()) await archiveOne(io, pool.run, new ArchiveJob({ name: names[i]!, source: s, directory: target, unique: `b${i}`, compression: 'off' }));
      },
      gzip: async (target) => {
        for (const [i, s] of sources.entries()) await archiveOne(io, pool.run, new ArchiveJob({ name: names[i]!, source: s, directory: target, unique: `b${i}`, compression: 'gzip' }));
      },
    };
    // A warm-up of each (JIT, page cache, the pool's first thread), not counted.
    for (const run of Object.values(methods)) {
      const target = mkdtempSync(join(dir, 'warm-'));
      await run(target);
      rmSync(target, { recursive: true, force: true });
    }
    const rates: Record<string, number[]> = { copy: [], archive: [], gzip: [] };
    let archivedBytes = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const order = Object.keys(methods);
      for (let k = 0; k < round % order.length; k++) order.push(order.shift()!);
      for (const method of order) {
        const target = mkdtempSync(join(dir, `${method}-`));
        const t0 = performance.now();
        await methods[method]!(target);
        rates[method]!.push(totalBytes / 1e6 / ((performance.now() - t0) / 1000));
        if (method === 'gzip') archivedBytes = readdirSync(target).reduce((sum, f) => sum + statSync(join(target, f)).size, 0);
        rmSync(target, { recursive: true, force: true });
      }
    }
    // The level: one thread, a few segments.
    const sample = sources.slice(0, Math.min(4, sources.length)).map((s) => readFileSync(s));
    const sampleBytes = sample.reduce((sum, b) => sum + b.length, 0);
    const levels = [1, 6].map((level) => {
      const t0 = performance.now();
      const out = sample.reduce((sum, b) => sum + gzipSync(b, { level }).length, 0);
      return { level, mbps: sampleBytes / 1e6 / ((performance.now() - t0) / 1000), ratio: sampleBytes / out };
    });

    const median = (m: string) => quantile(rates[m]!, 0.5);
    /** Against the copy of the same round: the machine's noise moves both. */
    const ratio = (m: string) => quantile(rates[m]!.map((r, i) => r / rates['copy']![i]!), 0.5);
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, dir ${dir}`);
    console.log(`${names.length} segments of real WAL, ${(totalBytes / 1e6).toFixed(0)} MB (${names[0]} .. ${names.at(-1)}), ${ROUNDS} rounds, medians`);
    console.log(`copy + fdatasync                ${median('copy').toFixed(0)} MB/s`);
    console.log(`ArchiveJob, compression off     ${median('archive').toFixed(0)} MB/s  (${ratio('archive').toFixed(2)}x copy)`);
    console.log(`ArchiveJob, compression gzip    ${median('gzip').toFixed(0)} MB/s of WAL  (${ratio('gzip').toFixed(2)}x copy), ratio ${(totalBytes / archivedBytes).toFixed(2)}:1 (${(archivedBytes / 1e6).toFixed(0)} MB archived)`);
    for (const l of levels) console.log(`gzipSync level ${l.level}, one thread     ${l.mbps.toFixed(0)} MB/s, ratio ${l.ratio.toFixed(2)}:1 (${sample.length} segments)`);
  } finally {
    io.close();
    await pool.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
