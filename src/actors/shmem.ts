/*
 * shmem.ts — the cluster's shared memory: the one actor that owns the database state.
 *
 * PostgreSQL keeps buffers, the commit log and the procarray in shared memory, guarded by
 * locks; here one actor owns them, so each statement runs atomically and in a definite
 * order. It plays two roles, as shared memory does:
 *
 *   during recovery, startup sends it `LoadImage` (the last checkpoint's image) and
 *   `Replay` batches of WAL records, which it applies with the same redo as everything else;
 *
 *   in production, backends send `Execute`: the engine runs the statement, its WAL
 *   records go to the walwriter (the next statement waits only for their LSNs, a few
 *   microseconds), and a commit is answered once it is durable as the session's
 *   synchronous_commit asks (`local`/`on`: flushed; `off`: at once). A commit becomes
 *   visible to other sessions at that same moment. A statement that must wait for another
 *   transaction is parked and run again when that transaction ends.
 *
 * `Checkpoint` returns the state image and the LSN it corresponds to, after flushing WAL to
 * that LSN (WAL before data, as PostgreSQL's rule is). `WalEnd` answers where WAL insertion
 * continues after recovery.
 */
import { Packr, Unpackr } from 'msgpackr';
import { assert } from '../assert.js';
import type { PgErrorFields } from '../errors.js';
import { parseStandbyNames, type StandbyNames } from '../replication/standby-names.js';
import { releasedPositions, syncStates, type SyncCandidate } from '../replication/syncrep.js';
import { defineBehaviour, NORMAL, refKey, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context, TimerId } from '../runtime/context.js';
import { Engine, type ExecuteOptions, type Outcome, type WaitKey } from '../sql/engine.js';
import type { ParsedStatement } from '../sql/parse.js';
import type { QueryResult } from '../sql/result.js';
import type { Isolation } from '../sql/transaction.js';
import type { Xid } from '../storage/clog.js';
import { redo } from '../storage/redo.js';
import { DatabaseState, type StateImage } from '../storage/state.js';
import { formatLsn, parseLsn, type Lsn } from '../wal/lsn.js';
import { SEGMENT_HEADER_SIZE, segmentFileName, segnoOf } from '../wal/segment.js';
import * as rec from '../storage/records.js';
import type { ServerCommandDone } from './backend.js';
import type { WalRecord, WalRecordInput } from '../wal/record.js';
import type { IoResult } from '../runtime/io.js';
import { FirstNormalXid, InvalidXid } from '../storage/clog.js';
import type { WalFlushed, WalFlushSubscribe, WalInserted, WalStatus, WalStatusRequest, XLogFlush, XLogInsert } from './walwriter.js';
import { PgError, SqlState } from '../errors.js';
import type { FileOp } from '../runtime/fileio.js';
import type { SystemHooks } from '../sql/engine.js';
import { pgReplicationSlots, pgStatArchiver, pgStatDatabase, pgStatDatabaseConflicts, type DatabaseConflicts, pgStatReplication, pgStatWalReceiver, type ArchiverStatus, type ReceiverStatus, type SlotStatus, type ViewRows, type WalKeepSettings, type WalSenderStatus } from '../monitoring/views.js';
import { encodeSlot, slotNameError, slotPath, type PersistedSlot } from '../replication/slots.js';
import { Rmgr, XactInfo, XlogInfo, StandbyInfo } from '../storage/rmgr.js';
import type { AccessExclusiveLocksBody, RunningXactsBody, XactBody } from '../storage/records.js';
import type { HistoryEntry } from '../wal/timeline.js';
import { conflictError, findConflict, type Conflict, type ConflictKind } from '../conflicts/detect.js';
import type { Oid } from '../storage/catalog.js';
import type { RecoveryConflict } from './backend.js';

/** Where a server records the commits it acknowledged (see Shmem.acknowledge). */
export const ACK_LOG = 'pg_acknowledged/acks';
/** How long the record of a synchronous_commit = off acknowledgement may lag its reply. */
const ACK_LOG_DELAY_MS = 10;

export interface Execute extends Message {
  readonly type: 'Execute';
  readonly session: string;
  readonly statement: ParsedStatement;
  readonly params: readonly unknown[];
  readonly synchronousCommit: string;
  readonly isolation: Isolation;
  readonly database: string;
  /** default_transaction_read_only */
  readonly readOnly?: boolean;
  readonly replyTo: ActorRef;
  readonly tag: number;
}

export type Executed =
  | (Message & { readonly type: 'Executed'; readonly tag: number; readonly ok: true; readonly result: QueryResult })
  | (Message & { readonly type: 'Executed'; readonly tag: number; readonly ok: false; readonly error: PgErrorFields });

/**
 * A session ended. `terminated`: the server ended it (fast shutdown), which also ends a wait
 * for synchronous replication (the commit stands locally); a client that just leaves does
 * not, as in PostgreSQL (its commit stays invisible until the standbys have it).
 */
export interface EndSession extends Message { readonly type: 'EndSession'; readonly session: string; readonly terminated?: boolean }
/** `standby`: replay goes on after the image (hot standby: the running xids are tracked for snapshots). */
export interface LoadImage extends Message { readonly type: 'LoadImage'; readonly image: Uint8Array | null; readonly standby?: boolean }
/** Records to redo. */
/**
 * Records to replay. `receivedAt` and `source` say when and how their WAL arrived: a hot
 * standby conflict may hold replay until max_standby_streaming_delay (source 'stream') or
 * max_standby_archive_delay (the archive or pg_wal) after that moment.
 */
export interface Replay extends Message {
  readonly type: 'Replay';
  readonly records: readonly WalRecord[];
  readonly receivedAt?: number;
  readonly source?: 'stream' | 'archive';
}
/**
 * The walreceiver to tell of replay progress (null: none now). It hears `Applied` at once
 * with what is really replayed (not what is queued behind a pause), then after each step.
 */
export interface ReplayListener extends Message { readonly type: 'ReplayListener'; readonly walreceiver: ActorRef | null }
/** `force`: a remote_apply commit was among them: its primary waits for this reply. */
export interface Applied extends Message { readonly type: 'Applied'; readonly lsn: Lsn; readonly force?: boolean }

/** Authentication asks for a role's attributes and verifier. */
export interface RoleLookup extends Message { readonly type: 'RoleLookup'; readonly name: string; readonly replyTo: ActorRef }
export interface RoleInfo extends Message {
  readonly type: 'RoleInfo';
  readonly role: { readonly name: string; readonly superuser: boolean; readonly login: boolean; readonly replication: boolean; readonly verifier: string | null } | null;
}
/** A walsender takes a slot for START_REPLICATION; `startLsn` becomes its restart_lsn if it had none. */
export interface SlotAcquire extends Message { readonly type: 'SlotAcquire'; readonly slot: string; readonly pid: number; readonly startLsn?: Lsn; readonly replyTo: ActorRef }
export type SlotAcquired =
  | (Message & { readonly type: 'SlotAcquired'; readonly ok: true })
  | (Message & { readonly type: 'SlotAcquired'; readonly ok: false; readonly error: PgErrorFields });
/** `feedback`: the standby has sent hot_standby_feedback (its xmin, 0 meaning none), so its slot takes it. */
export interface WalSenderReport extends Message, WalSenderStatus { readonly type: 'WalSenderReport'; readonly feedback?: boolean }
/** Fencing: this former primary was superseded by a promotion elsewhere; it refuses writes, saying why. */
export interface Fence extends Message { readonly type: 'Fence'; readonly detail: string; readonly hint: string }
/** A hot standby's oldest xmin now, for its walreceiver's hot_standby_feedback. */
export interface FeedbackXmin extends Message { readonly type: 'FeedbackXmin'; readonly xmin: Xid }
export interface WalSenderGone extends Message { readonly type: 'WalSenderGone'; readonly pid: number; readonly slot: string | null }
export interface ReceiverReport extends Message { readonly type: 'ReceiverReport'; readonly status: ReceiverStatus | null }
/** A base backup in progress keeps WAL from `lsn` on (null: released). */
export interface BackupHold extends Message { readonly type: 'BackupHold'; readonly key: string; readonly lsn: Lsn | null }
/** Settings shmem needs for its views and slot rules (sent at start and at each reload). */
export interface ShmemSettings extends Message {
  readonly type: 'ShmemSettings';
  readonly maxReplicationSlots: number;
  readonly maxWalSizeMb: number;
  readonly walKeepSizeMb: number;
  readonly maxSlotWalKeepSizeMb: number;
  readonly walSegmentSize: number;
  readonly synchronousStandbyNames: string;
  readonly vacuumDeferCleanupAge?: number;
  /** deadlock_timeout: how long replay waits before it looks for sessions waiting on replay in turn. */
  readonly deadlockTimeoutMs?: number;
  /** max_standby_streaming_delay and max_standby_archive_delay, in ms (-1: wait forever). */
  readonly maxStandbyStreamingDelayMs?: number;
  readonly maxStandbyArchiveDelayMs?: number;
}
/**
 * pg_switch_wal(), or the checkpointer at archive_timeout: the current segment ends (if
 * anything was written in it), so that it can be archived. Answered with ServerCommandDone.
 */
