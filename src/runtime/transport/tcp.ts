/*
 * tcp.ts — links over TCP: length-prefixed msgpackr frames (framing.ts), for child processes
 * on this host and for nodes on other hosts alike.
 *
 * Both ends open with HELLO [node, cookie]; a peer with the wrong cookie, a frame other than
 * HELLO first, a malformed frame, or a close in the middle of a frame ends the connection
 * with a logged reason, and only that connection. Until the peer's HELLO arrives, frames we
 * send wait in a bounded queue. CONTROL frames (the comlink control plane of a process host)
 * go to the control listener; every other frame goes to the kernel.
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { LINK_PENDING_LIMIT, SOCKET_LINGER_MS } from '../../constants.js';
import { FrameCodec, FrameError, FrameKind, type Frame } from '../codec.js';
import { FrameDecoder } from './framing.js';
import type { Link, LinkHandler } from './link.js';

export interface TcpAddress {
  readonly host: string;
  readonly port: number;
}

export interface TcpLinkOptions {
  readonly node: string;
  readonly cookie: string;
  /** Called once the peer's HELLO has been checked. */
  readonly onHello: (link: TcpLink, peer: string) => void;
}

export class TcpLink implements Link {
  peer: string | null = null;
  closed = false;
  private readonly codec = new FrameCodec();
  private readonly decoder = new FrameDecoder(this.codec);
  private pending: Buffer[] | null = [];
  private control: ((payload: unknown) => void) | null = null;

  constructor(
    private readonly socket: Socket,
    readonly label: string,
    private handler: LinkHandler,
    private readonly options: TcpLinkOptions,
  ) {
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => {
      const partial = this.decoder.partial;
      this.close(partial === null ? 'peer closed the connection'
        : `peer closed the connection mid-frame (received ${partial.have} of ${partial.need} bytes)`);
    });
    socket.write(this.codec.encodeLengthPrefixed([FrameKind.Hello, options.node, options.cookie]));
  }

  /** Hands the link's frames and close to another owner (placement.ts takes its hosts' links). */
  setHandler(handler: LinkHandler): void {
    this.handler = handler;
  }

  setControlListener(listener: (payload: unknown) => void): void {
    this.control = listener;
  }

  send(frame: Frame): void {
    if (this.closed) return;
    const bytes = this.codec.encodeLengthPrefixed(frame);
    if (this.pending === null) {
      this.socket.write(bytes);
      return;
    }
    if (this.pending.length >= LINK_PENDING_LIMIT) {
      this.close(`more than ${LINK_PENDING_LIMIT} frames queued before the peer said HELLO`);
      return;
    }
    this.pending.push(bytes);
  }

  /** Writes raw bytes, bypassing framing: only for tests that play a misbehaving peer. */
  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = null;
    this.socket.off('data', this.onData);
    this.socket.end();
    // A peer that never answers our FIN must not hold the socket open forever.
    setTimeout(() => this.socket.destroy(), SOCKET_LINGER_MS).unref();
    this.handler.closed(this, reason);
  }

  private readonly onData = (chunk: Buffer): void => {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.close(`malformed frame from ${this.label}: ${err.message}`);
      return;
    }
    for (const frame of frames) {
      if (this.closed) return;
      if (this.peer === null) this.onHello(frame);
      else if (frame[0] === FrameKind.Control && this.control !== null) this.control(frame[1]);
      else this.handler.frame(this, frame);
    }
  };

  private onHello(frame: Frame): void {
    if (frame[0] !== FrameKind.Hello) {
      this.close(`protocol violation from ${this.label}: the first frame must be HELLO`);
      return;
    }
    if (frame[2] !== this.options.cookie) {
      this.close(`authentication failed for node "${frame[1]}" from ${this.label}: wrong cookie`);
      return;
    }
    this.peer = frame[1];
    const queued = this.pending ?? [];
    this.pending = null;
    for (const bytes of queued) this.socket.write(bytes);
    this.options.onHello(this, frame[1]);
  }
}

/** Accepts TCP links on `address` (use port 0 for an ephemeral port). */
export async function listenTcp(
  address: TcpAddress,
  makeLink: (socket: Socket, label: string) => void,
): Promise<{ address: TcpAddress; server: Server; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    makeLink(socket, `${socket.remoteAddress}:${socket.remotePort}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('TCP listener has no address');
  return {
    address: { host: address.host, port: bound.port },
    server,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Opens a TCP connection; resolves once connected (the HELLO exchange follows on the link). */
export function dialTcp(address: TcpAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(address.port, address.host);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
