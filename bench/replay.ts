/*
 * replay.ts — how fast the WAL reader walks valid WAL: the upper bound on crash-recovery
 * replay before any redo work. Records are written with the real writer core into
 * in-memory 16 MiB segments, then read back with CRC checks and body decoding.
 * Usage: node dist/bench/replay.js [--records N] [--body BYTES]
 */
import { cpus } from 'node:os';
import { crc32c } from '../src/wal/crc32c.js';
import { WalReader } from '../src/wal/reader.js';
import { WalWriterCore } from '../src/wal/writer.js';
import { numberArg } from './args.js';

const RECORDS = numberArg('records', 300_000);
const BODY = numberArg('body', 100);
const SEG = 16 * 1024 * 1024;

const writer = new WalWriterCore({ systemIdentifier: 1n, timeline: 1, segmentSize: SEG, insertLsn: SEG, prevLsn: 0 });
const files = new Map<number, Uint8Array>();
const payload = new Uint8Array(BODY).fill(42);
for (let i = 0; i < RECORDS; i++) {
  writer.insert({ rmgr: 10, info: 0x10, xid: 1000 + i, body: { rel: 16384, block: i >> 5, offset: i & 31, tuple: payload } });
  if (i % 1000 === 999 || i === RECORDS - 1) {
    for (const w of writer.takeWrites()) {
      let file = files.get(w.segno);
      if (file === undefined) files.set(w.segno, (file = new Uint8Array(SEG)));
      file.set(w.bytes, w.offset);
    }
  }
}
const walBytes = writer.insertLsn - SEG;

const runs: { seconds: number; records: number }[] = [];
for (let run = 0; run < 5; run++) {
  const reader = new WalReader({ systemIdentifier: 1n, timeline: 1, segmentSize: SEG, startLsn: SEG, prevLsn: 0 });
  let records = 0;
  const t0 = performance.now();
  for (;;) {
    const r = reader.next();
    if (r.kind === 'record') records++;
    else if (r.kind === 'need') reader.supply(r.segno, files.get(r.segno) ?? null);
    else break;
  }
  runs.push({ seconds: (performance.now() - t0) / 1000, records });
}
runs.sort((a, b) => a.seconds - b.seconds);
const median = runs[2]!;
const crcBuffer = new Uint8Array(16 * 1024 * 1024).fill(7);
const c0 = performance.now();
crc32c(crcBuffer);
const crcSeconds = (performance.now() - c0) / 1000;
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}`);
console.log(`WAL: ${median.records} records, ${(walBytes / 1e6).toFixed(1)} MB in ${files.size} segments of 16 MiB`);
console.log(`read + CRC + decode: ${(median.records / median.seconds / 1e6).toFixed(2)} M records/s, ${(walBytes / median.seconds / 1e6).toFixed(0)} MB/s (median of 5)`);
console.log(`CRC-32C alone: ${(crcBuffer.length / crcSeconds / 1e6).toFixed(0)} MB/s`);
