/*
 * port.ts — a link over a worker_threads MessagePort: msgpackr frames as binary messages.
 *
 * Large frames are transferred (the receiver takes the buffer, no copy); small ones are
 * copied, which is cheaper than detaching. Anything arriving that is not a binary message
 * holding one valid frame closes the port with the reason, except a peer offer: a port to a
 * sibling worker, which the placing thread sends down a worker's own data port (so that it
 * arrives before any frame naming that sibling's actors) for the two to talk directly.
 */
import { MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { TRANSFER_THRESHOLD_BYTES } from '../../constants.js';
import { FrameCodec, FrameError, type Frame } from '../codec.js';
import { encodeOrClose, handOver, type Link, type LinkHandler } from './link.js';

export class PortLink implements Link {
  closed = false;
  private readonly codec = new FrameCodec();

  constructor(
    private readonly port: MessagePort,
    readonly label: string,
    public peer: string | null,
    private readonly handler: LinkHandler,
  ) {
    port.on('message', this.onMessage);
    port.on('close', () => this.finish('the other end closed the port'));
  }

  send(frame: Frame): boolean {
    if (this.closed) return false;
    const bytes = encodeOrClose(this, () => this.codec.encode(frame));
    if (bytes === null) return false;
    // Cloning a typed array copies its whole ArrayBuffer, so frames are always in buffers of
    // their own; big ones are moved rather than copied a second time.
    if (bytes.length >= TRANSFER_THRESHOLD_BYTES) this.port.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
    else this.port.postMessage(bytes);
    return true;
  }

  /** Gives the worker at the other end a port straight to `node` (another worker). */
  offerPeer(node: string, port: MessagePort): void {
    if (this.closed) {
      port.close();
      return;
    }
    this.port.postMessage({ peer: node, port }, [port]);
  }

  /** Delivers messages already queued on the port (used when its other end has exited). */
  drain(): void {
    for (let m = receiveMessageOnPort(this.port); m !== undefined && !this.closed; m = receiveMessageOnPort(this.port)) {
      this.onMessage(m.message);
    }
  }

  close(reason: string): void {
    if (this.closed) return;
    this.finish(reason);
    this.port.close();
  }

  private readonly onMessage = (data: unknown): void => {
    if (this.closed) return;
    if (isPeerOffer(data) && this.handler.peerOffered !== undefined) {
      this.handler.peerOffered(this, data.peer, data.port);
      return;
    }
    if (!(data instanceof Uint8Array)) {
      this.close(`malformed frame from ${this.label}: expected a binary message, got ${data === null ? 'null' : typeof data}`);
      return;
    }
    let frame: Frame;
    try {
      frame = this.codec.decode(data);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.close(`malformed frame from ${this.label}: ${err.message}`);
      return;
    }
    handOver(this, this.handler, frame);
  };

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.port.off('message', this.onMessage);
    this.handler.closed(this, reason);
  }
}

function isPeerOffer(data: unknown): data is { peer: string; port: MessagePort } {
  if (typeof data !== 'object' || data === null || data instanceof Uint8Array) return false;
  const offer = data as { peer?: unknown; port?: unknown };
  return typeof offer.peer === 'string' && offer.port instanceof MessagePort;
}
