/*
 * directory.ts — where a connection string's host and port lead.
 *
 * Every server of a cluster listens on a port of its own (`server.conninfo` names it), and
 * registers its postmaster here under that address when it starts; a walreceiver or
 * pg_basebackup resolves `host=127.0.0.1 port=5433` through it before it sends its
 * `ReplConnect`. The address book stands where a listening socket would: an address nobody
 * registered is refused as libpq reports a refused TCP connection. Whatever the placement
 * of the servers, the book lives in the cluster's own node, and its answers are refs that
 * reach the postmaster wherever it runs.
 */
import { defineBehaviour, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import type { Register, Resolve, Resolved, Unregister } from '../replication/protocol.js';


/** Host names that reach this machine's servers. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '']);

class Directory implements Actor {
  private readonly byPort = new Map<number, ActorRef>();

  receive(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'Register': {
        const m = msg as Register;
        this.byPort.set(m.port, m.postmaster);
        return;
      }
      case 'Unregister':
        this.byPort.delete((msg as Unregister).port);
        return;
      case 'Resolve': {
        const m = msg as Resolve;
        const postmaster = LOCAL_HOSTS.has(m.host) ? (this.byPort.get(m.port) ?? null) : null;
        ctx.send(m.replyTo, { type: 'Resolved', postmaster } satisfies Resolved);
        return;
      }
    }
  }
}

export const DIRECTORY = defineBehaviour(import.meta.url, 'Directory', () => new Directory());
