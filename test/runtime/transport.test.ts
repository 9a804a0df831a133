/*
 * Transports under bad input, and nodes joined over TCP as if on two hosts.
 *
 * A malformed, truncated or oversized frame, an unknown frame type, a wrong cookie or a peer
 * that closes mid-frame: the connection closes with a logged reason, nothing half-decoded is
 * delivered, and the node keeps serving everyone else.
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import { MAX_FRAME_BYTES } from '../../src/constants.js';
import type { Message } from '../../src/runtime/actor.js';
import { FrameCodec, FrameKind } from '../../src/runtime/codec.js';
import type { LogRecord } from '../../src/runtime/events.js';
import { Kernel } from '../../src/runtime/kernel.js';
import { networkOf } from '../../src/runtime/network.js';
import { PortLink } from '../../src/runtime/transport/port.js';
import { PINGER, PONGER, RECORDER } from '../fixtures/actors.js';
import { record, until } from '../helpers.js';

const lengthPrefixed = (body: Uint8Array): Buffer => {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
};

describe('nodes joined over TCP', function () {
  this.timeout(20_000);
  let a: Kernel;
  let b: Kernel;
  afterEach(async () => {
    await a.shutdown();
    await b.shutdown();
  });

  it('address each other\'s actors with plain refs', async () => {
    a = new Kernel({ id: 'host-a' });
    b = new Kernel({ id: 'host-b' });
    const address = await networkOf(b, 'shared-secret').listen();
    expect(address.host).to.equal('127.0.0.1');
    expect(address.port).to.be.greaterThan(0);
    b.spawn({ name: 'ponger', behaviour: PONGER, id: 'ponger' });
    expect(await networkOf(a, 'shared-secret').connect(address)).to.equal('host-b');
    const inbox = a.inbox();
    a.spawn({ name: 'pinger', behaviour: PINGER, args: { target: { node: 'host-b', id: 'ponger' }, count: 200, reportTo: inbox.ref } });
    expect(await inbox.next(10_000)).to.deep.include({ type: 'done', rounds: 200 });
  });

  it('refuses a node with the wrong cookie', async () => {
    a = new Kernel({ id: 'host-a' });
    b = new Kernel({ id: 'host-b' });
    const logB = record(b);
    const address = await networkOf(b, 'right').listen();
    const failure = await networkOf(a, 'wrong').connect(address).then(() => 'connected', (err: Error) => err.message);
    expect(failure).to.match(/^connection to 127\.0\.0\.1:\d+ failed: /);
    await until(() => warnings(logB.events).some((t) => t.includes('authentication failed for node "host-a"')), 'the refusal to be logged');
  });
});

function warnings(events: readonly { kind: string }[]): string[] {
  return events.filter((e): e is LogRecord => e.kind === 'log').map((e) => e.text);
}

describe('malformed input over TCP', function () {
  this.timeout(20_000);
  let kernel: Kernel;
  let log: ReturnType<typeof record>;
  let port: number;
  const cookie = 'test-cookie';

  beforeEach(async () => {
    kernel = new Kernel({ id: 'server' });
    log = record(kernel);
    kernel.spawn({ name: 'recorder', behaviour: RECORDER, id: 'recorder' });
    port = (await networkOf(kernel, cookie).listen()).port;
  });
  afterEach(async () => {
    await kernel.shutdown();
  });

  /** A raw client that says HELLO properly, then misbehaves as told. */
  async function rawPeer(name: string): Promise<{ socket: Socket; codec: FrameCodec; closed: Promise<unknown> }> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const codec = new FrameCodec();
    socket.write(codec.encodeLengthPrefixed([FrameKind.Hello, name, cookie]));
    socket.on('error', () => {});
    socket.resume(); // read (and ignore) what the server sends, or its FIN is never seen
    return { socket, codec, closed: once(socket, 'close') };
  }

  async function recorded(): Promise<number> {
    const reply = await kernel.ask<{ type: string; seen: unknown[] }>({ node: 'server', id: 'recorder' }, (replyTo) => ({ type: 'dump', replyTo }), 5000);
    return reply.seen.length;
  }

  const badFrames: [string, (codec: FrameCodec) => Buffer, RegExp][] = [
    ['garbage bytes', () => lengthPrefixed(new Uint8Array([0xd9, 0x05, 0x41])), /malformed frame from .*: undecodable frame of 3 bytes/],
    ['an unknown frame type', (c) => c.encodeLengthPrefixed([42, 'x'] as never), /malformed frame from .*: unknown frame type 42/],
    ['a message without a type', () => lengthPrefixed(new Packr({ useRecords: false }).pack([FrameKind.Deliver, 'server', 'recorder', 'evil/x', { i: 1 }])), /message without a string "type"/],
    ['an oversized length', () => { const h = Buffer.alloc(4); h.writeUInt32BE(MAX_FRAME_BYTES + 1); return h; }, /frame length \d+ exceeds the limit/],
  ];

  for (const [what, make, reason] of badFrames) {
    it(`closes only the offending connection on ${what}`, async () => {
      const good = await rawPeer('good-peer');
      const evil = await rawPeer('evil-peer');
      good.socket.write(good.codec.encodeLengthPrefixed([FrameKind.Deliver, 'server', 'recorder', 'good-peer/x', { type: 'seq', tag: 'good', i: 0 } as Message]));
      evil.socket.write(make(evil.codec));
      await evil.closed;
      await until(() => warnings(log.events).some((t) => reason.test(t)), `a logged reason matching ${reason}`);
      good.socket.write(good.codec.encodeLengthPrefixed([FrameKind.Deliver, 'server', 'recorder', 'good-peer/x', { type: 'seq', tag: 'good', i: 1 } as Message]));
      let count = await recorded();
      for (let tries = 0; count < 2 && tries < 100; tries++) count = await recorded();
      expect(count).to.equal(2);
      expect(good.socket.destroyed).to.equal(false);
      good.socket.destroy();
    });
  }

  it('delivers nothing of a frame whose peer closes mid-frame, and says so', async () => {
    const peer = await rawPeer('quitter');
    const whole = peer.codec.encodeLengthPrefixed([FrameKind.Deliver, 'server', 'recorder', 'quitter/x', { type: 'seq', tag: 'q', i: 0 } as Message]);
    peer.socket.end(whole.subarray(0, whole.length - 3));
    await until(() => warnings(log.events).some((t) => /closed the connection mid-frame \(received \d+ of \d+ bytes\)/.test(t)), 'the mid-frame close to be logged');
    expect(await recorded()).to.equal(0);
  });

  it('refuses a peer whose first frame is not HELLO', async () => {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.on('error', () => {});
    socket.resume();
    const closed = once(socket, 'close');
    socket.write(new FrameCodec().encodeLengthPrefixed([FrameKind.Deliver, 'server', 'recorder', 'x/y', { type: 'seq', tag: 'sneaky', i: 0 } as Message]));
    await closed;
    await until(() => warnings(log.events).some((t) => t.includes('the first frame must be HELLO')), 'the protocol violation to be logged');
    expect(await recorded()).to.equal(0);
  });
});

