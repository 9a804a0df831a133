/*
 * codec.ts — the frames nodes exchange, their msgpackr encoding, and their validation.
 *
 * Frame shapes (arrays, for compactness):
 *   [DELIVER, toNode, toId, from, msg]   an actor message, subject to the mailbox bound
 *   [SIGNAL,  toNode, toId, from, msg]   `$started` / `$exit` to a parent; never dropped
 *   [STOP,    toNode, toId, from, reason] ask an actor to stop
 *   [CONTROL, payload]                   a comlink control-plane message (process links)
 *   [EVENT,   event]                     a lifecycle event or log record travelling up
 *   [HELLO,   nodeId, cookie]            first frame on a TCP link, both ways
 *   [ROUTE,   nodeId]                    "that node is reachable through me"
 *
 * Everything from a peer is validated before anything is delivered: a frame that does not
 * decode, has an unknown kind or a field of the wrong shape raises FrameError, and the
 * transport closes the connection with that reason. Encoding never shares structures between
 * links (a restarted peer would not know them) and always returns a buffer of its own,
 * because msgpackr's pack() reuses one internal buffer.
 */
import { Packr, Unpackr } from 'msgpackr';
import { MAX_FRAME_BYTES, MAX_NAME_LENGTH } from '../constants.js';
import type { ExitReason, Message } from './actor.js';
import type { RuntimeEvent } from './events.js';

export const FrameKind = {
  Deliver: 1,
  Signal: 2,
  Stop: 3,
  Control: 4,
  Event: 5,
  Hello: 6,
  Route: 7,
} as const;

export type Frame =
  | readonly [typeof FrameKind.Deliver | typeof FrameKind.Signal, string, string, string, Message]
  | readonly [typeof FrameKind.Stop, string, string, string, ExitReason]
  | readonly [typeof FrameKind.Control, unknown]
  | readonly [typeof FrameKind.Event, RuntimeEvent]
  | readonly [typeof FrameKind.Hello, string, string]
  | readonly [typeof FrameKind.Route, string];

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

/**
 * The codec of one link. Both directions run msgpackr in `sequential` mode: an object shape
 * is described inline the first time it crosses the link and referenced by number after, so
 * repeated messages (every XLogData, every reply) encode smaller and decode faster. That is
 * safe only because a link is ordered and reliable and its codec lives exactly as long as the
 * link: a reconnected or restarted peer gets a fresh link and a fresh codec, never a stale
 * structure table.
 */
export class FrameCodec {
  private readonly packr = new Packr({ sequential: true, moreTypes: false });
  private readonly unpackr = new Unpackr({ sequential: true, moreTypes: false });

  /** The encoded frame in a buffer of its own (safe to transfer or to queue). */
  encode(frame: Frame): Uint8Array {
    return new Uint8Array(this.pack(frame));
  }

  /** The frame behind its 4-byte big-endian length, for stream transports. */
  encodeLengthPrefixed(frame: Frame): Buffer {
    const packed = this.pack(frame);
    const out = Buffer.allocUnsafe(4 + packed.length);
    out.writeUInt32BE(packed.length, 0);
    packed.copy(out, 4);
    return out;
  }

  decode(bytes: Uint8Array): Frame {
    let value: unknown;
    try {
      value = this.unpackr.unpack(bytes);
    } catch (err) {
      throw new FrameError(`undecodable frame of ${bytes.length} bytes: ${(err as Error).message}`);
    }
    return validateFrame(value);
  }

  /** A view into msgpackr's reused buffer: valid until the next pack, so always copied. */
  private pack(frame: Frame): Buffer {
    const packed = this.packr.pack(frame);
    if (packed.length > MAX_FRAME_BYTES) {
      throw new FrameError(`frame of ${packed.length} bytes exceeds the limit of ${MAX_FRAME_BYTES} bytes`);
    }
    return packed;
  }
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_NAME_LENGTH;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function isMessage(value: unknown): value is Message {
  return isPlainObject(value) && isName(value['type']);
}

function isReason(value: unknown): value is ExitReason {
  if (!isPlainObject(value)) return false;
  const kind = value['kind'];
  if (kind === 'crash') return typeof value['message'] === 'string';
  return kind === 'normal' || kind === 'shutdown' || kind === 'killed';
}

function isRef(value: unknown): boolean {
  return isPlainObject(value) && isName(value['node']) && isName(value['id']);
}

function isSignal(msg: Message): boolean {
  const fields = msg as unknown as Record<string, unknown>;
  if (msg.type === '$started') return isRef(fields['ref']);
  if (msg.type === '$exit') return isRef(fields['ref']) && isReason(fields['reason']);
  return false;
}

function isEvent(value: unknown): value is RuntimeEvent {
  if (!isPlainObject(value)) return false;
  return typeof value['kind'] === 'string' && typeof value['at'] === 'number' && isName(value['node'])
    && isRef(value['ref']) && typeof value['name'] === 'string';
}

function expectLength(frame: unknown[], length: number, what: string): void {
  if (frame.length !== length) throw new FrameError(`${what} frame has ${frame.length} fields, expected ${length}`);
}

/** Checks a decoded value is a well-formed frame; throws FrameError saying what is wrong. */
export function validateFrame(value: unknown): Frame {
  if (!Array.isArray(value) || value.length === 0) throw new FrameError('frame is not a non-empty array');
  const kind: unknown = value[0];
  switch (kind) {
    case FrameKind.Deliver:
    case FrameKind.Signal: {
      const what = kind === FrameKind.Deliver ? 'DELIVER' : 'SIGNAL';
      expectLength(value, 5, what);
      if (!isName(value[1]) || !isName(value[2]) || !isName(value[3])) throw new FrameError(`${what} frame has a malformed address`);
      const msg = value[4];
      if (!isMessage(msg)) throw new FrameError(`${what} frame carries a message without a string "type"`);
      // `$` types are the kernel's own: they travel only as well-formed SIGNALs.
      if (kind === FrameKind.Deliver && msg.type.startsWith('$')) throw new FrameError(`DELIVER frame carries the reserved message type "${msg.type}"`);
      if (kind === FrameKind.Signal && !isSignal(msg)) throw new FrameError('SIGNAL frame carries a malformed $started or $exit');
      return value as unknown as Frame;
    }
    case FrameKind.Stop:
      expectLength(value, 5, 'STOP');
      if (!isName(value[1]) || !isName(value[2]) || !isName(value[3])) throw new FrameError('STOP frame has a malformed address');
      if (!isReason(value[4])) throw new FrameError('STOP frame has a malformed exit reason');
      return value as unknown as Frame;
    case FrameKind.Control:
      expectLength(value, 2, 'CONTROL');
      if (!isPlainObject(value[1])) throw new FrameError('CONTROL frame payload is not an object');
      return value as unknown as Frame;
    case FrameKind.Event:
      expectLength(value, 2, 'EVENT');
      if (!isEvent(value[1])) throw new FrameError('EVENT frame carries a malformed event');
      return value as unknown as Frame;
    case FrameKind.Hello:
      expectLength(value, 3, 'HELLO');
      if (!isName(value[1]) || typeof value[2] !== 'string') throw new FrameError('HELLO frame is malformed');
      return value as unknown as Frame;
    case FrameKind.Route:
      expectLength(value, 2, 'ROUTE');
      if (!isName(value[1])) throw new FrameError('ROUTE frame names no node');
      return value as unknown as Frame;
    default:
      throw new FrameError(`unknown frame type ${JSON.stringify(kind)}`);
  }
}
