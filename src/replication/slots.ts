/*
 * slots.ts — replication slot rules that need no actor: which names are valid, and how
 * safe a slot's WAL is (pg_replication_slots.wal_status and safe_wal_size).
 *
 * wal_status follows PostgreSQL's GetWALAvailability: `reserved` while the slot's
 * restart_lsn is within max_wal_size of the insert position, `extended` while it is beyond
 * that but still kept (by the slot within max_slot_wal_keep_size, or by wal_keep_size),
 * `unreserved` once the next checkpoint would remove it although it is still on disk, and
 * `lost` once it is gone. safe_wal_size is how many more bytes may be written before the slot
 * is in danger, when max_slot_wal_keep_size limits it (null otherwise). A slot persists in
 * pg_replslot/<name>/state, checksummed.
 */
import { PgError, SqlState } from '../errors.js';
import { crc32c } from '../wal/crc32c.js';
import type { Lsn } from '../wal/lsn.js';
import { segnoOf } from '../wal/segment.js';

/** PostgreSQL's NAMEDATALEN - 1. */
export const MAX_SLOT_NAME_LENGTH = 63;

/** A PgError if `name` cannot name a replication slot, null if it can. */
export function slotNameError(name: string): PgError | null {
  if (name.length === 0) return new PgError({ code: '42602', message: `replication slot name "${name}" is too short` });
  if (name.length > MAX_SLOT_NAME_LENGTH) return new PgError({ code: '42622', message: `replication slot name "${name}" is too long` });
  if (!/^[a-z0-9_]+$/.test(name)) {
    return new PgError({
      code: '42602', message: `replication slot name "${name}" contains invalid character`,
      hint: 'Replication slot names may only contain lower case letters, numbers, and the underscore character.',
    });
  }
  return null;
}

export type WalStatus = 'reserved' | 'extended' | 'unreserved' | 'lost';

export interface WalAvailabilityInput {
  readonly restartLsn: Lsn;
  readonly insertLsn: Lsn;
  /** The oldest segment still on disk (the last removed + 1). */
  readonly oldestSegmentOnDisk: number;
  readonly segmentSize: number;
  readonly maxWalSizeMb: number;
  readonly walKeepSizeMb: number;
  /** -1: no limit. */
  readonly maxSlotWalKeepSizeMb: number;
}

const segmentsFor = (mb: number, segmentSize: number): number => Math.floor((mb * 1024 * 1024) / segmentSize);

/** The oldest segment checkpoints keep for this slot (PostgreSQL's KeepLogSeg). */
export function oldestKeptSegment(input: WalAvailabilityInput): number {
  const current = segnoOf(input.insertLsn, input.segmentSize);
  let keep = segnoOf(input.restartLsn, input.segmentSize);
  if (input.maxSlotWalKeepSizeMb >= 0) {
    const slotKeep = segmentsFor(input.maxSlotWalKeepSizeMb, input.segmentSize);
    if (current - keep > slotKeep) keep = current - slotKeep;
  }
  const walKeep = segmentsFor(input.walKeepSizeMb, input.segmentSize);
  if (current - keep < walKeep) keep = Math.max(1, current - walKeep);
  return keep;
}

export function walAvailability(input: WalAvailabilityInput): { walStatus: WalStatus; safeWalSize: number | null } {
  const current = segnoOf(input.insertLsn, input.segmentSize);
  const target = segnoOf(input.restartLsn, input.segmentSize);
  const keptFrom = oldestKeptSegment(input);
  const maxWalSegments = segmentsFor(input.maxWalSizeMb, input.segmentSize) + 1;
  const withinMaxWalSize = current > maxWalSegments ? current - maxWalSegments : 1;
  let walStatus: WalStatus;
  if (target >= keptFrom) walStatus = target >= withinMaxWalSize ? 'reserved' : 'extended';
  else walStatus = target >= input.oldestSegmentOnDisk ? 'unreserved' : 'lost';
  let safeWalSize: number | null = null;
  if (input.maxSlotWalKeepSizeMb >= 0 && walStatus !== 'lost') {
    const failLsn = (target + segmentsFor(input.maxSlotWalKeepSizeMb, input.segmentSize) + 1) * input.segmentSize;
    safeWalSize = failLsn - input.insertLsn;
  }
  return { walStatus, safeWalSize };
}

/** A slot as pg_replslot/<name>/state keeps it across restarts. */
export interface PersistedSlot {
  readonly name: string;
  /** 0: none reserved yet (or invalidated). */
  readonly restartLsn: Lsn;
  readonly invalidated: boolean;
  /** The oldest xid its standby's queries may still need (hot_standby_feedback); null: none. */
  readonly xmin: number | null;
}

export function slotPath(name: string): string {
  return `pg_replslot/${name}/state`;
}

const SLOT_MAGIC = 'walship-slot-1';

/** The state file: a line of JSON and its CRC-32C, so a damaged file is refused, not believed. */
export function encodeSlot(slot: PersistedSlot): Uint8Array {
  const body = JSON.stringify({ magic: SLOT_MAGIC, name: slot.name, restartLsn: slot.restartLsn, invalidated: slot.invalidated, xmin: slot.xmin });
  const bytes = new TextEncoder().encode(body);
  return new TextEncoder().encode(`${body}\n${crc32c(bytes).toString(16)}\n`);
}

export function decodeSlot(bytes: Uint8Array, path: string): PersistedSlot {
  const text = new TextDecoder().decode(bytes);
  const [body, crc] = text.split('\n');
  const damaged = (what: string): PgError => new PgError({
    code: SqlState.DataCorrupted, severity: 'FATAL', message: `replication slot file "${path}" ${what}`,
    hint: 'Remove the slot directory to drop the slot; a standby using it must then be re-created.',
  });
  if (body === undefined || crc === undefined || crc32c(new TextEncoder().encode(body)).toString(16) !== crc) throw damaged('has wrong checksum');
  const parsed = JSON.parse(body) as { magic?: string; name?: string; restartLsn?: number; invalidated?: boolean; xmin?: number | null };
  if (parsed.magic !== SLOT_MAGIC || typeof parsed.name !== 'string' || typeof parsed.restartLsn !== 'number') throw damaged('has wrong magic number');
  return { name: parsed.name, restartLsn: parsed.restartLsn, invalidated: parsed.invalidated === true, xmin: typeof parsed.xmin === 'number' ? parsed.xmin : null };
}
