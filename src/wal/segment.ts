/*
 * segment.ts — WAL segment files: their names, their size, and the header each one opens with.
 *
 * The WAL stream is cut into files of `wal_segment_size` bytes (fixed at initdb: a power of
 * two from 1 MiB to 1 GiB, 16 MiB by default). A file is named as PostgreSQL names it,
 * `TTTTTTTTXXXXXXXXYYYYYYYY`: timeline, then the segment number split into a "log id" and a
 * segment within it, all 8-digit upper-case hex. LSNs count every byte of every file,
 * headers included, so a file's first byte is at `segno * segmentSize`.
 *
 * Each file opens with a 64-byte header naming the system identifier, timeline, segment
 * number and segment size, so that a file from another cluster, timeline or position is
 * recognised and refused, and `remLen`, the bytes of a record continued from the previous
 * file (PostgreSQL's xlp_rem_len), so that a reader can start at any file. The header carries
 * its own CRC-32C.
 */
import { assert } from '../assert.js';
import { crc32c } from './crc32c.js';
import type { Lsn } from './lsn.js';

export const SEGMENT_HEADER_SIZE = 64;
export const SEGMENT_MAGIC = 0x57414c53; // "WALS"
export const SEGMENT_VERSION = 1;
export const MIN_SEGMENT_SIZE = 1024 * 1024;
export const MAX_SEGMENT_SIZE = 1024 * 1024 * 1024;
export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;

export type TimelineId = number;
export type SegmentNumber = number;

/** A cluster's identity: PostgreSQL's 64-bit database system identifier. */
export type SystemIdentifier = bigint;

export interface SegmentHeader {
  readonly systemIdentifier: SystemIdentifier;
  readonly timeline: TimelineId;
  readonly segno: SegmentNumber;
  readonly segmentSize: number;
  /** Bytes at the start of this file that belong to a record begun in an earlier file. */
  readonly remLen: number;
}

export function isValidSegmentSize(bytes: number): boolean {
  return Number.isInteger(bytes) && bytes >= MIN_SEGMENT_SIZE && bytes <= MAX_SEGMENT_SIZE && (bytes & (bytes - 1)) === 0;
}

export function segmentsPerLogId(segmentSize: number): number {
  return 0x100000000 / segmentSize;
}

export function segnoOf(lsn: Lsn, segmentSize: number): SegmentNumber {
  return Math.floor(lsn / segmentSize);
}

export function segmentStart(segno: SegmentNumber, segmentSize: number): Lsn {
  return segno * segmentSize;
}

const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');

/** `000000010000000000000003`: the file holding segment `segno` of timeline `timeline`. */
export function segmentFileName(timeline: TimelineId, segno: SegmentNumber, segmentSize: number): string {
  const perId = segmentsPerLogId(segmentSize);
  return hex8(timeline) + hex8(Math.floor(segno / perId)) + hex8(segno % perId);
}

/** The file name holding `lsn`, as `pg_walfile_name()` reports it. */
export function walFileName(timeline: TimelineId, lsn: Lsn, segmentSize: number): string {
  return segmentFileName(timeline, segnoOf(lsn, segmentSize), segmentSize);
}

/** Reads a WAL file name back; null for anything that is not one (history files, .partial...). */
export function parseSegmentFileName(name: string, segmentSize: number): { timeline: TimelineId; segno: SegmentNumber } | null {
  if (!/^[0-9A-F]{24}$/.test(name)) return null;
  const timeline = parseInt(name.slice(0, 8), 16);
  const logId = parseInt(name.slice(8, 16), 16);
  const seg = parseInt(name.slice(16, 24), 16);
  if (timeline === 0 || seg >= segmentsPerLogId(segmentSize)) return null;
  return { timeline, segno: logId * segmentsPerLogId(segmentSize) + seg };
}

