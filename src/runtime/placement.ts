/*
 * placement.ts — running an actor subtree in a worker thread or a child process.
 *
 * `place` returns the subtree root's ref at once (its node is new and unique) and starts the
 * host in the background: a Worker with a data MessagePort and a comlink control port, or a
 * child process that dials back to this node's TCP listener and carries both data frames and
 * comlink control frames on that connection. Every frame for the host, STOP included, goes
 * through one DeferredLink that holds them (bounded) until the host has built the root, so
 * nothing sent early is lost or overtaken.
 *
 * To the supervisor above it, a placed child is like any other: `$started` when its root has
 * started, `$exit` when it has ended. The host reports a normal or crashed root itself; if the
 * host dies first (killed, out of memory, `kill -9`), the exit is made up here from the
 * thread's exit code or the process's exit code or signal, once both the thread or process
 * and its data link are gone. Killing a placed child kills its host. A host whose root has
 * ended or whose link has dropped gets HOST_EXIT_GRACE_MS to end by itself before it is
 * killed. Importing this module is what makes `thread` and `process` placements available.
 */
import { wrap, type Remote } from 'comlink';
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { nanoid } from 'nanoid';
import { HOST_EXIT_GRACE_MS, HOST_START_TIMEOUT_MS, LINK_PENDING_LIMIT } from '../constants.js';
import { crash, KILLED, refKey, type ActorRef, type ActorSpec, type ExitReason } from './actor.js';
import type { Frame } from './codec.js';
import type { HostControl } from './host.js';
import { installPlacements, type Kernel, type PlacementInfo, type Placements } from './kernel.js';
import { networkOf } from './network.js';
import { linkEndpoint, portEndpoint } from './transport/endpoint.js';
import { describeError, type Link, type LinkHandler } from './transport/link.js';
import { PortLink } from './transport/port.js';

/** The route to a host: holds frames until the host's root exists, then passes them on. */
class DeferredLink implements Link {
  closed = false;
  private target: Link | null = null;
  private queue: Frame[] = [];

  constructor(
    public peer: string | null,
    readonly label: string,
    private readonly onClosed: (link: Link, reason: string) => void,
    private readonly onOverflow: () => void,
  ) {}

  bind(link: Link): void {
    if (this.closed) return;
    this.target = link;
    for (const frame of this.queue) link.send(frame);
    this.queue = [];
  }

  send(frame: Frame): boolean {
    if (this.closed) return false;
    if (this.target !== null) return this.target.send(frame);
    if (this.queue.length >= LINK_PENDING_LIMIT) {
      this.onOverflow();
      return false;
    }
    this.queue.push(frame);
    return true;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.target?.close(reason);
    this.onClosed(this, reason);
  }
}

interface Host {
  readonly info: PlacementInfo;
  readonly spec: ActorSpec;
  readonly root: ActorRef;
  readonly parent: ActorRef;
  readonly link: DeferredLink;
  /** The thread's port or the process's TCP link, once there is one. */
  dataLink: Link | null;
  control: Remote<HostControl> | null;
  kill: () => void;
  rootExited: boolean;
  killedByUs: boolean;
  /** How the thread or process ended (or failed to start); null while it runs. */
  exitText: string | null;
  /** Why the data link closed, if it closed first (a malformed frame, say). */
  linkReason: string | null;
  linkDown: boolean;
  ended: boolean;
  graceTimer: NodeJS.Timeout | null;
  readonly done: Promise<void>;
  markDone: () => void;
}

class PlacementManager implements Placements {
  private readonly hosts = new Map<string, Host>();

  constructor(private readonly kernel: Kernel) {}

  place(spec: ActorSpec, parent: ActorRef): ActorRef {
    const node = `${spec.name}-${nanoid(8)}`;
    const root = { node, id: spec.id ?? spec.name };
    const host = spec.placement === 'process' ? this.startProcess(spec, root, parent) : this.startThread(spec, root, parent);
    this.hosts.set(refKey(root), host);
    return root;
  }