export interface SwitchWal extends Message { readonly type: 'SwitchWal'; readonly replyTo: ActorRef; readonly tag: number }
/** The archiver's counters, for pg_stat_archiver. */
export interface ArchiverReport extends Message { readonly type: 'ArchiverReport'; readonly status: ArchiverStatus }
/** Session.cancel(): a commit of `session` waiting for synchronous replication stops waiting. */
export interface CancelRequest extends Message { readonly type: 'CancelRequest'; readonly session: string }
/** Slots read from pg_replslot at start. */
export interface LoadSlots extends Message { readonly type: 'LoadSlots'; readonly slots: readonly PersistedSlot[] }
/**
 * A checkpoint is about to remove WAL segments below `keepSegno`: slots that need them are
 * invalidated, and every slot whose state moved is saved (shmem alone writes pg_replslot,
 * in order with creations and drops). Answered by SlotsSaved once on disk.
 */
export interface SlotsAtCheckpoint extends Message { readonly type: 'SlotsAtCheckpoint'; readonly keepSegno: number; readonly replyTo: ActorRef }
export interface SlotsSaved extends Message { readonly type: 'SlotsSaved'; readonly invalidated: readonly { readonly name: string; readonly restartLsn: Lsn }[] }
/** The end of recovery: where WAL continues, and the cluster identity the walwriter needs. */
export interface RecoveryDone extends Message {
  readonly type: 'RecoveryDone';
  readonly endLsn: Lsn;
  readonly lastLsn: Lsn;
  /** Decimal text: a 64-bit system identifier does not fit a number. */
  readonly systemIdentifier: string;
  readonly timeline: number;
  readonly walSegmentSize: number;
  /** The timeline's history (its ancestors and switch points). */
  readonly history?: readonly HistoryEntry[];
}
export interface AttachWalWriter extends Message { readonly type: 'AttachWalWriter'; readonly walwriter: ActorRef }
export interface WalEndRequest extends Message { readonly type: 'WalEndRequest'; readonly replyTo: ActorRef }
export interface WalEnd extends Message {
  readonly type: 'WalEnd';
  readonly endLsn: Lsn;
  readonly lastLsn: Lsn;
  readonly systemIdentifier: string;
  readonly timeline: number;
  readonly walSegmentSize: number;
  readonly history: readonly HistoryEntry[];
}
export interface CheckpointRequest extends Message { readonly type: 'CheckpointRequest'; readonly replyTo: ActorRef }
export interface CheckpointImage extends Message {
  readonly type: 'CheckpointImage';
  readonly image: Uint8Array;
  readonly redoLsn: Lsn;
  readonly nextXid: Xid;
  readonly nextOid: number;
  readonly running: readonly Xid[];
  /** Slots and base backups that hold WAL back, for the checkpointer's removal rules. */
  readonly slots: readonly SlotStatus[];
  readonly holds: readonly Lsn[];
  /** Where WAL insertion (or, on a standby, receipt) stands. */
  readonly insertLsn: Lsn;
  /** A restartpoint (standby): no WAL is written. */
  readonly inRecovery: boolean;
}
/** A standby with nothing replayed since its last restartpoint skips this one. */
export interface RestartpointSkipped extends Message { readonly type: 'RestartpointSkipped'; readonly redoLsn: Lsn }
export interface InsertRecords extends Message { readonly type: 'InsertRecords'; readonly records: readonly WalRecordInput[]; readonly flush: boolean; readonly replyTo: ActorRef; readonly tag: number }

const imagePackr = new Packr({ useRecords: false, moreTypes: false });
const imageUnpackr = new Unpackr({ useRecords: false, moreTypes: false });

/**
 * A checkpoint image names the WAL position it reflects: recovery replays from there. The
 * image reaches disk before the control file names the new checkpoint, so after a crash in
 * between, the image, not the control file, says where replay must begin (replaying from the
 * older redo point would apply its WAL twice).
 */
export function encodeImage(image: StateImage, redoLsn: Lsn): Uint8Array {
  return new Uint8Array(imagePackr.pack({ redoLsn, state: image }));
}

export function decodeImage(bytes: Uint8Array): { readonly redoLsn: Lsn; readonly state: StateImage } {
  return imageUnpackr.unpack(bytes) as { redoLsn: Lsn; state: StateImage };
}

type Pending =
  | { readonly kind: 'execute'; readonly msg: Execute }
  /** A statement whose slot files are now on disk: its WAL and reply, in queue order. */
  | { readonly kind: 'finish'; readonly msg: Execute; readonly outcome: Outcome }
  | { readonly kind: 'endSession'; readonly session: string }
  | { readonly kind: 'checkpoint'; readonly replyTo: ActorRef }
  | { readonly kind: 'switch'; readonly msg: SwitchWal }
  | { readonly kind: 'insert'; readonly msg: InsertRecords };

/** Work that waits for the walwriter's answer (its LSNs, or its flush), by tag. */
type Awaiting = (reply: WalInserted, ctx: Context) => void;

class Shmem implements Actor {
  constructor(private readonly args: ShmemArgs) {}

  private state = new DatabaseState();
  private engine = new Engine(this.state);
  private walwriter: ActorRef | null = null;
  private insertEnd: Lsn = 0;
  private lastRecord: Lsn = 0;
  private readonly queue: Pending[] = [];
  /** The tag of the insertion whose LSNs we wait for: nothing else runs until they arrive. */
  private inserting: number | null = null;
  private readonly awaiting = new Map<number, Awaiting>();
  private nextTag = 1;
  /** Statements waiting, by what they wait for (a transaction's end, a session's locks). */
  private readonly parked = new Map<WaitKey, Execute[]>();
  private recovered: RecoveryDone | null = null;
  /** Until the end of recovery (on a standby: until promotion) every session is read-only. */
  private recovering = true;
  /** Hot standby: replay continues while sessions read. */
  private standby = false;
  /** End of the last record replayed (pg_last_wal_replay_lsn). */
  private replayedEnd: Lsn = 0;
  private lastReplayTime: number | null = null;
  /** Redo point of the image on disk (loaded, or the last restartpoint's); null before one is loaded. */
  private lastRestartRedo: Lsn | null = null;
  private receivedUpTo: Lsn = 0;
  private readonly senders = new Map<number, WalSenderStatus>();
  private receiver: ReceiverStatus | null = null;
  private archiver: ArchiverStatus | null = null;
  private readonly slots = new Map<string, SlotStatus>();
  private readonly holds = new Map<string, Lsn>();
  private settings: ShmemSettings = {
    type: 'ShmemSettings', maxReplicationSlots: 10, maxWalSizeMb: 1024, walKeepSizeMb: 0, maxSlotWalKeepSizeMb: -1, walSegmentSize: 16 * 1024 * 1024,
    synchronousStandbyNames: '',
  };
  /** synchronous_standby_names as parsed (null: no synchronous replication). */
  private syncConfig: StandbyNames | null = null;
  /** Commits flushed here and waiting for standbys, by the position they wait for, in LSN order. */
  private readonly syncWaiters: Record<SyncPosition, SyncWaiter[]> = { write: [], flush: [], apply: [] };
  /** How far the synchronous standbys have reached, at each level (PostgreSQL's lsn[] in WalSndCtl). */
  private readonly syncReleased: Record<SyncPosition, Lsn> = { write: 0, flush: 0, apply: 0 };
  /** Standby: pg_wal_replay_pause() holds replay here until pg_wal_replay_resume(). */
  private replayPaused = false;
  private replayListener: ActorRef | null = null;
  /** Sessions whose cancel came before their commit started waiting. */
  private readonly cancelPending = new Set<string>();
  private readonly pausedReplay: Replay[] = [];
  /** Replay held by a hot standby conflict: the batch, where in it, and until when (null: forever). */
  private conflictWait: { replay: Replay; index: number; conflict: Conflict; timer: TimerId | null; deadlockTimer: TimerId | null } | null = null;
  /** Hot standby conflicts resolved, by database and kind (pg_stat_database_conflicts). */
  private readonly conflictCounts = new Map<Oid, Record<ConflictKind, number>>();
  /** The backend of each session that has run a statement: where a conflict's FATAL goes. */
  private readonly backends = new Map<string, ActorRef>();
  private oldestSegmentOnDisk = 0;
  /** Slot files written by the statement being executed: its reply waits for them. */
  private slotIo: FileOp[] = [];
  private readonly ioWaits: { ops: FileOp[]; then: (ctx: Context) => void }[] = [];
  /** What pg_replslot holds for each slot (written only when it changes). */
  private readonly persisted = new Map<string, string>();

