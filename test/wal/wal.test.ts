/*
 * WAL as data: LSNs, CRC-32C, segment names and headers, and the writer/reader pair, on
 * intact and on damaged WAL. Segments are 1 MiB here so that records cross files often.
 */
import { expect } from 'chai';
import { crc32c } from '../../src/wal/crc32c.js';
import { formatLsn, lsnDiff, maxAlign, parseLsn } from '../../src/wal/lsn.js';
import { WalReader, type ReadResult } from '../../src/wal/reader.js';
import { SWITCH_INFO, SWITCH_RMGR, type WalRecord, type WalRecordInput } from '../../src/wal/record.js';
import {
  parseSegmentFileName, SEGMENT_HEADER_SIZE, segmentFileName, walFileName,
} from '../../src/wal/segment.js';
import { WalWriterCore, type SegmentWrite } from '../../src/wal/writer.js';
import { seededRandom } from '../../src/runtime/prng.js';

const MiB = 1024 * 1024;
const SEG = MiB;
const SYSID = 7283829910938759274n;

/** Preallocated, zero-filled segment files in memory. */
class Disk {
  readonly files = new Map<number, Uint8Array>();
  apply(writes: readonly SegmentWrite[]): void {
    for (const w of writes) {
      let file = this.files.get(w.segno);
      if (file === undefined) {
        file = new Uint8Array(SEG);
        this.files.set(w.segno, file);
      }
      file.set(w.bytes, w.offset);
    }
  }
}

function newWriter(): WalWriterCore {
  return new WalWriterCore({ systemIdentifier: SYSID, timeline: 1, segmentSize: SEG, insertLsn: SEG, prevLsn: 0 });
}

function readAll(disk: Disk, start: number, options: { timeline?: number; sysid?: bigint; prevLsn?: number } = {}): { records: WalRecord[]; end: Extract<ReadResult, { kind: 'end' }> } {
  const reader = new WalReader({
    systemIdentifier: options.sysid ?? SYSID, timeline: options.timeline ?? 1, segmentSize: SEG, startLsn: start, prevLsn: options.prevLsn ?? 0,
  });
  const records: WalRecord[] = [];
  for (;;) {
    const r = reader.next();
    if (r.kind === 'record') records.push(r.record);
    else if (r.kind === 'need') reader.supply(r.segno, disk.files.get(r.segno) ?? null);
    else return { records, end: r };
  }
}

function workload(count: number, seed: number, maxBody = 3000): WalRecordInput[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => {
    const size = Math.floor(random() * maxBody);
    return { rmgr: 1 + (i % 5), info: i % 256, xid: 1000 + i, body: { i, blob: new Uint8Array(size).fill(i % 251), note: `record ${i}` } };
  });
}

describe('LSN', () => {
  it('prints and parses X/XXXXXXXX as PostgreSQL does', () => {
    expect(formatLsn(0)).to.equal('0/0');
    expect(formatLsn(0x3000060)).to.equal('0/3000060');
    expect(formatLsn(0x16_b374d848)).to.equal('16/B374D848');
    expect(parseLsn('16/B374D848')).to.equal(0x16_b374d848);
    expect(parseLsn('0/1000028')).to.equal(0x1000028);
    expect(parseLsn('ff/ff')).to.equal(0xff_000000ff);
    expect(() => parseLsn('16-B374D848')).to.throw('invalid input syntax for type pg_lsn: "16-B374D848"');
    expect(() => parseLsn('1/123456789')).to.throw('invalid input syntax for type pg_lsn: "1/123456789"');
  });

  it('subtracts as pg_wal_lsn_diff does, and aligns as MAXALIGN does', () => {
    expect(lsnDiff(parseLsn('0/3000000'), parseLsn('0/1000000'))).to.equal(0x2000000);
    expect(lsnDiff(parseLsn('0/1000000'), parseLsn('1/0'))).to.equal(0x1000000 - 0x100000000);
    expect([0, 1, 8, 9, 23].map(maxAlign)).to.deep.equal([0, 8, 8, 16, 24]);
  });
});

describe('CRC-32C', () => {
  it('matches the standard check values', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).to.equal(0xe3069283);
    expect(crc32c(new Uint8Array(32))).to.equal(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).to.equal(0x62a8ab43);
  });

  it('continues across calls and sub-ranges', () => {
    const bytes = new TextEncoder().encode('walship writes WAL; PostgreSQL reads it');
    const whole = crc32c(bytes);
    expect(crc32c(bytes, crc32c(bytes, 0, 0, 13), 13)).to.equal(whole);
  });
});