  /** Kills are done here (by ending the host); graceful stops travel as STOP frames. */
  stopHosted(ref: ActorRef, reason: ExitReason): boolean {
    if (reason.kind !== 'killed') return false;
    const host = this.hosts.get(refKey(ref));
    if (host === undefined) return false;
    host.killedByUs = true;
    host.kill();
    return true;
  }

  rootExited(ref: ActorRef): void {
    const host = this.hosts.get(refKey(ref));
    if (host === undefined || host.rootExited) return;
    host.rootExited = true;
    this.armGrace(host);
  }

  describe(ref: ActorRef): PlacementInfo | undefined {
    return this.hosts.get(refKey(ref))?.info;
  }

  async closeAll(): Promise<void> {
    const hosts = [...this.hosts.values()];
    for (const host of hosts) {
      host.killedByUs = true;
      host.kill();
    }
    await Promise.all(hosts.map((h) => h.done));
  }

  private newHost(spec: ActorSpec, root: ActorRef, parent: ActorRef, info: PlacementInfo, label: string): Host {
    let markDone = (): void => {};
    const done = new Promise<void>((resolve) => { markDone = resolve; });
    const host: Host = {
      info, spec, root, parent, done, markDone,
      link: new DeferredLink(root.node, label,
        (link, reason) => this.kernel.linkClosed(link, reason, 'quiet'),
        () => {
          host.exitText ??= `more than ${LINK_PENDING_LIMIT} messages were sent to ${spec.name} before its host started`;
          host.kill();
        }),
      dataLink: null, control: null, kill: () => {},
      rootExited: false, killedByUs: false, exitText: null, linkReason: null, linkDown: false, ended: false, graceTimer: null,
    };
    this.kernel.attachLink(host.link, false);
    return host;
  }

  /** Makes sure a host that should be ending does end. */
  private armGrace(host: Host): void {
    if (host.graceTimer !== null || host.ended) return;
    host.graceTimer = setTimeout(() => host.kill(), HOST_EXIT_GRACE_MS);
    host.graceTimer.unref();
  }

  /** Both the thread/process and its data link are gone: settle the root's fate, once. */
  private settle(host: Host): void {
    if (host.ended || host.exitText === null || !host.linkDown) return;
    host.ended = true;
    if (host.graceTimer !== null) clearTimeout(host.graceTimer);
    host.link.close(host.exitText);
    this.hosts.delete(refKey(host.root));
    if (!host.rootExited) {
      const reason = host.killedByUs ? KILLED : crash(host.exitText);
      this.kernel.hostLost(host.root, host.parent, host.spec.name, reason);
    }
    host.markDone();
  }

  /** Frames from the host go to the kernel; the data link's close is half of the host's end. */
  private dataHandler(host: Host): LinkHandler {
    return {
      frame: (link, frame) => this.kernel.linkFrame(link, frame),
      closed: (link, reason) => {
        this.kernel.linkClosed(link, reason, 'quiet');
        host.linkReason ??= reason;
        host.linkDown = true;
        this.armGrace(host);
        this.settle(host);
      },
    };
  }

  /** How a host ended, preferring the data link's reason when it closed first on a clean exit. */
  private exitText(host: Host, clean: boolean, plain: string): string {
    return clean && host.linkReason !== null && !host.rootExited ? `${plain} after its link closed: ${host.linkReason}` : plain;
  }

