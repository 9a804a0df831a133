/*
 * placement.ts — running an actor subtree in a worker thread or a child process.
 *
 * `place` returns the subtree root's ref at once (its node is new and unique) and starts the
 * host in the background: a Worker with a data MessagePort and a comlink control port, or a
 * child process that dials back to this node's TCP listener and carries both data frames and
 * comlink control frames on that connection. Frames sent to the root before its host is up
 * wait in a bounded queue (a DeferredLink).
 *
 * To the supervisor above it, a placed child is like any other: `$started` when its root has
 * started, `$exit` when it has ended. The host reports a normal or crashed root itself; if the
 * host dies first (killed, out of memory, `kill -9`), the exit is made up here from the
 * thread's exit code or the process's exit code or signal. Killing a placed child kills its
 * host. Importing this module is what makes `thread` and `process` placements available.
 */
import { wrap, type Remote } from 'comlink';
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import { Worker, MessageChannel } from 'node:worker_threads';
import { nanoid } from 'nanoid';
import { HOST_EXIT_GRACE_MS, HOST_START_TIMEOUT_MS, LINK_PENDING_LIMIT } from '../constants.js';
import { crash, KILLED, refKey, type ActorRef, type ActorSpec, type ExitReason } from './actor.js';
import type { Frame } from './codec.js';
import type { HostControl } from './host.js';
import { installPlacements, type Kernel, type PlacementInfo, type Placements } from './kernel.js';
import { networkOf } from './network.js';
import { linkEndpoint, portEndpoint } from './transport/endpoint.js';
import type { Link, LinkHandler } from './transport/link.js';
import { PortLink } from './transport/port.js';
import type { TcpLink } from './transport/tcp.js';

/** Stands in for a process host's link until the process has dialled back. */
class DeferredLink implements Link {
  closed = false;
  private target: Link | null = null;
  private queue: Frame[] = [];

  constructor(public peer: string | null, readonly label: string, private readonly onClosed: (link: Link, reason: string) => void) {}

  bind(link: Link): void {
    this.target = link;
    for (const frame of this.queue) link.send(frame);
    this.queue = [];
  }

  send(frame: Frame): void {
    if (this.closed) return;
    if (this.target !== null) this.target.send(frame);
    else if (this.queue.length < LINK_PENDING_LIMIT) this.queue.push(frame);
    else this.close(`more than ${LINK_PENDING_LIMIT} frames queued for a host that has not connected`);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.target?.close(reason);
    this.onClosed(this, reason);
  }
}

interface Host {
  readonly info: PlacementInfo;
  readonly spec: ActorSpec;
  readonly root: ActorRef;
  readonly parent: ActorRef;
  link: DeferredLink;
  rootExited: boolean;
  killedByUs: boolean;
  exitText: string | null;
  /** Why the data link closed, if it closed first (a malformed frame, say). */
  linkReason: string | null;
  linkDown: boolean;
  ended: boolean;
  readonly done: Promise<void>;
  markDone: () => void;
  control: Remote<HostControl> | null;
  kill: () => void;
  graceTimer: NodeJS.Timeout | null;
}

class PlacementManager implements Placements {
  private readonly hosts = new Map<string, Host>();

  constructor(private readonly kernel: Kernel) {}

  place(spec: ActorSpec, parent: ActorRef): ActorRef {
    const node = `${spec.name}-${nanoid(8)}`;
    const root = { node, id: spec.id ?? spec.name };
    const host = spec.placement === 'process' ? this.startProcess(spec, node, root, parent) : this.startThread(spec, node, root, parent);
    this.hosts.set(refKey(root), host);
    return root;
  }

  stopHosted(ref: ActorRef, reason: ExitReason): boolean {
    const host = this.hosts.get(refKey(ref));
    if (host === undefined) return false;
    if (reason.kind === 'killed') {
      host.killedByUs = true;
      host.kill();
    } else if (host.control === null) {
      host.kill();
    } else {
      host.control.stop(reason).catch(() => host.kill());
    }
    return true;
  }

