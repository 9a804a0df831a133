/*
 * tcp.ts — links over TCP: length-prefixed msgpackr frames (framing.ts), for child processes
 * on this host and for nodes on other hosts alike.
 *
 * Both ends open with HELLO [node, cookie]. Until the peer's HELLO has been checked it may
 * send only small frames, and must do so within HELLO_TIMEOUT_MS. A wrong cookie, a first
 * frame other than HELLO, a malformed frame, a close in the middle of a frame, or a peer
 * that stops reading while we keep writing ends the connection with a logged reason, and
 * only that connection. Frames we send before the HELLO exchange wait in a bounded queue.
 * CONTROL frames (the comlink control plane of a process host) go to the control listener;
 * every other frame goes to the link's handler.
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import {
  HELLO_TIMEOUT_MS, LINK_PENDING_LIMIT, LINK_WRITE_BUFFER_LIMIT_BYTES, MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES,
  SOCKET_LINGER_MS, TCP_KEEPALIVE_MS,
} from '../../constants.js';
import { FrameCodec, FrameError, FrameKind, type Frame } from '../codec.js';
import { FrameDecoder } from './framing.js';
import { encodeOrClose, handOver, type Link, type LinkHandler } from './link.js';

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
  private readonly helloTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    readonly label: string,
    private handler: LinkHandler,
    private readonly options: TcpLinkOptions,
  ) {
    this.decoder.maxFrameBytes = MAX_HELLO_FRAME_BYTES;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    socket.on('data', this.onData);
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => {
      const partial = this.decoder.partial;
      this.close(partial === null ? 'peer closed the connection'
        : `peer closed the connection mid-frame (received ${partial.have} of ${partial.need} bytes)`);
    });
    this.helloTimer = setTimeout(() => this.close(`no HELLO from ${label} within ${HELLO_TIMEOUT_MS} ms`), HELLO_TIMEOUT_MS);
    this.helloTimer.unref();
    socket.write(this.codec.encodeLengthPrefixed([FrameKind.Hello, options.node, options.cookie]));
  }

  /** Hands the link's frames and close to another owner (placement.ts takes its hosts' links). */
  setHandler(handler: LinkHandler): void {
    this.handler = handler;
  }

  setControlListener(listener: (payload: unknown) => void): void {
    this.control = listener;
  }

  send(frame: Frame): boolean {
    if (this.closed) return false;
    const bytes = encodeOrClose(this, () => this.codec.encodeLengthPrefixed(frame));
    if (bytes === null) return false;
    if (this.pending !== null) {
      if (this.pending.length >= LINK_PENDING_LIMIT) {
        this.close(`more than ${LINK_PENDING_LIMIT} frames queued before ${this.label} said HELLO`);
        return false;
      }
      this.pending.push(bytes);
      return true;
    }
    if (this.socket.writableLength > LINK_WRITE_BUFFER_LIMIT_BYTES) {
      this.close(`${this.label} is not reading: ${this.socket.writableLength} bytes are waiting to be sent`);
      return false;
    }
    this.socket.write(bytes);
    return true;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = null;
    clearTimeout(this.helloTimer);
    this.socket.off('data', this.onData);
    this.socket.end();
    // A peer that never answers our FIN must not hold the socket open forever.
    setTimeout(() => this.socket.destroy(), SOCKET_LINGER_MS).unref();
    this.handler.closed(this, reason);
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.decoder.push(chunk, this.onFrame);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.close(`malformed frame from ${this.label}: ${err.message}`);
    }
  };

  private readonly onFrame = (frame: Frame): boolean => {
    if (this.closed) return false;
    if (this.peer === null) this.onHello(frame);
    else if (frame[0] === FrameKind.Control && this.control !== null) this.control(frame[1]);
    else handOver(this, this.handler, frame);
    return !this.closed;
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
    clearTimeout(this.helloTimer);
    this.decoder.maxFrameBytes = MAX_FRAME_BYTES;
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
  onError: (err: Error) => void,
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
  server.on('error', onError);
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
