/*
 * control.ts — the control file, global/pg_control: what a starting server needs to know
 * before it can read anything else.
 *
 * It names the cluster (system identifier), the WAL segment size fixed at initdb, the state
 * the server was last in (so startup knows whether it was shut down cleanly or crashed), the
 * latest checkpoint and its redo point, the timeline, the next transaction id and the
 * minimum recovery point. It is rewritten whole, atomically (write, sync, rename), at every
 * checkpoint and state change, and carries a CRC-32C so that a damaged file is refused
 * rather than believed: "incorrect checksum in control file".
 */
import { Packr, Unpackr } from 'msgpackr';
import { PgError, SqlState } from '../errors.js';
import { crc32c } from '../wal/crc32c.js';
import type { Lsn } from '../wal/lsn.js';
import type { SystemIdentifier, TimelineId } from '../wal/segment.js';

/** pg_controldata's "Database cluster state" values. */
export type ClusterState =
  | 'starting up'
  | 'shut down'
  | 'shut down in recovery'
  | 'shutting down'
  | 'in crash recovery'
  | 'in archive recovery'
  | 'in production';

export interface ControlFile {
  readonly systemIdentifier: SystemIdentifier;
  readonly walSegmentSize: number;
  readonly state: ClusterState;
  /** When the state or checkpoint last changed (ms since the epoch). */
  readonly time: number;
  /** Start of the latest checkpoint record. */
  readonly checkpointLsn: Lsn;
  /** Where replay must begin to recover from that checkpoint. */
  readonly redoLsn: Lsn;
  readonly timeline: TimelineId;
  readonly nextXid: number;
  readonly nextOid: number;
  /** A standby may not be considered consistent before replaying up to here. */
  readonly minRecoveryPoint: Lsn;
}

export const CONTROL_FILE_PATH = 'global/pg_control';
const MAGIC = 0x5743544c; // "WCTL"
const VERSION = 1;
const HEADER = 12; // magic, version, body length

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

export function encodeControlFile(control: ControlFile): Uint8Array {
  const body = packr.pack({ ...control, systemIdentifier: control.systemIdentifier.toString() });
  const bytes = new Uint8Array(HEADER + body.length + 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, body.length, true);
  bytes.set(body, HEADER);
  view.setUint32(HEADER + body.length, crc32c(bytes, 0, 0, HEADER + body.length), true);
  return bytes;
}

function damaged(message: string, hint?: string): PgError {
  return new PgError({ code: SqlState.DataCorrupted, severity: 'FATAL', message, ...(hint === undefined ? {} : { hint }) });
}

/** Reads a control file; a FATAL PgError, with PostgreSQL's wording, if it cannot be trusted. */
export function decodeControlFile(bytes: Uint8Array, path: string): ControlFile {
  if (bytes.length < HEADER + 4) throw damaged(`could not read file "${path}": read ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(0, true) !== MAGIC) throw damaged(`"${path}" is not a walship control file`);
  const version = view.getUint32(4, true);
  if (version !== VERSION) {
    throw damaged(`database files are incompatible with server`, `The database cluster was initialized with control file version ${version}, but the server was compiled with version ${VERSION}.`);
  }
  const length = view.getUint32(8, true);
  if (HEADER + length + 4 > bytes.length) throw damaged(`could not read file "${path}": read ${bytes.length} bytes`);
  if (crc32c(bytes, 0, 0, HEADER + length) !== view.getUint32(HEADER + length, true)) {
    throw damaged('incorrect checksum in control file');
  }
  const body = unpackr.unpack(bytes.subarray(HEADER, HEADER + length)) as Omit<ControlFile, 'systemIdentifier'> & { systemIdentifier: string };
  return { ...body, systemIdentifier: BigInt(body.systemIdentifier) };
}

/**
 * A new system identifier, made as initdb makes one: the time in seconds and microseconds
 * and some randomness, so that two clusters never share one.
 */
export function newSystemIdentifier(nowMs: number, random: () => number): SystemIdentifier {
  const seconds = BigInt(Math.floor(nowMs / 1000));
  const micros = BigInt(Math.floor((nowMs % 1000) * 1000));
  const noise = BigInt(Math.floor(random() * 0x1000));
  return ((seconds << 32n) | (micros << 12n) | noise) & 0xffffffffffffffffn;
}
