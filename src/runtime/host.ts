/*
 * host.ts — the hosted side of a placement: a node in a worker thread or child process that
 * runs one actor subtree for the node that placed it.
 *
 * The placing node calls `spawn` over comlink (HostControl) to build the subtree's root; the
 * kernel imports the behaviour's module if needed. The root's parent lives on the placing
 * node, so its `$started` / `$exit` travel there over the data link, as do STOP frames the
 * other way. Once the root has exited the host's work is done: it shuts its kernel down and
 * ends. If the link to the placing node breaks, the root is killed and the host ends too: a
 * subtree nobody supervises must not outlive its supervisor.
 */
import { KILLED, sameRef, type ActorRef, type ActorSpec } from './actor.js';
import type { Kernel } from './kernel.js';

export interface HostControl {
  spawn(spec: ActorSpec, id: string, parent: ActorRef): Promise<ActorRef>;
}

export interface HostHooks {
  /** Ends the thread or process after the kernel has shut down. */
  readonly end: () => void;
}

export function hostControl(kernel: Kernel, hooks: HostHooks): { control: HostControl; upstreamLost: () => void } {
  let root: ActorRef | null = null;
  let ending = false;
  const finish = (): void => {
    if (ending) return;
    ending = true;
    // Let the root's `$exit` frame leave before the links close.
    setImmediate(() => void kernel.shutdown().then(hooks.end, hooks.end));
  };
  kernel.onEvent((event) => {
    if (root !== null && (event.kind === 'stopped' || event.kind === 'crashed') && sameRef(event.ref, root)) finish();
  });
  const control: HostControl = {
    async spawn(spec, id, parent) {
      if (root !== null) throw new Error(`this host already runs ${root.id}`);
      root = kernel.spawnHostedRoot({ ...spec, placement: 'inline' }, id, parent);
      if (!kernel.isAlive(root)) finish();
      return root;
    },
  };
  const upstreamLost = (): void => {
    if (root !== null && kernel.isAlive(root)) kernel.stop(root, KILLED);
    finish();
  };
  return { control, upstreamLost };
}