  rootExited(ref: ActorRef): void {
    const host = this.hosts.get(refKey(ref));
    if (host === undefined || host.rootExited) return;
    host.rootExited = true;
    // The host ends by itself once its root is gone; make sure it does.
    host.graceTimer = setTimeout(() => host.kill(), HOST_EXIT_GRACE_MS);
    host.graceTimer.unref();
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

  /** A host record whose route is a DeferredLink: frames wait until the root exists. */
  private newHost(spec: ActorSpec, root: ActorRef, parent: ActorRef, info: PlacementInfo, label: string, kill: () => void): Host {
    let markDone = (): void => {};
    const done = new Promise<void>((resolve) => { markDone = resolve; });
    const host: Host = {
      info, spec, root, parent, kill, done, markDone,
      link: new DeferredLink(root.node, label, (link, reason) => this.kernel.linkClosed(link, reason, 'quiet')),
      rootExited: false, killedByUs: false, exitText: null, linkReason: null, linkDown: false, ended: false, control: null, graceTimer: null,
    };
    this.kernel.attachLink(host.link, false);
    return host;
  }

  /** Both the thread/process and its link are gone: settle the root's fate. */
  private settle(host: Host): void {
    if (host.ended || host.exitText === null || !host.linkDown) return;
    host.ended = true;
    if (host.graceTimer !== null) clearTimeout(host.graceTimer);
    this.hosts.delete(refKey(host.root));
    if (!host.rootExited) {
      const reason = host.killedByUs ? KILLED : crash(host.exitText);
      this.kernel.hostLost(host.root, host.parent, host.spec.name, reason);
    }
    host.markDone();
  }

  /** Frames from the host go to the kernel; the data link's close is half of the host's end. */
  private linkHandler(host: Host): LinkHandler {
    return {
      frame: (link, frame) => this.kernel.linkFrame(link, frame),
      closed: (_link, reason) => {
        host.linkReason ??= reason;
        host.linkDown = true;
        host.link.close(reason);
        this.settle(host);
      },
    };
  }

  private wireSpec(spec: ActorSpec): ActorSpec {
    const { placement: _placement, ...rest } = spec;
    return rest;
  }

  private startThread(spec: ActorSpec, node: string, root: ActorRef, parent: ActorRef): Host {
    const data = new MessageChannel();
    const control = new MessageChannel();
    const worker = new Worker(new URL('./host-thread.js', import.meta.url), {
      workerData: { node, parentNode: this.kernel.id, dataPort: data.port2, controlPort: control.port2 },
      transferList: [data.port2, control.port2],
    });
    const label = `worker thread ${worker.threadId} (${spec.name})`;
    const host = this.newHost(spec, root, parent, { placement: 'thread', node, threadId: worker.threadId }, label, () => void worker.terminate());
    const link = new PortLink(data.port1, label, node, this.linkHandler(host));
    let error: string | null = null;
    worker.on('error', (err) => { error = err.message; });
    worker.on('exit', (code) => {
      host.exitText ??= error !== null ? `worker thread failed: ${error}`
        : code === 0 && host.linkReason !== null ? `worker thread ended after its link closed: ${host.linkReason}`
        : `worker thread exited with code ${code}`;
      link.drain();
      control.port1.close();
      link.close(host.exitText);
      host.link.close(host.exitText);
      this.settle(host);
    });
    host.control = wrap<HostControl>(portEndpoint(control.port1));
    this.requestSpawn(host, link, 'a worker thread');
    return host;
  }

  private startProcess(spec: ActorSpec, node: string, root: ActorRef, parent: ActorRef): Host {
    const network = networkOf(this.kernel);
    let child: ChildProcess | null = null;
    let killRequested = false;
    const host = this.newHost(spec, root, parent, { placement: 'process', node }, `child process (${spec.name})`, () => {
      killRequested = true;
      child?.kill('SIGKILL');
    });
    const startTimer = setTimeout(() => {
      if (host.control === null) host.kill();
    }, HOST_START_TIMEOUT_MS);
    startTimer.unref();
    const stopWatching = network.onPeer((link, peer) => {
      if (peer !== node) return false;
      stopWatching();
      clearTimeout(startTimer);
      link.setHandler(this.linkHandler(host));
      host.control = wrap<HostControl>(linkEndpoint(link));
      this.requestSpawn(host, link, 'a child process');
      return true;
    });
    void network.listen().then((address) => {
      if (killRequested) {
        host.exitText = 'process was killed before it started';
        host.linkDown = true;
        host.link.close(host.exitText);
        this.settle(host);
        return;
      }
      const args = JSON.stringify({ node, parentNode: this.kernel.id, host: address.host, port: address.port, cookie: network.cookie });
      const proc = spawnProcess(process.execPath, [...process.execArgv, new URL('./host-process.js', import.meta.url).pathname, args], {
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child = proc;
      (host.info as { pid?: number }).pid = proc.pid;
      proc.on('exit', (code, signal) => {
        stopWatching();
        clearTimeout(startTimer);
        host.exitText ??= signal !== null ? `process ${proc.pid} was terminated by signal ${signal}`
          : code === 0 && host.linkReason !== null ? `process ${proc.pid} ended after its link closed: ${host.linkReason}`
          : `process ${proc.pid} exited with code ${code}`;
        host.link.close(host.exitText);
        this.settle(host);
      });
    });
    return host;
  }

  /** Asks the host to build the root; frames for it flow only once it exists there. */
  private requestSpawn(host: Host, dataLink: Link, where: string): void {
    host.control!.spawn(this.wireSpec(host.spec), host.root.id, host.parent).then(
      () => host.link.bind(dataLink),
      (err: unknown) => {
        host.exitText ??= `cannot start ${host.spec.name} in ${where}: ${err instanceof Error ? err.message : String(err)}`;
        host.kill();
      },
    );
  }
}

installPlacements((kernel) => new PlacementManager(kernel));
