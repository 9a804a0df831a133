/*
 * network.ts — joining nodes over TCP: a node listens, another connects, and from then on
 * each addresses the other's actors with plain refs, as if they were local.
 *
 * Every connection is authenticated by a shared cookie in the HELLO exchange (tcp.ts). The
 * same listener accepts the child processes that placement.ts starts; `onPeer` tells the
 * placement code when one of its hosts has connected.
 */
import { nanoid } from 'nanoid';
import type { Kernel } from './kernel.js';
import type { LinkHandler } from './transport/link.js';
import { dialTcp, listenTcp, TcpLink, type TcpAddress } from './transport/tcp.js';

/** Returns true to take the link over (placement.ts does, for its process hosts). */
export type PeerListener = (link: TcpLink, peer: string) => boolean;

export class TcpNetwork {
  /** The secret every peer must present; generated unless given. */
  readonly cookie: string;
  private listening: { requested: TcpAddress; bound: Promise<TcpAddress> } | null = null;
  private readonly peerListeners = new Set<PeerListener>();
  private readonly handler: LinkHandler;

  constructor(private readonly kernel: Kernel, cookie?: string) {
    this.cookie = cookie ?? nanoid(24);
    this.handler = {
      frame: (link, frame) => kernel.linkFrame(link, frame),
      closed: (link, reason) => kernel.linkClosed(link, reason),
    };
  }

  onPeer(listener: PeerListener): () => void {
    this.peerListeners.add(listener);
    return () => this.peerListeners.delete(listener);
  }

  /**
   * Starts accepting links; loopback and an ephemeral port unless told otherwise. A node
   * listens on one address: asking again for the same one returns it, asking for another
   * is an error.
   */
  listen(address: TcpAddress = { host: '127.0.0.1', port: 0 }): Promise<TcpAddress> {
    if (this.listening !== null) {
      const { requested, bound } = this.listening;
      if (requested.host === address.host && (address.port === 0 || requested.port === address.port)) return bound;
      return Promise.reject(new Error(`node ${this.kernel.id} already listens on ${requested.host}:${requested.port}; it cannot also listen on ${address.host}:${address.port}`));
    }
    const bound = listenTcp(address, (socket, label) => {
      new TcpLink(socket, label, this.handler, { node: this.kernel.id, cookie: this.cookie, onHello: this.accepted });
    }, (err) => this.kernel.kernelLog('error', `TCP listener on ${address.host}:${address.port} failed: ${err.message}`))
      .then(({ address: boundTo, close }) => {
        this.kernel.onShutdown(close);
        return boundTo;
      });
    this.listening = { requested: address, bound };
    bound.catch(() => { this.listening = null; });
    return bound;
  }

  /** Connects to a listening node; resolves with its node id once HELLOs are exchanged. */
  async connect(address: TcpAddress): Promise<string> {
    const socket = await dialTcp(address);
    return new Promise<string>((resolve, reject) => {
      new TcpLink(socket, `${address.host}:${address.port}`, {
        frame: this.handler.frame,
        closed: (l, reason) => {
          this.handler.closed(l, reason);
          reject(new Error(`connection to ${address.host}:${address.port} failed: ${reason}`));
        },
      }, {
        node: this.kernel.id,
        cookie: this.cookie,
        onHello: (l, peer) => {
          if (!this.kernel.adoptPeer(l, peer)) return;
          resolve(peer);
        },
      });
    });
  }

  private readonly accepted = (link: TcpLink, peer: string): void => {
    for (const listener of this.peerListeners) if (listener(link, peer)) return;
    this.kernel.adoptPeer(link, peer);
  };
}

const networks = new WeakMap<Kernel, TcpNetwork>();

/** The kernel's TCP network, created on first use with `cookie` (or a generated one). */
export function networkOf(kernel: Kernel, cookie?: string): TcpNetwork {
  let network = networks.get(kernel);
  if (network === undefined) {
    network = new TcpNetwork(kernel, cookie);
    networks.set(kernel, network);
  } else if (cookie !== undefined && cookie !== network.cookie) {
    throw new Error(`node ${kernel.id} already uses a different cookie`);
  }
  return network;
}

