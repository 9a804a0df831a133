/*
 * host-thread.ts — entry point of a worker thread placed by placement.ts.
 *
 * workerData carries the node id to take, the placing node's id, the data port (frames) and
 * the control port (comlink).
 */
import { expose } from 'comlink';
import { workerData, type MessagePort } from 'node:worker_threads';
import { hostControl } from './host.js';
import { Kernel } from './kernel.js';
import './placement.js';
import { portEndpoint } from './transport/endpoint.js';
import { PortLink } from './transport/port.js';

interface ThreadHostData {
  readonly node: string;
  readonly parentNode: string;
  readonly dataPort: MessagePort;
  readonly controlPort: MessagePort;
  /** Ports straight to the sibling workers that existed when this one was placed. */
  readonly peers: readonly { readonly node: string; readonly port: MessagePort }[];
}

const data = workerData as ThreadHostData;
const kernel = new Kernel({ id: data.node });
const { control, upstreamLost } = hostControl(kernel, {
  end: () => {
    data.controlPort.close();
    data.dataPort.close();
    process.exit(0); // ends this worker thread only, whatever handles an actor left behind
  },
});
/** A sibling worker, reached without the placing thread relaying (and re-encoding) every frame. */
function attachPeer(node: string, port: MessagePort): void {
  const peer = new PortLink(port, `worker thread (${node})`, node, {
    frame: (l, frame) => kernel.linkFrame(l, frame),
    // A sibling that ends is the placing thread's to report; frames to it go up again.
    closed: (l, reason) => kernel.linkClosed(l, reason, 'quiet'),
  });
  kernel.attachLink(peer, false);
}

for (const peer of data.peers) attachPeer(peer.node, peer.port);
const link = new PortLink(data.dataPort, `placing thread (${data.parentNode})`, data.parentNode, {
  frame: (l, frame) => kernel.linkFrame(l, frame),
  closed: (l, reason) => {
    kernel.linkClosed(l, reason);
    upstreamLost();
  },
  peerOffered: (_, node, port) => attachPeer(node, port),
});
kernel.attachLink(link, true);
expose(control, portEndpoint(data.controlPort));
