/*
 * directory.ts — where a connection string's host and port lead.
 *
 * Every server of a cluster listens on a port of its own (`server.conninfo` names it), and
 * registers its postmaster here under that address when it starts; a walreceiver or
 * pg_basebackup resolves `host=127.0.0.1 port=5433` through it before it sends its
 * `ReplConnect`. The address book stands where a listening socket would: an address nobody
 * registered is refused as libpq reports a refused TCP connection. Whatever the placement
 * of the servers, the book lives in the cluster's own node, and its answers are refs that
 * reach the postmaster wherever it runs. Like a socket, a connection learns when the server
 * at the other end is gone: whoever `Watch`es a registration hears `ServerGone` when it is
 * taken back or replaced (a restart after a crash registers a new postmaster).
 *
 * A test can cut the network between two servers (`cluster.partition(a, b)`): their
 * connections are reset at both ends — every watch of one by the other hears `ServerGone` —
 * and new ones are refused as unreachable until `cluster.heal(a, b)`.
 */
import { defineBehaviour, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import { refKey } from '../runtime/actor.js';
import type { ForgetServer, NewestPeerTimeline, NewestPeerTimelineIs, Partition, Register, Resolve, Resolved, ServerGone, ServerIdentity, Unregister, Unwatch, Watch } from '../replication/protocol.js';


/** Host names that reach this machine's servers. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '']);

class Directory implements Actor {
  private readonly byPort = new Map<number, ActorRef>();
  /** Watchers by port, then by ref key; each with the port of the server it runs in, if any. */
  private readonly watchers = new Map<number, Map<string, { ref: ActorRef; from: number | undefined }>>();
  /** Each server's database system and timeline, as it last said (kept while it is down). */
  private readonly identities = new Map<number, { systemIdentifier: string; timeline: number }>();
  /** Cut links, as "low:high" port pairs. */
  private readonly cut = new Set<string>();

  receive(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'Register': {
        const m = msg as Register;
        const before = this.byPort.get(m.port);
        if (before !== undefined && refKey(before) !== refKey(m.postmaster)) this.gone(m.port, before, ctx);
        this.byPort.set(m.port, m.postmaster);
        return;
      }
      case 'Unregister': {
        const port = (msg as Unregister).port;
        const before = this.byPort.get(port);
        this.byPort.delete(port);
        if (before !== undefined) this.gone(port, before, ctx);
        return;
      }
      case 'Unwatch': {
        const m = msg as Unwatch;
        this.watchers.get(m.port)?.delete(refKey(m.replyTo));
        return;
      }
      case 'Watch': {
        const m = msg as Watch;
        const now = this.byPort.get(m.port);
        if (now === undefined || refKey(now) !== refKey(m.postmaster) || this.isCut(m.port, m.from)) {
          ctx.send(m.replyTo, { type: 'ServerGone', port: m.port, postmaster: m.postmaster } satisfies ServerGone);
          return;
        }
        const list = this.watchers.get(m.port) ?? new Map<string, { ref: ActorRef; from: number | undefined }>();
        list.set(refKey(m.replyTo), { ref: m.replyTo, from: m.from });
        this.watchers.set(m.port, list);
        return;
      }
      case 'Resolve': {
        const m = msg as Resolve;
        if (this.isCut(m.port, m.from)) {
          ctx.send(m.replyTo, { type: 'Resolved', postmaster: null, unreachable: true } satisfies Resolved);
          return;
        }
        const postmaster = LOCAL_HOSTS.has(m.host) ? (this.byPort.get(m.port) ?? null) : null;
        ctx.send(m.replyTo, { type: 'Resolved', postmaster } satisfies Resolved);
        return;
      }
      case 'ServerIdentity': {
        const m = msg as ServerIdentity;
        this.identities.set(m.port, { systemIdentifier: m.systemIdentifier, timeline: m.timeline });
        return;
      }
      case 'ForgetServer':
        // The server is gone for good (cluster.remove): its timeline no longer fences anyone.
        this.identities.delete((msg as ForgetServer).port);
        return;
      case 'NewestPeerTimeline': {
        const m = msg as NewestPeerTimeline;
        let peer: { port: number; timeline: number } | null = null;
        for (const [port, identity] of this.identities) {
          // A server that is down still counts: its data directory holds the newer timeline.
          if (port === m.port || identity.systemIdentifier !== m.systemIdentifier) continue;
          if (peer === null || identity.timeline > peer.timeline) peer = { port, timeline: identity.timeline };
        }
        ctx.send(m.replyTo, { type: 'NewestPeerTimelineIs', peer } satisfies NewestPeerTimelineIs);
        return;
      }
      case 'Partition': {
        const m = msg as Partition;
        const key = linkKey(m.a, m.b);
        if (!m.cut) {
          this.cut.delete(key);
          return;
        }
        this.cut.add(key);
        this.reset(m.a, m.b, ctx);
        this.reset(m.b, m.a, ctx);
        return;
      }
    }
  }

  private isCut(port: number, from: number | undefined): boolean {
    return from !== undefined && this.cut.has(linkKey(port, from));
  }

  /** The connections from the server at `from` to the one at `port` are reset. */
  private reset(port: number, from: number, ctx: Context): void {
    const postmaster = this.byPort.get(port);
    const list = this.watchers.get(port);
    if (postmaster === undefined || list === undefined) return;
    for (const [key, watcher] of [...list]) {
      if (watcher.from !== from) continue;
      list.delete(key);
      ctx.send(watcher.ref, { type: 'ServerGone', port, postmaster } satisfies ServerGone);
    }
  }

  private gone(port: number, postmaster: ActorRef, ctx: Context): void {
    for (const watcher of this.watchers.get(port)?.values() ?? []) ctx.send(watcher.ref, { type: 'ServerGone', port, postmaster } satisfies ServerGone);
    this.watchers.delete(port);
  }
}

function linkKey(a: number, b: number): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}

export const DIRECTORY = defineBehaviour(import.meta.url, 'Directory', () => new Directory());
