/*
 * views.ts — pg_stat_replication, pg_stat_wal_receiver and pg_replication_slots as pure
 * functions of the server's replication state, with PostgreSQL 15's columns, types and
 * meanings (NULL where PostgreSQL shows NULL).
 */
import type { TypeName } from '../storage/catalog.js';
import type { Datum } from '../storage/heap.js';
import { formatInterval } from '../replication/lag.js';
import { walAvailability, type WalAvailabilityInput } from '../replication/slots.js';
import { formatLsn, type Lsn } from '../wal/lsn.js';

export interface ViewRows {
  readonly columns: readonly { readonly name: string; readonly type: TypeName }[];
  readonly rows: readonly (readonly Datum[])[];
}

/** What a walsender last told shmem about itself. */
export interface WalSenderStatus {
  readonly pid: number;
  readonly usename: string;
  readonly applicationName: string;
  readonly clientAddr: string;
  readonly backendStart: number;
  readonly state: string;
  readonly sent: Lsn | null;
  readonly write: Lsn | null;
  readonly flush: Lsn | null;
  readonly apply: Lsn | null;
  /** Microseconds, or null (PostgreSQL shows NULL when idle). */
  readonly writeLag: number | null;
  readonly flushLag: number | null;
  readonly replayLag: number | null;
  readonly replyTime: number | null;
  readonly slot: string | null;
  /** The standby's xmin (hot_standby_feedback), null if it sends none. */
  readonly xmin: number | null;
}

export interface ReceiverStatus {
  readonly pid: number;
  readonly status: 'starting' | 'streaming' | 'waiting' | 'restarting' | 'stopping';
  readonly receiveStartLsn: Lsn;
  readonly receiveStartTli: number;
  readonly writtenLsn: Lsn;
  readonly flushedLsn: Lsn;
  readonly receivedTli: number;
  readonly lastMsgSendTime: number | null;
  readonly lastMsgReceiptTime: number | null;
  readonly latestEndLsn: Lsn;
  readonly latestEndTime: number | null;
  readonly slotName: string | null;
  readonly senderHost: string | null;
  readonly senderPort: number | null;
  readonly conninfo: string;
}

export interface SlotStatus {
  readonly name: string;
  /** 0: not reserved yet, or invalidated. */
  readonly restartLsn: Lsn;
  readonly activePid: number | null;
  readonly invalidated: boolean;
  /** hot_standby_feedback's xmin, kept while the standby is away. */
  readonly xmin: number | null;
}

/** What wal_status and safe_wal_size depend on besides the slot itself. */
export type WalKeepSettings = Omit<WalAvailabilityInput, 'restartLsn'>;

const lsn = (value: Lsn | null): Datum => (value === null || value === 0 ? null : formatLsn(value));

/** sync_priority and sync_state of a walsender (see replication/syncrep.ts). */
export interface SyncStatus {
  readonly priority: number;
  readonly state: 'sync' | 'potential' | 'quorum' | 'async';
}

export function pgStatReplication(senders: Iterable<WalSenderStatus>, sync: ReadonlyMap<number, SyncStatus>): ViewRows {
  const columns = [
    { name: 'pid', type: 'int4' }, { name: 'usesysid', type: 'int4' }, { name: 'usename', type: 'text' },
    { name: 'application_name', type: 'text' }, { name: 'client_addr', type: 'text' }, { name: 'client_hostname', type: 'text' },
    { name: 'client_port', type: 'int4' }, { name: 'backend_start', type: 'timestamptz' }, { name: 'backend_xmin', type: 'int8' },
    { name: 'state', type: 'text' }, { name: 'sent_lsn', type: 'pg_lsn' }, { name: 'write_lsn', type: 'pg_lsn' },
    { name: 'flush_lsn', type: 'pg_lsn' }, { name: 'replay_lsn', type: 'pg_lsn' }, { name: 'write_lag', type: 'interval' },
    { name: 'flush_lag', type: 'interval' }, { name: 'replay_lag', type: 'interval' }, { name: 'sync_priority', type: 'int4' },
    { name: 'sync_state', type: 'text' }, { name: 'reply_time', type: 'timestamptz' },
  ] as const;
  const rows = [...senders].map((s) => [
    s.pid, 10, s.usename, s.applicationName, s.clientAddr, null, -1, s.backendStart, s.xmin,
    s.state, lsn(s.sent), lsn(s.write), lsn(s.flush), lsn(s.apply),
    formatInterval(s.writeLag), formatInterval(s.flushLag), formatInterval(s.replayLag),
    sync.get(s.pid)?.priority ?? 0, sync.get(s.pid)?.state ?? 'async', s.replyTime,
  ]);
  return { columns, rows };
}