export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  assert(isValidSegmentSize(header.segmentSize), `invalid segment size ${header.segmentSize}`);
  assert(header.remLen >= 0 && Number.isInteger(header.remLen), `invalid remLen ${header.remLen}`);
  const bytes = new Uint8Array(SEGMENT_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, SEGMENT_MAGIC, true);
  view.setUint16(4, SEGMENT_VERSION, true);
  view.setUint32(8, header.timeline, true);
  view.setUint32(12, header.segmentSize, true);
  view.setUint32(16, Math.floor(header.segno / 0x100000000), true);
  view.setUint32(20, header.segno % 0x100000000, true);
  view.setBigUint64(24, header.systemIdentifier, true);
  view.setUint32(32, header.remLen, true);
  view.setUint32(SEGMENT_HEADER_SIZE - 4, crc32c(bytes, 0, 0, SEGMENT_HEADER_SIZE - 4), true);
  return bytes;
}

/** Why a segment header was refused; `kind` tells a torn or empty file from a foreign one. */
export interface HeaderProblem {
  readonly kind: 'empty' | 'damaged' | 'foreign';
  readonly message: string;
}

export interface ExpectedHeader {
  readonly systemIdentifier: SystemIdentifier;
  readonly timeline: TimelineId;
  readonly segno: SegmentNumber;
  readonly segmentSize: number;
}

/** Decodes and checks the header at `bytes[offset...]` against what the reader expects. */
export function checkSegmentHeader(bytes: Uint8Array, offset: number, expected: ExpectedHeader, fileName: string): SegmentHeader | HeaderProblem {
  if (bytes.length - offset < SEGMENT_HEADER_SIZE) return { kind: 'damaged', message: `WAL segment ${fileName} is too short for its header` };
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, SEGMENT_HEADER_SIZE);
  const magic = view.getUint32(0, true);
  if (magic === 0 && bytes.subarray(offset, offset + SEGMENT_HEADER_SIZE).every((b) => b === 0)) {
    return { kind: 'empty', message: `WAL segment ${fileName} has not been written yet` };
  }
  if (magic !== SEGMENT_MAGIC) return { kind: 'damaged', message: `invalid magic number ${magic.toString(16).padStart(8, '0').toUpperCase()} in WAL segment ${fileName}` };
  const crc = view.getUint32(SEGMENT_HEADER_SIZE - 4, true);
  if (crc32c(bytes, 0, offset, offset + SEGMENT_HEADER_SIZE - 4) !== crc) return { kind: 'damaged', message: `incorrect header checksum in WAL segment ${fileName}` };
  const version = view.getUint16(4, true);
  if (version !== SEGMENT_VERSION) return { kind: 'foreign', message: `WAL segment ${fileName} has format version ${version}, expected ${SEGMENT_VERSION}` };
  const header: SegmentHeader = {
    timeline: view.getUint32(8, true),
    segmentSize: view.getUint32(12, true),
    segno: view.getUint32(16, true) * 0x100000000 + view.getUint32(20, true),
    systemIdentifier: view.getBigUint64(24, true),
    remLen: view.getUint32(32, true),
  };
  if (header.systemIdentifier !== expected.systemIdentifier) {
    return {
      kind: 'foreign',
      message: `WAL file is from different database system: WAL file database system identifier is ${header.systemIdentifier}, pg_control database system identifier is ${expected.systemIdentifier}`,
    };
  }
  if (header.segmentSize !== expected.segmentSize) {
    return { kind: 'foreign', message: `WAL file is from different database system: incorrect segment size in WAL segment ${fileName}: ${header.segmentSize}, expected ${expected.segmentSize}` };
  }
  if (header.timeline !== expected.timeline) {
    return { kind: 'foreign', message: `unexpected timeline ID ${header.timeline} in WAL segment ${fileName}, expected ${expected.timeline}` };
  }
  if (header.segno !== expected.segno) {
    return { kind: 'foreign', message: `unexpected segment number ${header.segno} in WAL segment ${fileName}, expected ${expected.segno}` };
  }
  return header;
}

export function isHeaderProblem(value: SegmentHeader | HeaderProblem): value is HeaderProblem {
  return 'kind' in value;
}