describe('segment files', () => {
  it('are named as PostgreSQL names them', () => {
    expect(segmentFileName(1, 1, 16 * MiB)).to.equal('000000010000000000000001');
    expect(segmentFileName(1, 256, 16 * MiB)).to.equal('000000010000000100000000');
    expect(segmentFileName(0x1a, 0x1234, MiB)).to.equal('0000001A0000000100000234');
    expect(walFileName(1, parseLsn('0/3000028'), 16 * MiB)).to.equal('000000010000000000000003');
    expect(parseSegmentFileName('000000010000000100000000', 16 * MiB)).to.deep.equal({ timeline: 1, segno: 256 });
    expect(parseSegmentFileName('00000002.history', 16 * MiB)).to.equal(null);
    expect(parseSegmentFileName('000000010000000000000003.partial', 16 * MiB)).to.equal(null);
  });
});

describe('WAL writer and reader', () => {
  it('ends a segment at a switch record: zeroes to its end, the next record opens the next segment', () => {
    const writer = newWriter();
    const disk = new Disk();
    const inputs = workload(10, 3);
    const before = inputs.slice(0, 5).map((input) => writer.insert(input));
    const switched = writer.insert({ rmgr: SWITCH_RMGR, info: SWITCH_INFO, xid: 0, body: {} });
    const after = inputs.slice(5).map((input) => writer.insert(input));
    disk.apply(writer.takeWrites());
    expect(switched.endLsn % SEG, 'the switch fills its segment').to.equal(0);
    expect(after[0]!.lsn).to.equal(switched.endLsn + SEGMENT_HEADER_SIZE);
    const { records } = readAll(disk, SEG);
    expect(records.map((r) => r.lsn)).to.deep.equal([...before, switched, ...after].map((p) => p.lsn));
    expect(records[5]!.endLsn).to.equal(switched.endLsn);
  });

  it('reads back every record, in order, with its LSNs, across many segments', () => {
    const writer = newWriter();
    const disk = new Disk();
    const inputs = workload(2000, 1);
    const placed = inputs.map((input, i) => {
      const at = writer.insert(input);
      if (i % 37 === 0) disk.apply(writer.takeWrites());
      return at;
    });
    disk.apply(writer.takeWrites());
    expect(disk.files.size, 'records cross several files').to.be.greaterThan(2);
    const { records, end } = readAll(disk, SEG);
    expect(records.map((r) => r.lsn)).to.deep.equal(placed.map((p) => p.lsn));
    expect(records.map((r) => r.endLsn)).to.deep.equal(placed.map((p) => p.endLsn));
    records.forEach((r, i) => {
      expect(r.xid).to.equal(inputs[i]!.xid);
      expect(r.rmgr).to.equal(inputs[i]!.rmgr);
      expect((r.body as { i: number }).i).to.equal(i);
      expect(r.prevLsn).to.equal(i === 0 ? 0 : placed[i - 1]!.lsn);
    });
    expect(end.lsn).to.equal(writer.insertLsn);
    expect(end.foreign).to.equal(false);
    expect(end.reason).to.equal(`invalid record length at ${formatLsn(writer.insertLsn)}: expected at least 24, got 0`);
  });

  it('carries records bigger than a whole segment, and readers may start at any file', () => {
    const writer = newWriter();
    const disk = new Disk();
    writer.insert({ rmgr: 1, info: 0, xid: 1, body: 'small' });
    const big = writer.insert({ rmgr: 1, info: 0, xid: 2, body: new Uint8Array(2.5 * SEG).fill(7) });
    const after = writer.insert({ rmgr: 1, info: 0, xid: 3, body: 'after' });
    disk.apply(writer.takeWrites());
    const { records } = readAll(disk, SEG);
    expect(records.map((r) => r.xid)).to.deep.equal([1, 2, 3]);
    expect((records[1]!.body as Uint8Array).length).to.equal(2.5 * SEG);
    expect(big.endLsn - big.lsn).to.be.greaterThan(2.5 * SEG);
    // A reader starting at the file that holds the last record skips the continued bytes.
    const fromFile = Math.floor(after.lsn / SEG) * SEG;
    const late = readAll(disk, fromFile, { prevLsn: 0 });
    expect(late.records.map((r) => r.xid)).to.deep.equal([3]);
  });

  it('cuts writes at segment boundaries and at the requested LSN', () => {
    const writer = newWriter();
    const first = writer.insert({ rmgr: 1, info: 0, xid: 1, body: new Uint8Array(SEG) });
    const partial = writer.takeWrites(first.lsn + 100);
    expect(partial).to.have.length(1);
    expect(partial[0]).to.deep.include({ segno: 1, offset: 0 });
    expect(partial[0]!.bytes.length).to.equal(first.lsn - SEG + 100);
    const rest = writer.takeWrites();
    expect(rest.map((w) => [w.segno, w.offset])).to.deep.equal([[1, first.lsn - SEG + 100], [2, 0]]);
    expect(writer.writtenLsn).to.equal(writer.insertLsn);
    expect(rest.at(-1)!.bytes.length).to.be.greaterThan(SEGMENT_HEADER_SIZE);
  });
});