/** A kernel link over one end of a fresh MessageChannel; the test plays the peer on port2. */
function portLinkTo(kernel: Kernel, label: string, peer: string): { channel: MessageChannel; link: PortLink } {
  const channel = new MessageChannel();
  const link = new PortLink(channel.port1, label, peer, {
    frame: (l, frame) => kernel.linkFrame(l, frame),
    closed: (l, why) => kernel.linkClosed(l, why),
  });
  kernel.attachLink(link, false);
  return { channel, link };
}

describe('a peer speaking for actors it does not host', () => {
  it('is cut off when it sends a $exit on behalf of another node', async () => {
    const kernel = new Kernel({ id: 'k' });
    const log = record(kernel);
    try {
      const { channel, link } = portLinkTo(kernel, 'peer port', 'peer');
      const forged = new FrameCodec().encode([FrameKind.Signal, 'k', '$root', 'other-node/w',
        { type: '$exit', ref: { node: 'other-node', id: 'w' }, reason: { kind: 'normal' } } as Message]);
      channel.port2.postMessage(forged);
      await until(() => link.closed, 'the link to close');
      expect(warnings(log.events).at(-1)).to.equal('connection to peer port closed: peer port sent a $exit on behalf of other-node/w, which is not on that node');
      channel.port2.close();
    } finally {
      await kernel.shutdown();
    }
  });

  it('closes a link whose frame cannot be encoded, and the send reports failure', async () => {
    const kernel = new Kernel({ id: 'k' });
    const log = record(kernel);
    try {
      const { channel, link } = portLinkTo(kernel, 'big port', 'far');
      const huge = new Uint8Array(MAX_FRAME_BYTES + 1);
      expect(kernel.send({ node: 'far', id: 'x' }, { type: 'blob', huge })).to.equal(false);
      expect(link.closed).to.equal(true);
      expect(warnings(log.events).at(-1)).to.match(/^connection to big port closed: cannot send to big port: frame of \d+ bytes exceeds the limit of \d+ bytes$/);
      expect(kernel.send({ node: 'far', id: 'x' }, { type: 'small' })).to.equal(false);
      channel.port2.close();
    } finally {
      await kernel.shutdown();
    }
  });
});

describe('malformed input over a MessagePort', () => {
  it('closes the port with a logged reason and keeps the node running', async () => {
    const kernel = new Kernel({ id: 'k' });
    const log = record(kernel);
    try {
      const recorder = kernel.spawn({ name: 'recorder', behaviour: RECORDER });
      // One good frame first, through a port of its own: it must arrive, and stay the only one.
      const good = portLinkTo(kernel, 'good port', 'good');
      good.channel.port2.postMessage(new FrameCodec().encode([FrameKind.Deliver, 'k', recorder.id, 'good/x', { type: 'seq', tag: 'ok', i: 0 } as Message]));
      const cases: [unknown, string][] = [
        [{ type: 'not binary' }, 'expected a binary message, got object'],
        [new Uint8Array([0xd9, 0x05, 0x41]), 'undecodable frame of 3 bytes'],
        [new FrameCodec().encode([77, 'x'] as never), 'unknown frame type 77'],
      ];
      for (const [payload, reason] of cases) {
        const { channel, link } = portLinkTo(kernel, 'test port', 'peer');
        channel.port2.postMessage(payload);
        await until(() => link.closed, `the port to close on: ${reason}`);
        expect(warnings(log.events).at(-1)).to.match(new RegExp(`^connection to test port closed: malformed frame from test port: ${reason}`));
        channel.port2.close();
      }
      let seen: unknown[] = [];
      for (let tries = 0; seen.length === 0 && tries < 200; tries++) {
        seen = (await kernel.ask<{ type: string; seen: unknown[] }>(recorder, (replyTo) => ({ type: 'dump', replyTo }), 5000)).seen;
      }
      expect(seen, 'the good frame arrived, nothing from the bad ones').to.deep.equal([{ tag: 'ok', i: 0 }]);
      good.channel.port2.close();
    } finally {
      await kernel.shutdown();
    }
  });
});
