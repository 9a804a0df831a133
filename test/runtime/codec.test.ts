/*
 * Frames: every kind round-trips through a link's codec, malformed ones are refused with a
 * reason, and the stream splitter handles frames cut anywhere, oversized and empty lengths.
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { MAX_FRAME_BYTES } from '../../src/constants.js';
import type { Message } from '../../src/runtime/actor.js';
import { FrameCodec, FrameError, FrameKind, validateFrame, type Frame } from '../../src/runtime/codec.js';
import { FrameDecoder } from '../../src/runtime/transport/framing.js';

const frames: Frame[] = [
  [FrameKind.Deliver, 'n2', 'ponger', 'n1/pinger.1', { type: 'ping', n: 1, payload: new Uint8Array([1, 2, 3]) } as Message],
  [FrameKind.Signal, 'n1', 'sup.1', 'n2/w', { type: '$exit', ref: { node: 'n2', id: 'w' }, reason: { kind: 'crash', message: 'boom' } } as Message],
  [FrameKind.Stop, 'n2', 'w', 'n1/sup.1', { kind: 'shutdown' }],
  [FrameKind.Control, { id: 'x', type: 'APPLY', path: ['spawn'], argumentList: [] }],
  [FrameKind.Event, { kind: 'started', at: 1, node: 'n2', ref: { node: 'n2', id: 'w' }, name: 'w', incarnation: 0 }],
  [FrameKind.Hello, 'n2', 'cookie'],
  [FrameKind.Route, 'n3'],
];

/** JSON-comparable form; binary fields (Uint8Array or Buffer, as msgpackr returns them) become arrays. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return [...v];
    const buffer = v as { type?: unknown; data?: unknown };
    return buffer !== null && typeof buffer === 'object' && buffer.type === 'Buffer' && Array.isArray(buffer.data) ? buffer.data : v;
  }));
}

describe('frame codec', () => {
  it('round-trips every frame kind, repeatedly, through one link codec', () => {
    const sender = new FrameCodec();
    const receiver = new FrameCodec();
    for (let round = 0; round < 3; round++) {
      for (const frame of frames) expect(plain(receiver.decode(sender.encode(frame)))).to.deep.equal(plain(frame));
    }
  });

  it('keeps decoding correctly past hundreds of distinct message shapes', () => {
    const sender = new FrameCodec();
    const receiver = new FrameCodec();
    for (let i = 0; i < 500; i++) {
      const msg = { type: 'shape', [`field${i}`]: i, [`other${i % 7}`]: `v${i}` };
      const frame: Frame = [FrameKind.Deliver, 'n', 'a', 'n/b', msg];
      expect(receiver.decode(sender.encode(frame))).to.deep.equal(frame);
    }
  });

  it('returns frames in buffers of their own', () => {
    const codec = new FrameCodec();
    const a = codec.encode(frames[0]!);
    const copyOfA = Uint8Array.from(a);
    codec.encode(frames[1]!);
    expect(a).to.deep.equal(copyOfA);
    expect(a.byteOffset).to.equal(0);
    expect(a.buffer.byteLength).to.equal(a.length);
  });

  it('refuses malformed frames with a reason', () => {
    const cases: [unknown, string][] = [
      [{ not: 'an array' }, 'frame is not a non-empty array'],
      [[], 'frame is not a non-empty array'],
      [[99, 'x'], 'unknown frame type 99'],
      [['deliver'], 'unknown frame type "deliver"'],
      [[FrameKind.Deliver, 'n', 'a', 'n/b'], 'DELIVER frame has 4 fields, expected 5'],
      [[FrameKind.Deliver, 'n', '', 'n/b', { type: 'x' }], 'DELIVER frame has a malformed address'],
      [[FrameKind.Deliver, 'n', 'a', 'n/b', { kind: 'x' }], 'DELIVER frame carries a message without a string "type"'],
      [[FrameKind.Signal, 'n', 'a', 'n/b', 'text'], 'SIGNAL frame carries a message without a string "type"'],
      [[FrameKind.Deliver, 'n', 'a', 'n/b', { type: '$exit', ref: { node: 'n', id: 'b' }, reason: { kind: 'normal' } }], 'DELIVER frame carries the reserved message type "$exit"'],
      [[FrameKind.Signal, 'n', 'a', 'n/b', { type: '$exit' }], 'SIGNAL frame carries a malformed $started or $exit'],
      [[FrameKind.Signal, 'n', 'a', 'n/b', { type: '$exit', ref: { node: 'n', id: 'b' }, reason: 'oops' }], 'SIGNAL frame carries a malformed $started or $exit'],
      [[FrameKind.Signal, 'n', 'a', 'n/b', { type: 'hello', ref: { node: 'n', id: 'b' } }], 'SIGNAL frame carries a malformed $started or $exit'],
      [[FrameKind.Stop, 'n', 'a', 'n/b', { kind: 'vanished' }], 'STOP frame has a malformed exit reason'],
      [[FrameKind.Event, { kind: 'log' }], 'EVENT frame carries a malformed event'],
      [[FrameKind.Hello, 7, 'c'], 'HELLO frame is malformed'],
    ];
    for (const [value, reason] of cases) expect(() => validateFrame(value), reason).to.throw(FrameError, reason);
    expect(() => new FrameCodec().decode(new Uint8Array([0xd9, 0x05, 0x41]))).to.throw(FrameError, /^undecodable frame of 3 bytes/);
  });
});

describe('stream framing', () => {
  const withLength = (body: Uint8Array): Buffer => {
    const out = Buffer.alloc(4 + body.length);
    out.writeUInt32BE(body.length, 0);
    out.set(body, 4);
    return out;
  };

  it('reassembles frames cut at every byte boundary', () => {
    for (const chunkSize of [1, 2, 3, 5, 7, 64, 100_000]) {
      const decoder = new FrameDecoder(new FrameCodec());
      const sameSender = new FrameCodec();
      const bytes = Buffer.concat(frames.map((f) => sameSender.encodeLengthPrefixed(f)));
      const out: Frame[] = [];
      for (let i = 0; i < bytes.length; i += chunkSize) decoder.push(bytes.subarray(i, i + chunkSize), (f) => out.push(f) > 0);
      expect(plain(out)).to.deep.equal(plain(frames));
      expect(decoder.partial).to.equal(null);
    }
  });

  it('reports a frame begun but not finished', () => {
    const decoder = new FrameDecoder(new FrameCodec());
    const whole = new FrameCodec().encodeLengthPrefixed(frames[0]!);
    const out: Frame[] = [];
    decoder.push(whole.subarray(0, 10), (f) => out.push(f) > 0);
    expect(out).to.deep.equal([]);
    expect(decoder.partial).to.deep.equal({ have: 10, need: whole.length });
  });

  it('refuses an oversized or empty length before buffering the body', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    expect(() => new FrameDecoder(new FrameCodec()).push(header, () => true)).to.throw(FrameError, `frame length ${MAX_FRAME_BYTES + 1} exceeds the limit of ${MAX_FRAME_BYTES} bytes`);
    expect(() => new FrameDecoder(new FrameCodec()).push(Buffer.alloc(4), () => true)).to.throw(FrameError, 'frame with an empty body');
  });

  it('refuses a well-framed body that is not a valid frame', () => {
    const body = new Packr({ useRecords: false }).pack([FrameKind.Deliver, 'n', 'a', 'n/b', 'no message']);
    expect(() => new FrameDecoder(new FrameCodec()).push(withLength(body), () => true)).to.throw(FrameError, 'DELIVER frame carries a message without a string "type"');
  });

  it('delivers the valid frames ahead of a malformed one in the same chunk, and none after', () => {
    const sender = new FrameCodec();
    const good = sender.encodeLengthPrefixed(frames[0]!);
    const bad = withLength(new Uint8Array([0xd9, 0x05, 0x41]));
    const later = sender.encodeLengthPrefixed(frames[1]!);
    const out: Frame[] = [];
    const decoder = new FrameDecoder(new FrameCodec());
    expect(() => decoder.push(Buffer.concat([good, bad, later]), (f) => out.push(f) > 0)).to.throw(FrameError, /undecodable frame of 3 bytes/);
    expect(plain(out)).to.deep.equal(plain([frames[0]]));
  });
});