export function pgStatWalReceiver(receiver: ReceiverStatus | null): ViewRows {
  const columns = [
    { name: 'pid', type: 'int4' }, { name: 'status', type: 'text' }, { name: 'receive_start_lsn', type: 'pg_lsn' },
    { name: 'receive_start_tli', type: 'int4' }, { name: 'written_lsn', type: 'pg_lsn' }, { name: 'flushed_lsn', type: 'pg_lsn' },
    { name: 'received_tli', type: 'int4' }, { name: 'last_msg_send_time', type: 'timestamptz' },
    { name: 'last_msg_receipt_time', type: 'timestamptz' }, { name: 'latest_end_lsn', type: 'pg_lsn' },
    { name: 'latest_end_time', type: 'timestamptz' }, { name: 'slot_name', type: 'text' }, { name: 'sender_host', type: 'text' },
    { name: 'sender_port', type: 'int4' }, { name: 'conninfo', type: 'text' },
  ] as const;
  if (receiver === null) return { columns, rows: [] };
  const r = receiver;
  return {
    columns,
    rows: [[
      r.pid, r.status, lsn(r.receiveStartLsn), r.receiveStartTli, lsn(r.writtenLsn), lsn(r.flushedLsn), r.receivedTli,
      r.lastMsgSendTime, r.lastMsgReceiptTime, lsn(r.latestEndLsn), r.latestEndTime, r.slotName, r.senderHost, r.senderPort, r.conninfo,
    ]],
  };
}

export function pgReplicationSlots(slots: Iterable<SlotStatus>, wal: WalKeepSettings): ViewRows {
  const columns = [
    { name: 'slot_name', type: 'text' }, { name: 'plugin', type: 'text' }, { name: 'slot_type', type: 'text' },
    { name: 'datoid', type: 'int4' }, { name: 'database', type: 'text' }, { name: 'temporary', type: 'bool' },
    { name: 'active', type: 'bool' }, { name: 'active_pid', type: 'int4' }, { name: 'xmin', type: 'int8' },
    { name: 'catalog_xmin', type: 'int8' }, { name: 'restart_lsn', type: 'pg_lsn' }, { name: 'confirmed_flush_lsn', type: 'pg_lsn' },
    { name: 'wal_status', type: 'text' }, { name: 'safe_wal_size', type: 'int8' }, { name: 'two_phase', type: 'bool' },
  ] as const;
  const rows = [...slots].map((s) => {
    let walStatus: string | null = null;
    let safeWalSize: number | null = null;
    if (s.invalidated) walStatus = 'lost';
    else if (s.restartLsn !== 0) {
      const availability = walAvailability({ restartLsn: s.restartLsn, ...wal });
      walStatus = availability.walStatus;
      safeWalSize = availability.safeWalSize;
    }
    return [
      s.name, null, 'physical', null, null, false, s.activePid !== null, s.activePid, s.xmin, null,
      lsn(s.invalidated ? 0 : s.restartLsn), null, walStatus, safeWalSize, false,
    ];
  });
  return { columns, rows };
}

/** What the archiver last told shmem (pg_stat_archiver). */
export interface ArchiverStatus {
  readonly archivedCount: number;
  readonly lastArchivedWal: string | null;
  readonly lastArchivedTime: number | null;
  readonly failedCount: number;
  readonly lastFailedWal: string | null;
  readonly lastFailedTime: number | null;
  readonly statsReset: number;
}

/** pg_stat_archiver: one row, zeroes when nothing was ever archived here. */
export function pgStatArchiver(status: ArchiverStatus | null, now: number): ViewRows {
  const columns = [
    { name: 'archived_count', type: 'int8' }, { name: 'last_archived_wal', type: 'text' }, { name: 'last_archived_time', type: 'timestamptz' },
    { name: 'failed_count', type: 'int8' }, { name: 'last_failed_wal', type: 'text' }, { name: 'last_failed_time', type: 'timestamptz' },
    { name: 'stats_reset', type: 'timestamptz' },
  ] as const;
  const s = status ?? { archivedCount: 0, lastArchivedWal: null, lastArchivedTime: null, failedCount: 0, lastFailedWal: null, lastFailedTime: null, statsReset: now };
  return { columns, rows: [[s.archivedCount, s.lastArchivedWal, s.lastArchivedTime, s.failedCount, s.lastFailedWal, s.lastFailedTime, s.statsReset]] };
}

/** A database as the statistics views list it, with its recovery conflicts so far (by kind). */
export interface DatabaseConflicts {
  readonly oid: number;
  readonly name: string;
  readonly tablespace: number;
  readonly lock: number;
  readonly snapshot: number;
  readonly bufferpin: number;
  readonly deadlock: number;
}

/** pg_stat_database_conflicts: PostgreSQL 15's columns; a primary's counters stay zero. */
export function pgStatDatabaseConflicts(databases: readonly DatabaseConflicts[]): ViewRows {
  const columns = [
    { name: 'datid', type: 'int4' }, { name: 'datname', type: 'text' }, { name: 'confl_tablespace', type: 'int8' }, { name: 'confl_lock', type: 'int8' },
    { name: 'confl_snapshot', type: 'int8' }, { name: 'confl_bufferpin', type: 'int8' }, { name: 'confl_deadlock', type: 'int8' },
  ] as const;
  return { columns, rows: databases.map((d) => [d.oid, d.name, d.tablespace, d.lock, d.snapshot, d.bufferpin, d.deadlock]) };
}

/**
 * pg_stat_database, in part: datid, datname, numbackends and conflicts (the sum of
 * pg_stat_database_conflicts' counters). walship keeps no other per-database statistics yet.
 */
export function pgStatDatabase(databases: readonly (DatabaseConflicts & { readonly backends: number })[]): ViewRows {
  const columns = [{ name: 'datid', type: 'int4' }, { name: 'datname', type: 'text' }, { name: 'numbackends', type: 'int4' }, { name: 'conflicts', type: 'int8' }] as const;
  return { columns, rows: databases.map((d) => [d.oid, d.name, d.backends, d.tablespace + d.lock + d.snapshot + d.bufferpin + d.deadlock]) };
}