describe('WAL reader on damaged WAL', () => {
  function written(count = 300, seed = 2): { disk: Disk; placed: { lsn: number; endLsn: number }[]; writer: WalWriterCore } {
    const writer = newWriter();
    const disk = new Disk();
    const placed = workload(count, seed).map((input) => writer.insert(input));
    disk.apply(writer.takeWrites());
    return { disk, placed, writer };
  }

  function byteAt(disk: Disk, lsn: number): { file: Uint8Array; offset: number } {
    return { file: disk.files.get(Math.floor(lsn / SEG))!, offset: lsn % SEG };
  }

  it('stops before a torn last record', () => {
    const { disk, placed } = written();
    const last = placed.at(-1)!;
    // Only the first part of the last record reached the disk: zero the rest.
    const tornAt = last.lsn + Math.floor((last.endLsn - last.lsn) / 2);
    for (let p = tornAt; p < last.endLsn; p++) {
      const { file, offset } = byteAt(disk, p);
      if (offset >= SEGMENT_HEADER_SIZE) file[offset] = 0;
    }
    const { records, end } = readAll(disk, SEG);
    expect(records).to.have.length(placed.length - 1);
    expect(end.lsn).to.equal(last.lsn);
    expect(end.reason).to.equal(`incorrect resource manager data checksum in record at ${formatLsn(last.lsn)}`);
  });

  it('stops at a zeroed tail', () => {
    const { disk, placed } = written();
    const cut = placed[200]!;
    for (let p = cut.lsn; p < placed.at(-1)!.endLsn; p++) {
      const { file, offset } = byteAt(disk, p);
      if (offset >= SEGMENT_HEADER_SIZE) file[offset] = 0;
    }
    const { records, end } = readAll(disk, SEG);
    expect(records).to.have.length(200);
    expect(end.reason).to.equal(`invalid record length at ${formatLsn(cut.lsn)}: expected at least 24, got 0`);
  });

  it('stops at a CRC mismatch in the middle and returns nothing after it', () => {
    const { disk, placed } = written();
    const bad = placed[120]!;
    const { file, offset } = byteAt(disk, bad.lsn + 30);
    file[offset]! ^= 0x40;
    const { records, end } = readAll(disk, SEG);
    expect(records).to.have.length(120);
    expect(records.at(-1)!.lsn).to.equal(placed[119]!.lsn);
    expect(end).to.deep.equal({ kind: 'end', lsn: bad.lsn, reason: `incorrect resource manager data checksum in record at ${formatLsn(bad.lsn)}`, foreign: false });
  });

  it('stops at a broken prev-link (a stale record from a recycled file)', () => {
    const { disk, placed } = written();
    const victim = placed[50]!;
    const { file, offset } = byteAt(disk, victim.lsn + 8);
    file[offset]! ^= 0x08; // prev-link now points elsewhere
    const { records, end } = readAll(disk, SEG);
    expect(records).to.have.length(50);
    expect(end.reason).to.match(new RegExp(`^record with incorrect prev-link [0-9A-F]+/[0-9A-F]+ at ${formatLsn(victim.lsn)}$`));
  });

  it('refuses a segment from another database system, flagged foreign', () => {
    const { disk } = written(3000, 3);
    expect(disk.files.size).to.be.greaterThan(2);
    const stranger = new WalWriterCore({ systemIdentifier: 42n, timeline: 1, segmentSize: SEG, insertLsn: SEG, prevLsn: 0 });
    const strangerDisk = new Disk();
    workload(3000, 4).forEach((input) => stranger.insert(input));
    strangerDisk.apply(stranger.takeWrites());
    disk.files.set(2, strangerDisk.files.get(2)!);
    const { end } = readAll(disk, SEG);
    expect(end.foreign).to.equal(true);
    expect(end.reason).to.contain(`WAL file is from different database system: WAL file database system identifier is 42, pg_control database system identifier is ${SYSID}`);
  });

  it('refuses a segment of another timeline, flagged foreign', () => {
    const { disk } = written(3000, 3);
    const { end, records } = readAll(disk, SEG, { timeline: 2 });
    expect(records).to.have.length(0);
    expect(end.foreign).to.equal(true);
    expect(end.reason).to.equal('unexpected timeline ID 1 in WAL segment 000000020000000000000001, expected 2');
  });

  it('ends cleanly when the next file does not exist', () => {
    const { disk } = written(3000, 3);
    disk.files.delete(2);
    const { end, records } = readAll(disk, SEG);
    expect(records.length).to.be.greaterThan(0);
    expect(end.foreign).to.equal(false);
    expect(end.reason).to.match(/WAL segment 000000010000000000000002 does not exist$/);
  });
});
