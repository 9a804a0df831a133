/*
 * constants.ts — every limit and default in one place.
 *
 * Each bound has a name here so that going over it is a decision (backpressure or a clear
 * error), never unbounded growth. Relationships between limits are asserted once, at load.
 */
import { assert } from './assert.js';

/** Messages an actor's mailbox holds before a send to it is refused. */
export const MAILBOX_LIMIT = 65_536;

/** Deliveries the real scheduler runs in one turn before yielding to the event loop. */
export const DRAIN_BUDGET = 4_096;

/** Drains the real scheduler may run as microtasks before it lets the event loop turn. */
export const MICROTASK_DRAINS_PER_TURN = 64;
/** Chained microtask drains after which the scheduler arms its per-turn counter reset. */
export const MICROTASK_DRAINS_BEFORE_RESET = 8;

/** Largest encoded frame accepted on any transport (a WAL batch fits well inside). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Largest frame accepted from a TCP peer before it has authenticated with HELLO. */
export const MAX_HELLO_FRAME_BYTES = 4 * 1024;
/** How long a TCP peer has to send its HELLO. */
export const HELLO_TIMEOUT_MS = 10_000;
/** Bytes a TCP link may have queued for a peer that is not reading before the link is closed. */
export const LINK_WRITE_BUFFER_LIMIT_BYTES = 256 * 1024 * 1024;
/** TCP keepalive probes start after this much idle time, so a vanished host is noticed. */
export const TCP_KEEPALIVE_MS = 10_000;

/** Frames queued for a link that is not connected yet. */
export const LINK_PENDING_LIMIT = 65_536;

/** Bytes of a TCP frame header: a big-endian unsigned 32-bit body length. */
export const TCP_FRAME_HEADER_BYTES = 4;

/** Longest actor id, node id and message type accepted from a peer. */
export const MAX_NAME_LENGTH = 256;

/** Exit reasons of top-level actors a node remembers for late `whenExited` calls. */
export const EXIT_REASONS_KEPT = 1_024;

/** Largest WAL record (header and body), as PostgreSQL's XLogRecordMaxSize bounds its own. */
export const MAX_WAL_RECORD_BYTES = 1020 * 1024 * 1024;

/** Default time a supervisor gives a worker child to stop before killing it. */
export const DEFAULT_SHUTDOWN_MS = 5_000;

/** Default restart intensity: more than this many restarts ... */
export const DEFAULT_RESTART_INTENSITY = 3;
/** ... within this period stops the supervisor and escalates to its parent. */
export const DEFAULT_RESTART_PERIOD_MS = 5_000;

/** How long a placement host has to connect and report ready. */
export const HOST_START_TIMEOUT_MS = 15_000;
/** How long a host whose root actor exited has to end by itself before it is killed. */
export const HOST_EXIT_GRACE_MS = 2_000;

/** The most a compressed archived file may decompress to: PostgreSQL's largest WAL segment (1 GB). */
export const MAX_DECOMPRESSED_BYTES = 1024 * 1024 * 1024;

/** Threads of the shared offload pool (the machines have 2 cores). */
export const OFFLOAD_MAX_THREADS = 2;

/** Steps a simulation runs before it reports a livelock instead of spinning forever. */
export const SIM_DEFAULT_MAX_STEPS = 1_000_000;
/** The virtual clock's start: 2026-01-01T00:00:00Z, so logged times look like times. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1);

assert(DRAIN_BUDGET <= MAILBOX_LIMIT, 'a drain turn never exceeds one full mailbox');
assert(MICROTASK_DRAINS_BEFORE_RESET < MICROTASK_DRAINS_PER_TURN, 'the reset is armed before microtask drains stop');
assert(MAX_FRAME_BYTES < 2 ** 32, 'a TCP frame length fits its 32-bit header');
assert(MAX_HELLO_FRAME_BYTES < MAX_FRAME_BYTES, 'an unauthenticated peer gets less room than an authenticated one');
assert(LINK_WRITE_BUFFER_LIMIT_BYTES > MAX_FRAME_BYTES, 'a single largest frame always fits the write buffer');
assert(DEFAULT_RESTART_INTENSITY >= 1, 'a supervisor tolerates at least one restart');

/** Frames at least this big are transferred between threads instead of copied. */
export const TRANSFER_THRESHOLD_BYTES = 16 * 1024;

/** How long a closed TCP link waits for the peer's FIN before destroying the socket. */
export const SOCKET_LINGER_MS = 1_000;
