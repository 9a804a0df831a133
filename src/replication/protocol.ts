/*
 * protocol.ts — the replication protocol's messages, by PostgreSQL's names.
 *
 * A replication connection goes: the client (a walreceiver, or pg_basebackup) sends
 * `ReplConnect` to the server's postmaster, which starts a walsender for it; the walsender
 * answers `AuthRequest` naming the method pg_hba.conf chose (`trust`, or SCRAM-SHA-256 with
 * its three messages), then `AuthOk`; from then on the client sends commands:
 *
 *   IdentifySystem                       -> SystemIdentified (systemid, timeline, xlogpos)
 *   StartReplication (slot, lsn, tli)    -> CopyBoth, then XLogData / PrimaryKeepalive,
 *                                           answered by StandbyStatusUpdate; EndOfStream
 *   BaseBackup                           -> BackupStart, BackupFile..., BackupEnd
 *
 * Any failure is `ReplError` with PostgreSQL's SQLSTATE and text, after which the walsender
 * is gone. The client says `ReplDisconnect` when it leaves. Server messages carry the
 * client's `connection` number (ReplConnect). WAL travels as the raw bytes of
 * the stream (segment headers included), so a standby's pg_wal is byte for byte its
 * upstream's.
 */
import type { ActorRef, Message } from '../runtime/actor.js';
import type { PgErrorFields } from '../errors.js';
import type { Lsn } from '../wal/lsn.js';

export interface ReplConnect extends Message {
  readonly type: 'ReplConnect';
  /**
   * The client's number for this attempt: every message the server sends on the connection
   * carries it back (`connection`), so a client that reconnected can tell a late message
   * of an old connection from one of the current one.
   */
  readonly connection: number;
  readonly user: string;
  readonly applicationName: string;
  /** The client's own server, when it is a standby's walreceiver: the walsender watches it. */
  readonly clientServer?: { readonly port: number; readonly postmaster: ActorRef };
  /** The client's address as the server sees it (pg_hba.conf matches on it). */
  readonly address: string;
  readonly replyTo: ActorRef;
}

export interface AuthRequest extends Message {
  readonly type: 'AuthRequest';
  readonly method: 'trust' | 'scram-sha-256' | 'password';
  readonly walsender: ActorRef;
}
export interface PasswordMessage extends Message { readonly type: 'PasswordMessage'; readonly password: string }
export interface ScramClientFirst extends Message { readonly type: 'ScramClientFirst'; readonly data: string }
export interface ScramServerFirst extends Message { readonly type: 'ScramServerFirst'; readonly data: string }
export interface ScramClientFinal extends Message { readonly type: 'ScramClientFinal'; readonly data: string }
export interface AuthOk extends Message { readonly type: 'AuthOk'; readonly serverFinal: string | null; readonly walsender: ActorRef }

export interface ReplError extends Message { readonly type: 'ReplError'; readonly error: PgErrorFields }
export interface ReplDisconnect extends Message { readonly type: 'ReplDisconnect' }

export interface IdentifySystem extends Message { readonly type: 'IdentifySystem' }
export interface SystemIdentified extends Message {
  readonly type: 'SystemIdentified';
  /** Decimal text: 64 bits do not fit a number. */
  readonly systemId: string;
  readonly timeline: number;
  readonly xlogpos: Lsn;
  readonly walSegmentSize: number;
}

export interface StartReplication extends Message {
  readonly type: 'StartReplication';
  readonly slot: string | null;
  readonly startLsn: Lsn;
  readonly timeline: number;
}
export interface CopyBoth extends Message { readonly type: 'CopyBoth' }
/** TIMELINE_HISTORY: the history file of `timeline` (a standby following its upstream's promotion). */
export interface TimelineHistory extends Message { readonly type: 'TimelineHistory'; readonly timeline: number }
export interface TimelineHistoryFile extends Message { readonly type: 'TimelineHistoryFile'; readonly timeline: number; readonly filename: string; readonly content: Uint8Array }

