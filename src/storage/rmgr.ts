/*
 * rmgr.ts — resource managers: who owns each kind of WAL record, and the record kinds.
 *
 * The numbers are PostgreSQL's resource manager ids, so that a DBA reading a walship WAL dump
 * sees familiar names. Each record kind has exactly one redo function (redo.ts); the
 * primary applies its own changes through the same functions, so crash recovery and every
 * standby replay exactly what the primary did.
 *
 * Roles are the one exception to PostgreSQL's numbering: there, CREATE ROLE writes heap
 * records into the pg_authid catalog table, and walship has no catalog heaps. Roles get a
 * resource manager of their own instead, numbered in the range PostgreSQL keeps for custom
 * resource managers (128 and up), as an extension's would be.
 */

export const Rmgr = {
  XLOG: 0,
  Transaction: 1,
  Storage: 2,
  CLOG: 3,
  Database: 4,
  Tablespace: 5,
  Standby: 8,
  Heap2: 9,
  Heap: 10,
  Sequence: 15,
  Authid: 128,
} as const;

export type RmgrId = (typeof Rmgr)[keyof typeof Rmgr];

export const RMGR_NAMES: Readonly<Record<number, string>> = {
  0: 'XLOG', 1: 'Transaction', 2: 'Storage', 3: 'CLOG', 4: 'Database', 5: 'Tablespace', 8: 'Standby', 9: 'Heap2', 10: 'Heap', 15: 'Sequence', 128: 'Authid',
};

/** Record kinds (the `info` byte) within each resource manager. */
export const XlogInfo = { CheckpointShutdown: 0x00, CheckpointOnline: 0x10, Switch: 0x40 } as const;
export const XactInfo = { Commit: 0x00, Abort: 0x20 } as const;
export const HeapInfo = { Insert: 0x00, Delete: 0x10, Update: 0x20, Lock: 0x60 } as const;
export const Heap2Info = { Prune: 0x10, Vacuum: 0x20, Freeze: 0x30 } as const;
export const StandbyInfo = { Lock: 0x00, RunningXacts: 0x10 } as const;
export const StorageInfo = { CreateTable: 0x10, DropTable: 0x20, CreateSequence: 0x30 } as const;
export const DatabaseInfo = { Create: 0x00, Drop: 0x10 } as const;
export const TablespaceInfo = { Create: 0x00, Drop: 0x10 } as const;
export const SequenceInfo = { Log: 0x00 } as const;
export const AuthidInfo = { Create: 0x00, Alter: 0x10, Drop: 0x20 } as const;
