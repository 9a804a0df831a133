/*
 * start.ts — a topology file's servers, started in order: the primary (initdb), then each
 * standby by base backup from its upstream once that upstream runs.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Cluster, type Server } from '../cluster/cluster.js';
import type { Topology } from './topology.js';

/** Starts every server of `topology` in a new cluster under `dir`; `progress` hears each step. */
export async function startTopology(topology: Topology, dir: string, progress: (line: string) => void = () => {}): Promise<{ cluster: Cluster; servers: Map<string, Server> }> {
  const cluster = await Cluster.create({ dir, placement: topology.placement });
  const servers = new Map<string, Server>();
  const archive = topology.archive === null ? null : resolve(dir, topology.archive);
  try {
    if (archive !== null) mkdirSync(archive, { recursive: true });
    for (const spec of topology.servers) {
      const settings: Record<string, string> = { ...topology.settings, ...spec.settings };
      if (spec.upstream === null) {
        if (archive !== null) Object.assign(settings, { archive_mode: 'on', archive_library: 'basic_archive', 'basic_archive.archive_directory': archive }, spec.settings);
        servers.set(spec.name, await cluster.initPrimary(spec.name, {
          settings, placement: spec.placement, ...(topology.walSegmentSize === null ? {} : { walSegmentSize: topology.walSegmentSize }),
        }));
        progress(`${spec.name}: primary (${spec.placement})`);
        continue;
      }
      // Restoring from the archive too, a standby cut off from its upstream catches up from there.
      if (archive !== null) Object.assign(settings, { restore_library: 'basic_archive', 'basic_archive.archive_directory': archive }, spec.settings);
      servers.set(spec.name, await cluster.addStandby(spec.name, {
        upstream: spec.upstream, settings, placement: spec.placement, streaming: spec.streaming, ...(spec.slot === null ? {} : { slot: spec.slot }),
      }));
      progress(`${spec.name}: standby of ${spec.upstream}${spec.slot === null ? '' : ` through slot ${spec.slot}`}${spec.streaming ? '' : ', fed by the archive alone'} (${spec.placement})`);
    }
    return { cluster, servers };
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
}