export interface XLogData extends Message {
  readonly type: 'XLogData';
  /** Stream position of the first byte. */
  readonly start: Lsn;
  /** The server's flush position when sent. */
  readonly walEnd: Lsn;
  readonly sendTime: number;
  readonly bytes: Uint8Array;
}
export interface PrimaryKeepalive extends Message {
  readonly type: 'PrimaryKeepalive';
  readonly walEnd: Lsn;
  readonly sendTime: number;
  readonly replyRequested: boolean;
}
export interface StandbyStatusUpdate extends Message {
  readonly type: 'StandbyStatusUpdate';
  readonly write: Lsn;
  readonly flush: Lsn;
  readonly apply: Lsn;
  readonly replyTime: number;
  readonly replyRequested: boolean;
}
export interface HotStandbyFeedback extends Message {
  readonly type: 'HotStandbyFeedback';
  readonly xmin: number;
  readonly replyTime: number;
}
export interface EndOfStream extends Message { readonly type: 'EndOfStream'; readonly walEnd: Lsn }

export interface BaseBackup extends Message { readonly type: 'BaseBackup'; readonly label: string }
export interface BackupStart extends Message {
  readonly type: 'BackupStart';
  readonly startLsn: Lsn;
  readonly timeline: number;
  /** What the whole backup will copy, for progress reports. */
  readonly totalBytes: number;
}
export interface BackupFile extends Message {
  readonly type: 'BackupFile';
  /** Relative to the data directory. */
  readonly path: string;
  readonly bytes: Uint8Array;
}
export interface BackupEnd extends Message { readonly type: 'BackupEnd'; readonly endLsn: Lsn }

/** The cluster's address book (cluster/directory.ts): a server's postmaster by port. */
export interface Register extends Message { readonly type: 'Register'; readonly port: number; readonly postmaster: ActorRef }
export interface Unregister extends Message { readonly type: 'Unregister'; readonly port: number }
/** `from`: the asking server's own port, when a server asks (a partition may stand between the two). */
export interface Resolve extends Message { readonly type: 'Resolve'; readonly host: string; readonly port: number; readonly from?: number; readonly replyTo: ActorRef }
/** `unreachable`: a partition stands between the two ("No route to host"); else null is a refused connection. */
export interface Resolved extends Message { readonly type: 'Resolved'; readonly postmaster: ActorRef | null; readonly unreachable?: boolean }
/**
 * Tell `replyTo` when the server registered at `port` as `postmaster` goes away (stopped,
 * killed, or restarted after a crash): its connections are gone, as a TCP reset says.
 */
export interface Watch extends Message { readonly type: 'Watch'; readonly port: number; readonly postmaster: ActorRef; readonly from?: number; readonly replyTo: ActorRef }
export interface Unwatch extends Message { readonly type: 'Unwatch'; readonly port: number; readonly replyTo: ActorRef }
export interface ServerGone extends Message { readonly type: 'ServerGone'; readonly port: number; readonly postmaster: ActorRef }
/**
 * Fault injection: the network between the servers at ports `a` and `b` is cut (`cut`
 * true) or mended. A cut resets their connections at both ends and refuses new ones
 * ("No route to host") until it is mended.
 */
/** A server's WAL identity, kept in the address book (fencing asks who runs a newer timeline). */
export interface ServerIdentity extends Message { readonly type: 'ServerIdentity'; readonly port: number; readonly systemIdentifier: string; readonly timeline: number }
/** A server removed from the cluster for good: its timeline is forgotten. */
export interface ForgetServer extends Message { readonly type: 'ForgetServer'; readonly port: number }
/** The newest timeline of the same database system among the other registered servers. */
export interface NewestPeerTimeline extends Message { readonly type: 'NewestPeerTimeline'; readonly port: number; readonly systemIdentifier: string; readonly replyTo: ActorRef }
export interface NewestPeerTimelineIs extends Message { readonly type: 'NewestPeerTimelineIs'; readonly peer: { readonly port: number; readonly timeline: number } | null }
export interface Partition extends Message { readonly type: 'Partition'; readonly a: number; readonly b: number; readonly cut: boolean }

/** Largest XLogData payload (PostgreSQL's MAX_SEND_SIZE is 16 WAL pages: 128 kB). */
export const MAX_SEND_SIZE = 128 * 1024;

/**
 * WAL a walsender may have sent but not yet seen written: past it, the walsender waits for
 * the standby's reply. It bounds what sits in mailboxes and on the wire for a slow standby.
 */
export const SEND_WINDOW = 4 * 1024 * 1024;

/** The client address of every replication connection in this build (all servers are local). */
export const LOOPBACK = '127.0.0.1';