  private startThread(spec: ActorSpec, root: ActorRef, parent: ActorRef): Host {
    const data = new MessageChannel();
    const control = new MessageChannel();
    // Sibling workers talk over ports of their own (a standby's WAL does not pass through
    // here). Each existing one is offered its end down its data port before anything could
    // name the new node to it, so no frame between the two can overtake another.
    const peers: { node: string; port: MessagePort }[] = [];
    for (const other of this.hosts.values()) {
      if (other.info.placement !== 'thread' || !(other.dataLink instanceof PortLink) || other.dataLink.closed) continue;
      const channel = new MessageChannel();
      other.dataLink.offerPeer(root.node, channel.port1);
      peers.push({ node: other.root.node, port: channel.port2 });
    }
    const worker = new Worker(new URL('./host-thread.js', import.meta.url), {
      workerData: { node: root.node, parentNode: this.kernel.id, dataPort: data.port2, controlPort: control.port2, peers },
      transferList: [data.port2, control.port2, ...peers.map((p) => p.port)],
    });
    const label = `worker thread ${worker.threadId} (${spec.name})`;
    const host = this.newHost(spec, root, parent, { placement: 'thread', node: root.node, threadId: worker.threadId }, label);
    host.kill = () => void worker.terminate();
    const link = new PortLink(data.port1, label, root.node, this.dataHandler(host));
    host.dataLink = link;
    let error: string | null = null;
    worker.on('error', (err) => { error = err.message; });
    worker.on('exit', (code) => {
      host.exitText ??= error !== null ? `worker thread failed: ${error}`
        : this.exitText(host, code === 0, `worker thread exited with code ${code}`);
      link.drain();
      control.port1.close();
      link.close(host.exitText);
      this.settle(host);
    });
    host.control = wrap<HostControl>(portEndpoint(control.port1));
    this.requestSpawn(host, link, 'a worker thread');
    return host;
  }

  private startProcess(spec: ActorSpec, root: ActorRef, parent: ActorRef): Host {
    const network = networkOf(this.kernel);
    const host = this.newHost(spec, root, parent, { placement: 'process', node: root.node }, `child process (${spec.name})`);
    let child: ChildProcess | null = null;
    let killRequested = false;
    host.kill = () => {
      killRequested = true;
      child?.kill('SIGKILL');
    };
    const startTimer = setTimeout(() => {
      if (host.control !== null) return;
      host.exitText ??= `the process did not connect within ${HOST_START_TIMEOUT_MS} ms`;
      host.kill();
    }, HOST_START_TIMEOUT_MS);
    startTimer.unref();
    const stopWatching = network.onPeer((link, peer) => {
      if (peer !== root.node) return false;
      stopWatching();
      clearTimeout(startTimer);
      link.setHandler(this.dataHandler(host));
      host.dataLink = link;
      host.control = wrap<HostControl>(linkEndpoint(link));
      this.requestSpawn(host, link, 'a child process');
      return true;
    });
    const failed = (text: string): void => {
      stopWatching();
      clearTimeout(startTimer);
      host.exitText ??= text;
      host.linkDown = true;
      this.settle(host);
    };
    network.listen().then((address) => {
      if (killRequested) {
        failed('the process was killed before it started');
        return;
      }
      const args = JSON.stringify({ node: root.node, parentNode: this.kernel.id, host: address.host, port: address.port, cookie: network.cookie });
      const proc = spawnProcess(process.execPath, [...process.execArgv, new URL('./host-process.js', import.meta.url).pathname, args], {
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child = proc;
      (host.info as { pid?: number }).pid = proc.pid;
      proc.on('error', (err) => failed(`cannot start a child process: ${err.message}`));
      proc.on('exit', (code, signal) => {
        stopWatching();
        clearTimeout(startTimer);
        host.exitText ??= signal !== null ? `process ${proc.pid} was terminated by signal ${signal}`
          : this.exitText(host, code === 0, `process ${proc.pid} exited with code ${code}`);
        // A process that died before it connected has no link that could still close.
        if (host.dataLink === null) host.linkDown = true;
        this.settle(host);
      });
    }, (err: unknown) => failed(`cannot listen for the child process: ${describeError(err)}`));
    return host;
  }

  /** Asks the host to build the root; frames for it flow only once it exists there. */
  private requestSpawn(host: Host, dataLink: Link, where: string): void {
    const { placement: _placement, ...spec } = host.spec;
    host.control!.spawn(spec, host.root.id, host.parent).then(
      () => host.link.bind(dataLink),
      (err: unknown) => {
        host.exitText ??= `cannot start ${host.spec.name} in ${where}: ${describeError(err)}`;
        host.kill();
      },
    );
  }
}

installPlacements((kernel) => new PlacementManager(kernel));
