/*
 * host-process.ts — entry point of a child process placed by placement.ts.
 *
 * argv[2] is JSON: the node id to take, the placing node's id, its TCP address and the
 * cookie. The process dials back, says HELLO, and serves comlink control calls as CONTROL
 * frames on the same link. It exits when its subtree is done or its parent is gone.
 */
import { expose } from 'comlink';
import { hostControl } from './host.js';
import { Kernel } from './kernel.js';
import './placement.js';
import { linkEndpoint } from './transport/endpoint.js';
import { dialTcp, TcpLink } from './transport/tcp.js';

interface ProcessHostArgs {
  readonly node: string;
  readonly parentNode: string;
  readonly host: string;
  readonly port: number;
  readonly cookie: string;
}

const args = JSON.parse(process.argv[2] ?? '') as ProcessHostArgs;
const kernel = new Kernel({ id: args.node });
const socket = await dialTcp({ host: args.host, port: args.port });
// Exit only once the socket has flushed the last frames (the root's `$exit`) and closed.
const { control, upstreamLost } = hostControl(kernel, {
  end: () => (socket.destroyed ? process.exit(0) : socket.once('close', () => process.exit(0))),
});
const link = new TcpLink(socket, `placing process (${args.parentNode})`, {
  frame: (l, frame) => kernel.linkFrame(l, frame),
  closed: (l, reason) => {
    kernel.linkClosed(l, reason);
    upstreamLost();
  },
}, {
  node: args.node,
  cookie: args.cookie,
  onHello: (l) => kernel.attachLink(l, true),
});
expose(control, linkEndpoint(link));
