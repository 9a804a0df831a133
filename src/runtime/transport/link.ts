/*
 * link.ts — a connection between two nodes that carries frames, whatever is underneath.
 *
 * PortLink (port.ts) runs over a worker_threads MessagePort, TcpLink (tcp.ts) over a socket.
 * A link reports each valid frame and, once, its close with a reason; a malformed frame from
 * the peer closes it (the reason is logged by the kernel), so nothing half-decoded is ever
 * delivered. Frames sent before a link is up wait in a bounded queue.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Frame } from '../codec.js';

export interface LinkHandler {
  frame(link: Link, frame: Frame): void;
  closed(link: Link, reason: string): void;
  /**
   * Thread links only: the placing thread hands over a MessagePort straight to a sibling
   * worker's node (see PortLink.offerPeer). Without this, such an offer is malformed input.
   */
  peerOffered?(link: Link, node: string, port: MessagePort): void;
}

export interface Link {
  /** The node at the other end, once known (from the HELLO or from whoever built the link). */
  peer: string | null;
  /** Where the link goes, for log lines ("worker thread 3", "127.0.0.1:40112"). */
  readonly label: string;
  readonly closed: boolean;
  /** False when the frame could not be sent (the link is closed, or just closed over it). */
  send(frame: Frame): boolean;
  close(reason: string): void;
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Hands a frame to a link's handler. A frame that passed validation but still makes the
 * kernel throw is bad input all the same: the link closes with the reason instead of the
 * exception escaping into the event loop and taking the whole process down.
 */
export function handOver(link: Link, handler: LinkHandler, frame: Frame): void {
  try {
    handler.frame(link, frame);
  } catch (err) {
    link.close(`frame from ${link.label} could not be handled: ${describeError(err)}`);
  }
}

/**
 * Encodes a frame for `link`, or closes the link and returns null: after a failed encode the
 * link's sequential codec may have recorded shapes its peer will never learn, so the two
 * ends are out of step for good.
 */
export function encodeOrClose<T>(link: Link, encode: () => T): T | null {
  try {
    return encode();
  } catch (err) {
    link.close(`cannot send to ${link.label}: ${describeError(err)}`);
    return null;
  }
}