  receive(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'LoadImage': {
        const load = msg as LoadImage;
        const image = load.image;
        this.state = image === null ? new DatabaseState() : DatabaseState.fromImage(decodeImage(image).state);
        this.engine = new Engine(this.state);
        this.engine.replicationXmin = () => this.replicationXmin();
        this.engine.vacuumDeferCleanupAge = this.settings.vacuumDeferCleanupAge ?? 0;
        this.standby = load.standby === true;
        if (image !== null) this.replayedEnd = decodeImage(image).redoLsn;
        this.lastRestartRedo = this.replayedEnd;
        if (this.standby) {
          // Which of the image's unfinished xids still run is learnt from running-xacts records.
          const clog = this.state.clog;
          for (let xid = FirstNormalXid; xid < clog.nextXid; xid++) if (clog.status(xid) === 'in progress') this.engine.procarray.add(xid);
        }
        return;
      }
      case 'Replay': {
        const replay = msg as Replay;
        if (this.replayPaused || this.conflictWait !== null) {
          this.pausedReplay.push(replay);
          return;
        }
        this.replay(replay, ctx);
        return;
      }
      case 'Fence': {
        const m = msg as Fence;
        this.fenced = { detail: m.detail, hint: m.hint };
        return;
      }
      case 'AckLogTick':
        this.ackTimer = null;
        return this.writeAcks(ctx);
      case 'AckDirMade':
        this.ackDir = 'ready';
        return this.writeAcks(ctx);
      case 'AcksWritten':
        return this.onAcksWritten(msg as IoResult, ctx);
      case 'PromotionTriggered':
        this.promotionTriggered = true;
        return;
      case 'TimelineFollowed':
        // The walreceiver streams the switch segment again on the new timeline: a cascading
        // walsender may send only what is replayed until it has.
        this.receivedUpTo = this.replayedEnd;
        this.flushPublished = Math.min(this.flushPublished, this.replayedEnd);
        return;
      case 'ConflictDeadline':
        return this.onConflictDeadline(ctx);
      case 'ConflictDeadlockCheck':
        return this.onConflictDeadlockCheck(ctx);
      case 'ReplayListener':
        this.replayListener = (msg as ReplayListener).walreceiver;
        if (this.replayListener !== null) {
          ctx.send(this.replayListener, { type: 'Applied', lsn: this.replayedEnd } satisfies Applied);
          this.feedbackSent = null;
          this.sendFeedbackXmin(ctx);
        }
        return;
      case 'SleepOver': {
        const m = msg as Message & { session: string; tag: number };
        this.onSleepOver(m.session, m.tag);
        return;
      }
      case 'CancelRequest': {
        // A cancel that comes while the commit is still being flushed applies once it starts waiting.
        const session = (msg as CancelRequest).session;
        if (this.cancelSleep(session, ctx)) {
          this.drain(ctx);
          return;
        }
        if (!this.cancelSyncWait(session, false, ctx)) this.cancelPending.add(session);
        return;
      }
      case 'RoleLookup': {
        const lookup = msg as RoleLookup;
        ctx.send(lookup.replyTo, { type: 'RoleInfo', role: this.engine.role(lookup.name) ?? null } satisfies RoleInfo);
        return;
      }
      case 'SlotAcquire':
        return this.acquireSlot(msg as SlotAcquire, ctx);
      case 'WalSenderReport': {
        const { type: _, feedback, ...status } = msg as WalSenderReport;
        this.senders.set(status.pid, status);
        const slot = status.slot === null ? undefined : this.slots.get(status.slot);
        if (slot !== undefined && !slot.invalidated && status.flush !== null && status.flush > slot.restartLsn) {
          this.slots.set(slot.name, { ...slot, restartLsn: status.flush });
        }
        // The slot keeps the standby's xmin while it is away (PhysicalReplicationSlotNewXmin).
        const now = status.slot === null ? undefined : this.slots.get(status.slot);
        if (now !== undefined && feedback === true && now.xmin !== status.xmin) this.slots.set(now.name, { ...now, xmin: status.xmin });
        return this.releaseSyncWaiters(ctx);
      }
      case 'WalSenderGone': {
        const gone = msg as WalSenderGone;
        this.senders.delete(gone.pid);
        const slot = gone.slot === null ? undefined : this.slots.get(gone.slot);
        if (slot !== undefined && slot.activePid === gone.pid) this.slots.set(slot.name, { ...slot, activePid: null });
        // A synchronous standby that left is replaced by the next potential one at once.
        return this.releaseSyncWaiters(ctx);
      }
      case 'ArchiverReport':
        this.archiver = (msg as ArchiverReport).status;
        return;
      case 'ReceiverReport': {
        this.receiver = (msg as ReceiverReport).status;
        if (this.receiver !== null) this.receivedUpTo = Math.max(this.receivedUpTo, this.receiver.flushedLsn);
        this.publishStandbyFlush(ctx);
        return;
      }
      // A cascading walsender's source of positions on a standby (the walwriter's role on a primary).
      case 'WalFlushSubscribe': {
        const m = msg as WalFlushSubscribe;
        this.flushSubscribers.set(refKey(m.replyTo), m.replyTo);
        ctx.send(m.replyTo, { type: 'WalFlushed', flushed: this.standbyFlush() } satisfies WalFlushed);
        return;
      }
      case 'WalFlushUnsubscribe':
        this.flushSubscribers.delete(refKey((msg as Message & { replyTo: ActorRef }).replyTo));
        return;
      case 'WalStatusRequest': {
        const flushed = this.standbyFlush();
        ctx.send((msg as WalStatusRequest).replyTo, { type: 'WalStatus', insertLsn: flushed, writtenLsn: flushed, flushedLsn: flushed } satisfies WalStatus);
        return;
      }
      case 'BackupHold': {
        const hold = msg as BackupHold;
        if (hold.lsn === null) this.holds.delete(hold.key);
        else this.holds.set(hold.key, hold.lsn);
        return;
      }
      case 'ShmemSettings': {
        this.settings = msg as ShmemSettings;
        this.engine.vacuumDeferCleanupAge = this.settings.vacuumDeferCleanupAge ?? 0;
        try {
          this.syncConfig = parseStandbyNames(this.settings.synchronousStandbyNames);
        } catch {
          this.syncConfig = null; // refused when the files were read; never here
        }
        // Emptied (or lowered): waiting commits go now.
        return this.releaseSyncWaiters(ctx);
      }
      case 'LoadSlots':
        for (const slot of (msg as LoadSlots).slots) {
          this.slots.set(slot.name, { ...slot, activePid: null });
          this.persisted.set(slot.name, persistedKey(slot));
        }
        return;
      case 'SlotsAtCheckpoint':
        return this.slotsAtCheckpoint(msg as SlotsAtCheckpoint, ctx);
      case 'SlotIoDone':
        return this.ioStep(msg as IoResult, ctx);
      case 'RecoveryDone': {
        const done = msg as RecoveryDone;
        if (this.conflictWait !== null || this.pausedReplay.length > 0 || this.replayPaused) {
          // A promotion: replay finishes what it has first (a pause ends; a conflict is waited out as usual).
          this.pendingRecoveryDone = done;
          if (this.replayPaused) this.resumeReplay(ctx);
          return;
        }
        return this.endRecovery(done, ctx);
      }
      case 'WalEndRequest': {
        this.walEndWaiter = (msg as WalEndRequest).replyTo;
        return this.answerWalEnd(ctx);
      }
      case 'AttachWalWriter':
        this.walwriter = (msg as AttachWalWriter).walwriter;
        return;
      case 'Execute':
        this.backends.set((msg as Execute).session, (msg as Execute).replyTo);
        this.queue.push({ kind: 'execute', msg: msg as Execute });
        return this.drain(ctx);
      case 'SwitchWal':
        this.queue.push({ kind: 'switch', msg: msg as SwitchWal });
        return this.drain(ctx);
      case 'CheckpointRequest':
        this.queue.push({ kind: 'checkpoint', replyTo: (msg as CheckpointRequest).replyTo });
        return this.drain(ctx);
      case 'InsertRecords':
        this.queue.push({ kind: 'insert', msg: msg as InsertRecords });
        return this.drain(ctx);
      case 'EndSession': {
        // Whatever the session still had queued or parked dies with it (it must not run as
        // an autocommit statement of nobody's), and its transaction aborts in queue order.
        const end = msg as EndSession;
        const session = end.session;
        if (end.terminated === true) this.cancelSyncWait(session, true, ctx);
        for (const [key, list] of this.parked) {
          const kept = list.filter((m) => m.session !== session);
          if (kept.length === 0) this.parked.delete(key);
          else this.parked.set(key, kept);
        }
        for (let i = this.queue.length - 1; i >= 0; i--) {
          const item = this.queue[i]!;
          if (item.kind === 'execute' && item.msg.session === session) this.queue.splice(i, 1);
        }
        this.backends.delete(session);
        this.wakeSleeper(session, ctx);
        this.queue.push({ kind: 'endSession', session });
        return this.drain(ctx);
      }
      case 'WalInserted': {
        const reply = msg as WalInserted;
        const waiting = this.awaiting.get(reply.tag);
        if (waiting === undefined) return;
        this.awaiting.delete(reply.tag);
        waiting(reply, ctx);
        return;
      }
    }
  }

  /** Runs queued work in order, pausing while an insertion's LSNs are outstanding. */
  private drain(ctx: Context): void {
    while (this.inserting === null && this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (next.kind === 'execute') this.execute(next.msg, ctx);
      else if (next.kind === 'finish') this.finishExecute(next.msg, next.outcome, ctx);
      else if (next.kind === 'endSession') {
        const records = this.engine.endSession(next.session);
        if (records.length > 0) this.insert(records, ctx, (_, c) => this.wake(c));
        else this.wake(ctx);
      }
      else if (next.kind === 'checkpoint') this.checkpoint(next.replyTo, ctx);
      else if (next.kind === 'switch') this.switchWal(next.msg, ctx);
      else {
        const m = next.msg;
        this.insert(m.records, ctx, (reply, c) => {
          if (!m.flush) c.send(m.replyTo, { ...reply, tag: m.tag });
          else this.flush(reply.endLsn, c, (flushed, c2) => c2.send(m.replyTo, { ...flushed, tag: m.tag }));
        });
      }
    }
    // A statement or a session that ended may have been what replay waited for.
    if (this.conflictWait !== null && this.inserting === null && this.queue.length === 0) this.recheckConflict(ctx);
    if (this.standby) this.sendFeedbackXmin(ctx);
  }

  /** A hot standby tells its walreceiver when its oldest xmin moves (hot_standby_feedback sends it upstream). */
  private sendFeedbackXmin(ctx: Context): void {
    if (this.replayListener === null || !this.recovering) return;
    const local = this.engine.localXmin();
    const downstream = this.replicationXmin();
    const xmin = downstream !== null && downstream < local ? downstream : local;
    if (xmin === this.feedbackSent) return;
    this.feedbackSent = xmin;
    ctx.send(this.replayListener, { type: 'FeedbackXmin', xmin } satisfies FeedbackXmin);
  }

  private feedbackSent: Xid | null = null;

  /** Cascading walsenders on this standby, told how far WAL may be sent. */
  private readonly flushSubscribers = new Map<string, ActorRef>();
  private flushPublished: Lsn = 0;

  /**
   * How far a standby may send WAL downstream: what its walreceiver flushed, or what it
   * replayed (WAL restored from the archive), as PostgreSQL's GetStandbyFlushRecPtr.
   */
  private standbyFlush(): Lsn {
    return Math.max(this.receivedUpTo, this.replayedEnd);
  }

  private publishStandbyFlush(ctx: Context): void {
    if (this.flushSubscribers.size === 0 || !this.recovering) return;
    const flushed = this.standbyFlush();
    if (flushed <= this.flushPublished) return;
    this.flushPublished = flushed;
    for (const subscriber of this.flushSubscribers.values()) ctx.send(subscriber, { type: 'WalFlushed', flushed } satisfies WalFlushed);
  }

  /** The oldest xmin this server's standbys need: their walsenders' feedback, and their slots'. */
  private replicationXmin(): Xid | null {
    let oldest: Xid | null = null;
    const consider = (xmin: number | null): void => {
      if (xmin !== null && (oldest === null || xmin < oldest)) oldest = xmin;
    };
    for (const sender of this.senders.values()) consider(sender.xmin);
    // A standby passes its downstream standbys' feedback on upstream, with its own.
    for (const slot of this.slots.values()) if (!slot.invalidated) consider(slot.xmin);
    return oldest;
  }

  private execute(msg: Execute, ctx: Context): void {
    const options: ExecuteOptions = {
      params: msg.params as ExecuteOptions['params'], defaultIsolation: msg.isolation, now: ctx.now(),
      currentWalLsn: this.insertEnd, inRecovery: this.recovering, database: msg.database,
      defaultReadOnly: msg.readOnly === true, system: this.systemHooks(ctx), random: () => ctx.random(),
      ...(this.fenced === null ? {} : { fenced: this.fenced }),
    };
    this.slotIo = [];
    const outcome = this.engine.execute(msg.session, msg.statement, options);
    if (this.slotIo.length > 0) {
      // A slot created or dropped is on disk before the statement says so.
      const ops = this.slotIo;
      this.slotIo = [];
      return this.afterIo(ops, ctx, (c) => {
        this.queue.unshift({ kind: 'finish', msg, outcome });
        this.drain(c);
      });
    }
    this.finishExecute(msg, outcome, ctx);
  }

  private finishExecute(msg: Execute, outcome: Outcome, ctx: Context): void {
    if (outcome.kind === 'wait') {
      const list = this.parked.get(outcome.blocker) ?? [];
      list.push(msg);
      this.parked.set(outcome.blocker, list);
      if (outcome.records.length > 0) this.insert(outcome.records, ctx, () => {});
      return;
    }
    const deliver = (): void => {
      this.cancelPending.delete(msg.session);
      if (outcome.kind === 'error') ctx.send(msg.replyTo, { type: 'Executed', tag: msg.tag, ok: false, error: outcome.error.toFields() } satisfies Executed);
      else ctx.send(msg.replyTo, { type: 'Executed', tag: msg.tag, ok: true, result: outcome.result } satisfies Executed);
    };
    const sleepMs = outcome.kind === 'done' ? outcome.sleepMs ?? 0 : 0;
    // pg_sleep(): the statement runs on (its transaction's snapshot and locks held) until the time is up.
    const reply = sleepMs > 0 ? (): void => this.sleep(msg, sleepMs, deliver, ctx) : deliver;
    const commit = outcome.kind === 'done' ? outcome.commit : null;
    if (outcome.records.length === 0) {
      reply();
      this.wake(ctx);
      return;
    }
    const records = commit !== null && msg.synchronousCommit === 'remote_apply' ? withApplyFeedback(outcome.records, commit) : outcome.records;
    this.insert(records, ctx, (inserted, c) => {
      if (commit === null) {
        reply();
        this.wake(c);
      } else if (msg.synchronousCommit === 'off') {
        this.engine.finishCommit(commit);
        this.acknowledge(commit, inserted.endLsn, 'off', reply, c);
        this.wake(c);
      } else {
        // The commit becomes visible, and is acknowledged, only once it is on disk, and on
        // the synchronous standbys as far as its level asks; until then it holds its locks.
        this.flush(inserted.endLsn, c, (_, c2) => {
          const done = (c3: Context, notice?: PgErrorFields): void => {
            this.cancelPending.delete(msg.session);
            this.engine.finishCommit(commit);
            if (outcome.kind === 'done') {
              const result = notice === undefined ? outcome.result : { ...outcome.result, notices: [notice] };
              const send = (): void => {
                ctx.send(msg.replyTo, { type: 'Executed', tag: msg.tag, ok: true, result } satisfies Executed);
              };
              // A wait ended by a shutdown terminates the session: its client never hears of the commit.
              if (notice?.code === SqlState.AdminShutdown) send();
              // A cancelled wait acknowledges the commit as durable here only.
              else this.acknowledge(commit, inserted.endLsn, notice === undefined ? msg.synchronousCommit : 'local', send, c3);
            }
            this.wake(c3);
          };
          const position = SYNC_POSITION[msg.synchronousCommit];
          if (position === undefined || this.syncConfig === null) return done(c2);
          this.syncWaiters[position].push({ lsn: inserted.endLsn, session: msg.session, release: done });
          if (this.cancelPending.has(msg.session)) this.cancelSyncWait(msg.session, false, c2);
          else this.releaseSyncWaiters(c2);
        });
      }
    });
  }

  /**
   * Before a commit is acknowledged to its client, it is recorded as acknowledged, with its
   * level, in pg_acknowledged/acks (written, not fsynced: a server crash keeps it, only an
   * OS crash could lose its tail). A rewind reads it to say which of the transactions it
   * discards a client was told had committed. Written in batches: the replies wait for them,
   * except at synchronous_commit = off, whose reply (like its commit) does not wait for a
   * write: its record follows within ACK_LOG_DELAY_MS, with others (+100 us per commit otherwise).
   */
  private acknowledge(xid: Xid, lsn: Lsn, level: string, send: () => void, ctx: Context): void {
    const line = `${xid} ${formatLsn(lsn)} ${level}\n`;
    if (level === 'off') {
      send();
      this.ackQueue.push({ line, send: () => {} });
      if (this.ackTimer === null) this.ackTimer = ctx.after(ACK_LOG_DELAY_MS, { type: 'AckLogTick' });
      return;
    }
    this.ackQueue.push({ line, send });
    this.writeAcks(ctx);
  }

  private ackTimer: TimerId | null = null;
  /** Stopping: the acknowledgement record is written out first (what synchronous_commit = off queued). */
  private stopWhenAcksWritten = false;

  stopping(_reason: unknown, ctx: Context): 'now' | 'later' {
    if (this.ackQueue.length === 0 && this.ackWriting === null) return 'now';
    this.stopWhenAcksWritten = true;
    this.writeAcks(ctx);
    return 'later';
  }

  private readonly ackQueue: { line: string; send: () => void }[] = [];
  private ackWritten = false;
  private ackWriting: { line: string; send: () => void }[] | null = null;
  private ackDir: 'none' | 'making' | 'ready' = 'none';

  private writeAcks(ctx: Context): void {
    if (this.ackWriting !== null || this.ackQueue.length === 0) return;
    if (this.ackDir !== 'ready') {
      if (this.ackDir === 'none') {
        this.ackDir = 'making';
        ctx.io({ kind: 'file.mkdir', path: `${this.dataDir()}/pg_acknowledged` }, 'AckDirMade');
      }
      return;
    }
    const batch = this.ackQueue.splice(0);
    this.ackWriting = batch;
    // The first write of this run starts on a line of its own: a line a crash cut short stays unreadable.
    const text = `${this.ackWritten ? '' : '\n'}${batch.map((a) => a.line).join('')}`;
    this.ackWritten = true;
    ctx.io({ kind: 'file.append', path: `${this.dataDir()}/${ACK_LOG}`, bytes: new TextEncoder().encode(text) }, 'AcksWritten');
  }

  private onAcksWritten(io: IoResult, ctx: Context): void {
    const batch = this.ackWriting!;
    this.ackWriting = null;
    // The record is advisory: a failed write costs the rewind report its certainty, not the commit.
    if (!io.ok) ctx.log('warning', `could not write to file "${this.dataDir()}/${ACK_LOG}": ${io.error.message}`);
    for (const ack of batch) ack.send();
    this.writeAcks(ctx);
    if (this.stopWhenAcksWritten && this.ackQueue.length === 0 && this.ackWriting === null) ctx.stop(ctx.self, NORMAL);
  }

  /**
   * Ends the current segment with a switch record, flushed, unless nothing was written in
   * it (then, as PostgreSQL, the position is returned unchanged).
   */
  private switchWal(msg: SwitchWal, ctx: Context): void {
    const answer = (lsn: Lsn): void => {
      const result: QueryResult = { command: 'SELECT', rowCount: 1, columns: [{ name: 'pg_switch_wal', type: 'pg_lsn' }], rows: [{ pg_switch_wal: formatLsn(lsn) }] };
      ctx.send(msg.replyTo, { type: 'ServerCommandDone', tag: msg.tag, ok: true, result } satisfies ServerCommandDone);
    };
    if (this.recovering) {
      const error = new PgError({ code: SqlState.ObjectNotInPrerequisiteState, message: 'recovery is in progress', hint: 'WAL control functions cannot be executed during recovery.' });
      ctx.send(msg.replyTo, { type: 'ServerCommandDone', tag: msg.tag, ok: false, error: error.toFields() } satisfies ServerCommandDone);
      return;
    }
    const offset = this.insertEnd % this.settings.walSegmentSize;
    if (offset <= SEGMENT_HEADER_SIZE) return answer(this.insertEnd);
    this.insert([rec.switchWal()], ctx, (inserted, c) => {
      this.flush(inserted.endLsn, c, () => answer(inserted.recordEnd ?? inserted.endLsn));
    });
  }

  /** Releases the commits whose position the synchronous standbys have reached (all of them when there is no synchronous replication). */
  private releaseSyncWaiters(ctx: Context): void {
    const positions = this.syncConfig === null ? null : releasedPositions(this.syncConfig, this.syncCandidates());
    for (const level of ['write', 'flush', 'apply'] as const) {
      const queue = this.syncWaiters[level];
      // As PostgreSQL's, the released position only rises (a standby that leaves does not lower it).
      const now = positions === null ? null : positions[level];
      if (now !== null && now > this.syncReleased[level]) this.syncReleased[level] = now;
      const upTo = positions === null ? Infinity : this.syncReleased[level];
      let released = 0;
      while (released < queue.length && queue[released]!.lsn <= upTo) released++;
      for (const waiter of queue.splice(0, released)) waiter.release(ctx);
    }
  }

  /**
   * A waiting commit whose session cancels (or ends) stops waiting: it stands locally,
   * as PostgreSQL says in its WARNING, and becomes visible.
   */
  private cancelSyncWait(session: string, terminating: boolean, ctx: Context): boolean {
    this.cancelPending.delete(session);
    for (const queue of Object.values(this.syncWaiters)) {
      const index = queue.findIndex((w) => w.session === session);
      if (index < 0) continue;
      const [waiter] = queue.splice(index, 1);
      // PostgreSQL raises the user's cancel as a plain WARNING (01000), the shutdown's as 57P01.
      const notice: PgErrorFields = {
        code: terminating ? SqlState.AdminShutdown : SqlState.Warning, severity: 'WARNING',
        message: terminating ? 'canceling the wait for synchronous replication and terminating connection due to administrator command' : 'canceling wait for synchronous replication due to user request',
        detail: 'The transaction has already committed locally, but might not have been replicated to the standby.',
      };
      ctx.log('warning', notice.message);
      ctx.log('info', `DETAIL:  ${notice.detail}`);
      waiter!.release(ctx, notice);
      return true;
    }
    return false;
  }

  /** The walsenders as synchronous replication sees them. */
  private syncCandidates(): SyncCandidate[] {
    return [...this.senders.values()].map((s) => ({
      pid: s.pid, applicationName: s.applicationName, state: s.state, write: s.write, flush: s.flush, apply: s.apply,
    }));
  }

  /** Replays `replay` from record `from`; false if a hot standby conflict holds it there. */
  private replay(replay: Replay, ctx: Context, from = 0): boolean {
    let feedback = false;
    let finished = true;
    let locksReleased = false;
    for (let i = from; i < replay.records.length; i++) {
      const record = replay.records[i]!;
      if (this.standby && !this.resolveConflicts(replay, i, ctx)) {
        finished = false;
        break;
      }
      redo(this.state, record);
      this.lastRecord = record.lsn;
      this.replayedEnd = record.endLsn;
      if (this.standby) locksReleased = this.trackRunning(record) || locksReleased;
      if (record.rmgr === Rmgr.Transaction && (record.body as { applyFeedback?: boolean }).applyFeedback === true) feedback = true;
    }
    if (this.replayListener !== null) ctx.send(this.replayListener, { type: 'Applied', lsn: this.replayedEnd, ...(feedback ? { force: true } : {}) } satisfies Applied);
    this.sendFeedbackXmin(ctx);
    this.publishStandbyFlush(ctx);
    // Sessions waiting for a replayed lock may go on.
    if (locksReleased) this.wake(ctx);
    return finished;
  }

  /**
   * Before `replay.records[index]` is applied: the standby sessions in its way (if any) are
   * waited for up to max_standby_{streaming,archive}_delay after its WAL arrived, then
   * cancelled or terminated; a dropped database's sessions at once. False: replay waits.
   */
  private resolveConflicts(replay: Replay, index: number, ctx: Context): boolean {
    const conflict = this.findConflict(replay.records[index]!);
    if (conflict === null) return true;
    const delay = replay.source === 'stream' ? (this.settings.maxStandbyStreamingDelayMs ?? 30_000) : (this.settings.maxStandbyArchiveDelayMs ?? 30_000);
    const deadline = delay < 0 ? null : (replay.receivedAt ?? ctx.now()) + delay;
    if (conflict.kind === 'database' || (deadline !== null && ctx.now() >= deadline)) {
      this.endConflictingSessions(conflict, ctx);
      return true;
    }
    const timer = deadline === null ? null : ctx.after(deadline - ctx.now(), { type: 'ConflictDeadline' });
    // A session that waits for a lock replay holds while replay waits for it is a deadlock: looked for after deadlock_timeout.
    const deadlockAt = ctx.now() + (this.settings.deadlockTimeoutMs ?? 1_000);
    const deadlockTimer = deadline === null || deadlockAt < deadline ? ctx.after(deadlockAt - ctx.now(), { type: 'ConflictDeadlockCheck' }) : null;
    this.conflictWait = { replay, index, conflict, timer, deadlockTimer };
    return false;
  }

  private findConflict(record: WalRecord): Conflict | null {
    return findConflict(record, this.engine.standbySessions(), (rel) => this.state.catalog.tableByOid(rel)?.database ?? null);
  }

  /** The sessions replay waited for ended by themselves (or fewer are in the way now). */
  private recheckConflict(ctx: Context): void {
    const wait = this.conflictWait!;
    const conflict = this.findConflict(wait.replay.records[wait.index]!);
    if (conflict !== null) {
      this.conflictWait = { ...wait, conflict };
      return;
    }
    if (wait.timer !== null) ctx.cancel(wait.timer);
    if (wait.deadlockTimer !== null) ctx.cancel(wait.deadlockTimer);
    this.continueReplay(ctx);
  }

  /**
   * deadlock_timeout into a wait: the sessions in the way that are themselves waiting for a
   * lock replay holds can never finish; they are cancelled now (confl_deadlock), as
   * PostgreSQL's startup process has them check for a deadlock.
   */
  private onConflictDeadlockCheck(ctx: Context): void {
    const wait = this.conflictWait;
    if (wait === null) return;
    this.conflictWait = { ...wait, deadlockTimer: null };
    const conflict = this.findConflict(wait.replay.records[wait.index]!);
    if (conflict === null) return this.recheckConflict(ctx);
    const stuck = conflict.sessions.filter((session) => this.waitsForReplay(session));
    if (stuck.length === 0) return;
    this.endConflictingSessions({ kind: 'deadlock', sessions: stuck, database: conflict.database }, ctx);
    if (this.conflictWait !== null) this.recheckConflict(ctx);
  }

  /** Is the session's statement parked behind a lock that replay holds? */
  private waitsForReplay(session: string): boolean {
    for (const [key, list] of this.parked) if (key.startsWith('s:startup:') && list.some((m) => m.session === session)) return true;
    return false;
  }

  /** max_standby_*_delay is up: the sessions still in the way go, and replay goes on. */
  private onConflictDeadline(ctx: Context): void {
    const wait = this.conflictWait;
    if (wait === null) return;
    const conflict = this.findConflict(wait.replay.records[wait.index]!);
    if (conflict !== null) this.endConflictingSessions(conflict, ctx);
    // Ending them may have let replay go on already (see drain).
    if (this.conflictWait !== null && this.conflictWait.replay === wait.replay && this.conflictWait.index === wait.index) {
      if (this.conflictWait.deadlockTimer !== null) ctx.cancel(this.conflictWait.deadlockTimer);
      this.continueReplay(ctx);
    }
  }

  private continueReplay(ctx: Context): void {
    const wait = this.conflictWait!;
    this.conflictWait = null;
    if (this.replayPaused) {
      // pg_wal_replay_pause() came meanwhile: the rest waits for pg_wal_replay_resume().
      this.pausedReplay.unshift({ ...wait.replay, records: wait.replay.records.slice(wait.index) });
      return;
    }
    if (!this.replay(wait.replay, ctx, wait.index)) return;
    while (!this.replayPaused && this.conflictWait === null && this.pausedReplay.length > 0) {
      if (!this.replay(this.pausedReplay.shift()!, ctx)) return;
    }
    this.endRecoveryIfDrained(ctx);
  }

  /**
   * Cancels each conflicting session's statement if one is running (here: waiting for a lock),
   * else terminates the session, as PostgreSQL's ProcessInterrupts does; a dropped database's
   * sessions are always terminated. Each is counted against its database.
   */
  private endConflictingSessions(conflict: Conflict, ctx: Context): void {
    const databaseOf = new Map(this.engine.standbySessions().map((s) => [s.session, s.database]));
    for (const session of conflict.sessions) {
      const running = this.unpark(session) ?? this.wakeSleeper(session, ctx);
      const terminate = running === null || conflict.kind === 'database';
      const error = conflictError(conflict.kind, terminate);
      this.engine.resolveRecoveryConflict(session, terminate);
      if (running !== null) ctx.send(running.replyTo, { type: 'Executed', tag: running.tag, ok: false, error: error.toFields() } satisfies Executed);
      const backend = this.backends.get(session);
      if (terminate && backend !== undefined) ctx.send(backend, { type: 'RecoveryConflict', error: error.toFields() } satisfies RecoveryConflict);
      if (terminate) this.backends.delete(session);
      const database = conflict.database ?? databaseOf.get(session) ?? null;
      if (database !== null && conflict.kind !== 'database') {
        const counts = this.conflictCounts.get(database) ?? { tablespace: 0, lock: 0, snapshot: 0, bufferpin: 0, deadlock: 0, database: 0 };
        counts[conflict.kind]++;
        this.conflictCounts.set(database, counts);
      }
    }
    this.wake(ctx);
  }

  /** Each database (not dropped) with its recovery conflicts so far. */
  private databaseConflicts(): DatabaseConflicts[] {
    const clog = this.state.clog;
    return this.state.catalog.databases
      .filter((d) => !clog.isAborted(d.xmin) && (d.xmax === InvalidXid || clog.isAborted(d.xmax)))
      .map((d) => {
        const c = this.conflictCounts.get(d.oid);
        return { oid: d.oid, name: d.name, tablespace: c?.tablespace ?? 0, lock: c?.lock ?? 0, snapshot: c?.snapshot ?? 0, bufferpin: c?.bufferpin ?? 0, deadlock: c?.deadlock ?? 0 };
      });
  }

  /** Statements in pg_sleep(), by session: running, until their timer answers them. */
  private readonly sleeping = new Map<string, { msg: Execute; deliver: () => void; timer: TimerId }>();

  private sleep(msg: Execute, ms: number, deliver: () => void, ctx: Context): void {
    const timer = ctx.after(ms, { type: 'SleepOver', session: msg.session, tag: msg.tag });
    this.sleeping.set(msg.session, { msg, deliver, timer });
    // The user's cancel came before the statement started sleeping.
    if (this.cancelPending.delete(msg.session)) this.cancelSleep(msg.session, ctx);
  }

  /** The user's cancel (PQcancel) of a statement in pg_sleep(): 57014, its transaction aborted like any ERROR's. */
  private cancelSleep(session: string, ctx: Context): boolean {
    const sleeper = this.wakeSleeper(session, ctx);
    if (sleeper === null) return false;
    this.engine.resolveRecoveryConflict(session, false);
    const error = new PgError({ code: SqlState.QueryCanceled, message: 'canceling statement due to user request' });
    ctx.send(sleeper.replyTo, { type: 'Executed', tag: sleeper.tag, ok: false, error: error.toFields() } satisfies Executed);
    return true;
  }

  private onSleepOver(session: string, tag: number): void {
    const sleeper = this.sleeping.get(session);
    if (sleeper === undefined || sleeper.msg.tag !== tag) return;
    this.sleeping.delete(session);
    sleeper.deliver();
  }

  /** The session's statement in pg_sleep(), stopped (null: none). */
  private wakeSleeper(session: string, ctx: Context): Execute | null {
    const sleeper = this.sleeping.get(session);
    if (sleeper === undefined) return null;
    this.sleeping.delete(session);
    ctx.cancel(sleeper.timer);
    return sleeper.msg;
  }

  /** The session's statement parked behind a lock, taken out of the waiting lists (null: none). */
  private unpark(session: string): Execute | null {
    for (const [key, list] of this.parked) {
      const at = list.findIndex((m) => m.session === session);
      if (at < 0) continue;
      const [msg] = list.splice(at, 1);
      if (list.length === 0) this.parked.delete(key);
      return msg!;
    }
    return null;
  }

  /** Sends records to the walwriter and holds all other work until their LSNs come back. */
  private insert(records: readonly WalRecordInput[], ctx: Context, then: (reply: WalInserted, ctx: Context) => void): void {
    assert(this.walwriter !== null, 'WAL is inserted only once the walwriter runs');
    const tag = this.nextTag++;
    assert(this.inserting === null, 'one insertion at a time');
    this.inserting = tag;
    this.awaiting.set(tag, (reply, c) => {
      assert(this.inserting === tag, 'the awaited insertion is the one answered');
      this.inserting = null;
      assert(reply.endLsn >= this.insertEnd, 'the insert position only advances');
      this.insertEnd = reply.endLsn;
      then(reply, c);
      this.drain(c);
    });
    ctx.send(this.walwriter, { type: 'XLogInsert', records, flush: false, replyTo: ctx.self, tag } satisfies XLogInsert);
  }

  private flush(upto: Lsn, ctx: Context, then: (reply: WalInserted, ctx: Context) => void): void {
    const tag = this.nextTag++;
    this.awaiting.set(tag, then);
    ctx.send(this.walwriter!, { type: 'XLogFlush', upto, replyTo: ctx.self, tag } satisfies XLogFlush);
  }

  /** Statements parked behind transactions that have ended run again. */
  private wake(ctx: Context): void {
    const ready: Execute[] = [];
    for (const [key, list] of [...this.parked]) {
      if (!this.engine.waitOver(key)) continue;
      this.parked.delete(key);
      ready.push(...list);
    }
    // First come, first served: parked statements run ahead of new work, in arrival order.
    this.queue.unshift(...ready.map((msg) => ({ kind: 'execute' as const, msg })));
    this.drain(ctx);
  }

  private checkpoint(replyTo: ActorRef, ctx: Context): void {
    const common = { slots: [...this.slots.values()], holds: [...this.holds.values()], nextXid: this.state.clog.nextXid, nextOid: this.state.nextOid };
    if (this.recovering) {
      // A restartpoint: the image is the state as replayed so far; WAL is the upstream's, already on disk.
      // Nothing replayed since the last one (or no image loaded yet): nothing to save.
      if (this.lastRestartRedo === null || this.replayedEnd <= this.lastRestartRedo) {
        ctx.send(replyTo, { type: 'RestartpointSkipped', redoLsn: this.lastRestartRedo ?? 0 } satisfies RestartpointSkipped);
        return;
      }
      const redoLsn = this.replayedEnd;
      this.lastRestartRedo = redoLsn;
      ctx.send(replyTo, {
        type: 'CheckpointImage', image: encodeImage(this.state.image(), redoLsn), redoLsn, running: [], insertLsn: this.receivedUpTo, inRecovery: true, ...common,
      } satisfies CheckpointImage);
      return;
    }
    const redoLsn = this.insertEnd;
    const image = encodeImage(this.state.image(), redoLsn);
    const running = [...this.engine.procarray.xids()];
    const nextXid = this.state.clog.nextXid;
    const nextOid = this.state.nextOid;
    // WAL before data: the image may only reach disk once the WAL it reflects is there.
    this.flush(redoLsn, ctx, (_, c) => {
      c.send(replyTo, { type: 'CheckpointImage', image, redoLsn, running, insertLsn: redoLsn, inRecovery: false, ...common, nextXid, nextOid } satisfies CheckpointImage);
    });
  }

  /**
   * Hot standby: which xids are running, for snapshots, as PostgreSQL's KnownAssignedXids.
   * An xid seen in WAL runs until its commit or abort; a running-xacts or checkpoint record
   * lists what runs, and whatever older is not listed has ended (its server crashed).
   */
  /**
   * Hot standby bookkeeping of a replayed record: which xids run, and the ACCESS EXCLUSIVE
   * locks replay holds for them (standby sessions wait for those). True if locks were released.
   */
  private trackRunning(record: WalRecord): boolean {
    const procarray = this.engine.procarray;
    const clog = this.state.clog;
    if (record.xid !== 0 && clog.status(record.xid) === 'in progress' && !procarray.has(record.xid)) procarray.add(record.xid);
    if (record.rmgr === Rmgr.Standby && record.info === StandbyInfo.Lock) {
      for (const lock of (record.body as AccessExclusiveLocksBody).locks) this.engine.takeRecoveryLock(lock.xid, lock.rel);
      return false;
    }
    if (record.rmgr === Rmgr.Transaction && (record.info === XactInfo.Commit || record.info === XactInfo.Abort)) {
      const body = record.body as XactBody;
      for (const xid of [record.xid, ...body.subxids]) procarray.remove(xid);
      this.engine.releaseRecoveryLocks([record.xid, ...body.subxids]);
      this.lastReplayTime = body.time;
      return true;
    }
    const isCheckpoint = record.rmgr === Rmgr.XLOG && (record.info === XlogInfo.CheckpointOnline || record.info === XlogInfo.CheckpointShutdown);
    if (isCheckpoint || (record.rmgr === Rmgr.Standby && record.info === StandbyInfo.RunningXacts)) {
      const body = record.body as RunningXactsBody;
      const running = new Set(body.running);
      for (const xid of [...procarray.xids()]) if (xid < body.nextXid && !running.has(xid)) procarray.remove(xid);
      for (const xid of running) if (clog.status(xid) === 'in progress' && !procarray.has(xid)) procarray.add(xid);
      // Locks of transactions that ended without a record replayed here (a crash on the primary).
      const ended = this.engine.recoveryLockXids().filter((xid) => xid < body.nextXid && !running.has(xid));
      this.engine.releaseRecoveryLocks(ended);
      return ended.length > 0;
    }
    return false;
  }

  /** The replication views and functions, served to the engine for one statement. */
  private systemHooks(ctx: Context): SystemHooks {
    const lsnText = (lsn: Lsn): string | null => (lsn === 0 ? null : formatLsn(lsn));
    return {
      view: (name: string): ViewRows | undefined => {
        switch (name) {
          case 'pg_stat_replication':
            // A standby's (cascading) walsenders are never synchronous, whatever synchronous_standby_names says.
            return pgStatReplication([...this.senders.values()].sort((a, b) => a.pid - b.pid), this.recovering ? new Map() : syncStates(this.syncConfig, this.syncCandidates()));
          case 'pg_stat_wal_receiver':
            return pgStatWalReceiver(this.receiver);
          case 'pg_stat_archiver':
            return pgStatArchiver(this.archiver, ctx.now());
          case 'pg_stat_database_conflicts':
            return pgStatDatabaseConflicts(this.databaseConflicts());
          case 'pg_stat_database': {
            const sessions = this.engine.standbySessions();
            return pgStatDatabase(this.databaseConflicts().map((d) => ({ ...d, backends: sessions.filter((s) => s.database === d.oid).length })));
          }
          case 'pg_replication_slots':
            return pgReplicationSlots([...this.slots.values()].sort((a, b) => a.name.localeCompare(b.name)), this.walKeep());
          default:
            return undefined;
        }
      },
      call: (name: string, args: readonly unknown[]) => {
        switch (name) {
          case 'pg_last_wal_receive_lsn':
            return { value: this.standby ? lsnText(this.receivedUpTo) : null, type: 'pg_lsn' };
          case 'pg_last_wal_replay_lsn':
            return { value: this.standby ? lsnText(this.replayedEnd) : null, type: 'pg_lsn' };
          case 'pg_last_xact_replay_timestamp':
            return { value: this.standby ? this.lastReplayTime : null, type: 'timestamptz' };
          case 'pg_walfile_name': {
            // As PostgreSQL: the file holding the byte before `lsn` (a segment boundary names the previous file).
            if (this.recovering) throw new PgError({ code: SqlState.ObjectNotInPrerequisiteState, message: 'recovery is in progress', hint: 'pg_walfile_name() cannot be executed during recovery.' });
            const lsn = parseLsn(String(args[0]));
            return { value: segmentFileName(this.recovered?.timeline ?? 1, segnoOf(Math.max(lsn - 1, 0), this.settings.walSegmentSize), this.settings.walSegmentSize), type: 'text' };
          }
          case 'pg_wal_replay_pause':
          case 'pg_wal_replay_resume':
            this.requireRecovery();
            if (this.promotionTriggered) {
              throw new PgError({ code: SqlState.ObjectNotInPrerequisiteState, message: 'standby promotion is ongoing', hint: `${name}() cannot be executed after promotion is triggered.` });
            }
            if (name === 'pg_wal_replay_pause') this.replayPaused = true;
            else this.resumeReplay(ctx);
            return { value: '', type: 'text' };
          case 'pg_is_wal_replay_paused':
            this.requireRecovery();
            return { value: this.replayPaused, type: 'bool' };
          case 'pg_get_wal_replay_pause_state':
            this.requireRecovery();
            return { value: this.replayPaused ? 'paused' : 'not paused', type: 'text' };
          case 'pg_create_physical_replication_slot':
            return this.createSlot(String(args[0]), args[1] === true);
          case 'pg_drop_replication_slot':
            this.dropSlot(String(args[0]));
            return { value: '', type: 'text' };
          default:
            return undefined;
        }
      },
    };
  }

  /** Recovery control functions work on a standby only, as in PostgreSQL. */
  private requireRecovery(): void {
    if (!this.recovering) {
      throw new PgError({ code: SqlState.ObjectNotInPrerequisiteState, message: 'recovery is not in progress', hint: 'Recovery control functions can only be executed during recovery.' });
    }
  }

  private pendingRecoveryDone: RecoveryDone | null = null;
  /** pg_promote() was called: replay may no longer be paused. */
  private promotionTriggered = false;
  /** Fencing: set once at start when a newer timeline exists elsewhere (see the postmaster). */
  private fenced: { detail: string; hint: string } | null = null;
  private walEndWaiter: ActorRef | null = null;

  /**
   * Recovery is over (crash recovery, or a promotion): transactions that were running can
   * never commit now; the locks replay held and the xids it knew to run go; sessions may write.
   */
  private endRecovery(done: RecoveryDone, ctx: Context): void {
    this.pendingRecoveryDone = null;
    this.state.clog.abortUnfinished();
    for (const xid of [...this.engine.procarray.xids()]) this.engine.procarray.remove(xid);
    this.engine.releaseRecoveryLocks(this.engine.recoveryLockXids());
    this.recovering = false;
    this.standby = false;
    this.recovered = done;
    this.insertEnd = done.endLsn;
    this.lastRecord = done.lastLsn;
    this.answerWalEnd(ctx);
    this.wake(ctx);
  }

  private answerWalEnd(ctx: Context): void {
    const r = this.recovered;
    if (r === null || this.walEndWaiter === null || this.pendingRecoveryDone !== null) return;
    ctx.send(this.walEndWaiter, {
      type: 'WalEnd', endLsn: this.insertEnd, lastLsn: this.lastRecord,
      systemIdentifier: r.systemIdentifier, timeline: r.timeline, walSegmentSize: r.walSegmentSize, history: r.history ?? [],
    } satisfies WalEnd);
    this.walEndWaiter = null;
  }

  /** A promotion waiting for replay's backlog: once it is replayed, recovery ends. */
  private endRecoveryIfDrained(ctx: Context): void {
    const done = this.pendingRecoveryDone;
    if (done !== null && this.conflictWait === null && this.pausedReplay.length === 0 && !this.replayPaused) this.endRecovery(done, ctx);
  }

  /** pg_wal_replay_resume(): what arrived while paused is replayed, in order. */
  private resumeReplay(ctx: Context): void {
    this.replayPaused = false;
    while (this.conflictWait === null && this.pausedReplay.length > 0) {
      if (!this.replay(this.pausedReplay.shift()!, ctx)) return;
    }
    this.endRecoveryIfDrained(ctx);
  }

  private walKeep(): WalKeepSettings {
    const s = this.settings;
    return {
      insertLsn: this.recovering ? this.receivedUpTo : this.insertEnd, oldestSegmentOnDisk: this.oldestSegmentOnDisk,
      segmentSize: s.walSegmentSize, maxWalSizeMb: s.maxWalSizeMb, walKeepSizeMb: s.walKeepSizeMb, maxSlotWalKeepSizeMb: s.maxSlotWalKeepSizeMb,
    };
  }

  private createSlot(name: string, reserve: boolean): { columns: { name: string; type: 'text' | 'pg_lsn' }[]; row: (string | null)[] } {
    if (this.settings.maxReplicationSlots === 0) {
      throw new PgError({ code: SqlState.ObjectNotInPrerequisiteState, message: 'replication slots can only be used if max_replication_slots > 0' });
    }
    const invalid = slotNameError(name);
    if (invalid !== null) throw invalid;
    if (this.slots.has(name)) throw new PgError({ code: SqlState.DuplicateObject, message: `replication slot "${name}" already exists` });
    if (this.slots.size >= this.settings.maxReplicationSlots) {
      throw new PgError({ code: SqlState.ConfigurationLimitExceeded, message: 'all replication slots are in use', hint: 'Free one or increase max_replication_slots.' });
    }
    const restartLsn = reserve ? (this.recovering ? this.replayedEnd : this.insertEnd) : 0;
    const slot: SlotStatus = { name, restartLsn, activePid: null, invalidated: false, xmin: null };
    this.slots.set(name, slot);
    this.slotIo.push({ kind: 'file.mkdir', path: `${this.dataDir()}/pg_replslot/${name}` });
    this.slotIo.push({ kind: 'file.writeAtomic', path: `${this.dataDir()}/${slotPath(name)}`, bytes: encodeSlot(slot) });
    this.persisted.set(name, persistedKey(slot));
    return { columns: [{ name: 'slot_name', type: 'text' }, { name: 'lsn', type: 'pg_lsn' }], row: [name, restartLsn === 0 ? null : formatLsn(restartLsn)] };
  }

  private dropSlot(name: string): void {
    const slot = this.slots.get(name);
    if (slot === undefined) throw new PgError({ code: SqlState.UndefinedObject, message: `replication slot "${name}" does not exist` });
    if (slot.activePid !== null) throw new PgError({ code: SqlState.ObjectInUse, message: `replication slot "${name}" is active for PID ${slot.activePid}` });
    this.slots.delete(name);
    this.persisted.delete(name);
    this.slotIo.push({ kind: 'file.unlink', path: `${this.dataDir()}/${slotPath(name)}` });
  }

  private acquireSlot(msg: SlotAcquire, ctx: Context): void {
    const slot = this.slots.get(msg.slot);
    const refuse = (error: PgError): void => void ctx.send(msg.replyTo, { type: 'SlotAcquired', ok: false, error: error.toFields() } satisfies SlotAcquired);
    if (slot === undefined) return refuse(new PgError({ code: SqlState.UndefinedObject, message: `replication slot "${msg.slot}" does not exist` }));
    if (slot.activePid !== null && slot.activePid !== msg.pid) {
      return refuse(new PgError({ code: SqlState.ObjectInUse, message: `replication slot "${msg.slot}" is active for PID ${slot.activePid}` }));
    }
    if (slot.invalidated) {
      // PostgreSQL 18's words (15 lets it fail later, on the missing segment): clearer for the DBA.
      return refuse(new PgError({
        code: SqlState.ObjectNotInPrerequisiteState, message: `can no longer access replication slot "${msg.slot}"`,
        detail: 'This replication slot has been invalidated due to "wal_removed".',
        hint: 'Drop the slot and make a new base backup of the standby.',
      }));
    }
    const restartLsn = slot.restartLsn === 0 && msg.startLsn !== undefined ? msg.startLsn : slot.restartLsn;
    this.slots.set(slot.name, { ...slot, activePid: msg.pid, restartLsn });
    ctx.send(msg.replyTo, { type: 'SlotAcquired', ok: true } satisfies SlotAcquired);
  }

  private dataDir(): string {
    return this.args.dataDir;
  }

  /** Runs file operations one after another, then `then`. */
  private afterIo(ops: FileOp[], ctx: Context, then: (ctx: Context) => void): void {
    this.ioWaits.push({ ops, then });
    if (this.ioWaits.length === 1) this.ioNext(ctx);
  }

  /** Starts the head's next operation, or finishes heads that have none left. */
  private ioNext(ctx: Context): void {
    for (let head = this.ioWaits[0]; head !== undefined; head = this.ioWaits[0]) {
      const op = head.ops[0];
      if (op !== undefined) {
        ctx.io(op, 'SlotIoDone');
        return;
      }
      this.ioWaits.shift();
      head.then(ctx);
    }
  }

  private ioStep(io: IoResult, ctx: Context): void {
    if (!io.ok) throw new Error(`could not write replication slot state: ${io.error.message}`);
    this.ioWaits[0]!.ops.shift();
    this.ioNext(ctx);
  }

  private slotsAtCheckpoint(msg: SlotsAtCheckpoint, ctx: Context): void {
    const invalidated: { name: string; restartLsn: Lsn }[] = [];
    for (const slot of [...this.slots.values()]) {
      if (slot.invalidated || slot.restartLsn === 0 || segnoOf(slot.restartLsn, this.settings.walSegmentSize) >= msg.keepSegno) continue;
      invalidated.push({ name: slot.name, restartLsn: slot.restartLsn });
      this.slots.set(slot.name, { ...slot, restartLsn: 0, invalidated: true });
    }
    this.oldestSegmentOnDisk = Math.max(this.oldestSegmentOnDisk, msg.keepSegno);
    const ops: FileOp[] = [];
    for (const slot of this.slots.values()) {
      const key = persistedKey(slot);
      if (this.persisted.get(slot.name) === key) continue;
      this.persisted.set(slot.name, key);
      ops.push({ kind: 'file.writeAtomic', path: `${this.dataDir()}/${slotPath(slot.name)}`, bytes: encodeSlot(slot) });
    }
    this.afterIo(ops, ctx, (c) => c.send(msg.replyTo, { type: 'SlotsSaved', invalidated } satisfies SlotsSaved));
  }
}

