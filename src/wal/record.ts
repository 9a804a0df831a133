/*
 * record.ts — a WAL record as bytes: a 24-byte header and a msgpackr body.
 *
 *   offset  size  field
 *        0     4  total length (header + body)
 *        4     4  xid of the transaction that wrote it (0 for none)
 *        8     8  LSN of the previous record (the prev-link)
 *       16     1  info (the record kind within its resource manager)
 *       17     1  resource manager
 *       18     2  zero
 *       20     4  CRC-32C of the body, then of header bytes 0-19 (as PostgreSQL orders it)
 *
 * Records start at 8-byte aligned positions (MAXALIGN) and may run across segment files
 * (writer.ts places them, reader.ts finds them). Bodies are encoded without shared msgpackr
 * structures: every record decodes on its own, whoever reads it and from wherever it starts.
 */
import { Packr, Unpackr } from 'msgpackr';
import { assert } from '../assert.js';
import { MAX_WAL_RECORD_BYTES } from '../constants.js';
import { crc32c } from './crc32c.js';
import type { Lsn } from './lsn.js';

export const RECORD_HEADER_SIZE = 24;

/**
 * The segment switch record (PostgreSQL's XLOG_SWITCH, resource manager 0, info 0x40): the
 * rest of its segment is zeroes and the next record opens the next segment. The WAL layer
 * itself must know it, since writer and reader both skip to the boundary after it.
 */
export const SWITCH_RMGR = 0;
export const SWITCH_INFO = 0x40;

export function isSwitchRecord(record: { readonly rmgr: number; readonly info: number }): boolean {
  return record.rmgr === SWITCH_RMGR && record.info === SWITCH_INFO;
}

export interface WalRecordInput {
  readonly rmgr: number;
  readonly info: number;
  readonly xid: number;
  readonly body: unknown;
}

export interface WalRecord extends WalRecordInput {
  /** Where the record starts. */
  readonly lsn: Lsn;
  /** Where the next record starts: past its last byte and alignment padding (PostgreSQL's EndRecPtr). */
  readonly endLsn: Lsn;
  readonly prevLsn: Lsn;
  readonly totalLength: number;
}

export interface RecordHeader {
  readonly totalLength: number;
  readonly xid: number;
  readonly prevLsn: Lsn;
  readonly info: number;
  readonly rmgr: number;
  readonly crc: number;
}

const bodyPackr = new Packr({ useRecords: false, moreTypes: false });
const bodyUnpackr = new Unpackr({ useRecords: false, moreTypes: false });

/** The record's bytes (header + body), CRC included; `prevLsn` is the record before it. */
export function encodeRecord(input: WalRecordInput, prevLsn: Lsn): Uint8Array {
  assert(Number.isInteger(input.rmgr) && input.rmgr >= 0 && input.rmgr < 256, `resource manager id ${input.rmgr} out of range`);
  assert(Number.isInteger(input.info) && input.info >= 0 && input.info < 256, `record info ${input.info} out of range`);
  assert(Number.isInteger(input.xid) && input.xid >= 0 && input.xid < 2 ** 32, `xid ${input.xid} out of range`);
  const body = bodyPackr.pack(input.body);
  const totalLength = RECORD_HEADER_SIZE + body.length;
  if (totalLength > MAX_WAL_RECORD_BYTES) throw new RangeError(`WAL record of ${totalLength} bytes exceeds the maximum of ${MAX_WAL_RECORD_BYTES}`);
  const bytes = new Uint8Array(totalLength);
  bytes.set(body, RECORD_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, totalLength, true);
  view.setUint32(4, input.xid, true);
  view.setUint32(8, Math.floor(prevLsn / 0x100000000), true);
  view.setUint32(12, prevLsn % 0x100000000, true);
  view.setUint8(16, input.info);
  view.setUint8(17, input.rmgr);
  view.setUint32(20, recordCrc(bytes), true);
  return bytes;
}

/** CRC-32C over the body, then the header up to the CRC field. */
export function recordCrc(record: Uint8Array): number {
  const overBody = crc32c(record, 0, RECORD_HEADER_SIZE, record.length);
  return crc32c(record, overBody, 0, 20);
}

export function decodeRecordHeader(bytes: Uint8Array, offset = 0): RecordHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, RECORD_HEADER_SIZE);
  return {
    totalLength: view.getUint32(0, true),
    xid: view.getUint32(4, true),
    prevLsn: view.getUint32(8, true) * 0x100000000 + view.getUint32(12, true),
    info: view.getUint8(16),
    rmgr: view.getUint8(17),
    crc: view.getUint32(20, true),
  };
}

/**
 * Decodes a record whose CRC has been checked; throws if the body does not decode. Binary
 * fields of the body are views into `record` (copying them halved replay speed): redo
 * copies what it keeps, and nothing should hold a body beyond applying it.
 */
export function decodeRecordBody(record: Uint8Array): unknown {
  return bodyUnpackr.unpack(record.subarray(RECORD_HEADER_SIZE));
}