export interface ShmemArgs {
  readonly dataDir: string;
}

type SyncPosition = 'write' | 'flush' | 'apply';

/** What each synchronous_commit level waits for on the synchronous standbys. */
const SYNC_POSITION: Readonly<Record<string, SyncPosition>> = { remote_write: 'write', on: 'flush', remote_apply: 'apply' };

interface SyncWaiter {
  readonly lsn: Lsn;
  readonly session: string;
  readonly release: (ctx: Context, notice?: PgErrorFields) => void;
}

/**
 * A remote_apply commit's record says so (PostgreSQL's XACT_COMPLETION_APPLY_FEEDBACK): the
 * standby that replays it answers at once, since a commit on the primary waits for that.
 */
function withApplyFeedback(records: readonly WalRecordInput[], xid: Xid): WalRecordInput[] {
  return records.map((r) => (r.rmgr === Rmgr.Transaction && r.info === XactInfo.Commit && r.xid === xid
    ? { ...r, body: { ...(r.body as object), applyFeedback: true } } : r));
}

/** A slot's persistent part, to tell whether its file is up to date. */
function persistedKey(slot: { readonly restartLsn: Lsn; readonly invalidated: boolean; readonly xmin: number | null }): string {
  return `${slot.restartLsn}/${slot.invalidated}/${slot.xmin}`;
}

export const SHMEM = defineBehaviour(import.meta.url, 'Shmem', (args: ShmemArgs) => new Shmem(args));
