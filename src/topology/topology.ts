/*
 * topology.ts — a topology file: which servers, where they run, who streams from whom.
 *
 *   placement: thread                 # inline | thread | process: the default for every server
 *   wal_segment_size: 16MB            # optional, fixed at initdb
 *   settings:                         # PostgreSQL settings for every server
 *     wal_writer_delay: 10ms
 *   archive: ./archive                # optional: a directory archive (relative: in the cluster's directory)
 *   servers:
 *     primary:                        # the one server without an upstream
 *       settings:
 *         synchronous_standby_names: 'FIRST 1 (s1, s2)'
 *     s1: { upstream: primary }
 *     s2: { upstream: primary, slot: s2, placement: process }
 *     s3: { upstream: s1 }            # cascaded
 *     warm: { upstream: primary, streaming: false }   # fed by the archive alone
 *
 * With an archive, the primary archives into it (archive_library = 'basic_archive') and
 * every standby restores from it (restore_library), so a standby cut off from its upstream
 * catches up from the archive. Everything is checked before anything starts: a mistake is
 * an error naming the file, line and column, what is wrong and how to fix it.
 */
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode, type Pair, type YAMLMap } from 'yaml';
import { checkValue, findSetting } from '../config/settings.js';
import { parseWithUnit } from '../config/units.js';
import { slotNameError } from '../replication/slots.js';
import type { ServerPlacement } from '../cluster/cluster.js';

export interface TopologyServer {
  readonly name: string;
  /** null: the primary. */
  readonly upstream: string | null;
  readonly placement: ServerPlacement;
  readonly slot: string | null;
  /** This server's own settings (the file's `settings` apply to it too, underneath these). */
  readonly settings: Readonly<Record<string, string>>;
  /** false: a warm standby, fed by the archive alone. */
  readonly streaming: boolean;
}

export interface Topology {
  readonly file: string;
  readonly placement: ServerPlacement;
  readonly walSegmentSize: number | null;
  readonly settings: Readonly<Record<string, string>>;
  /** The directory archive as written (relative: to the cluster's directory); null: none. */
  readonly archive: string | null;
  /** Primary first, then each standby after its upstream. */
  readonly servers: readonly TopologyServer[];
}

/** A mistake in a topology file, with where it is and how to fix it. */
export class TopologyError extends Error {
  constructor(readonly file: string, readonly line: number, readonly column: number, readonly problem: string, readonly fix: string) {
    super(`${file}:${line}:${column}: ${problem}\n  fix: ${fix}`);
    this.name = 'TopologyError';
  }
}

const PLACEMENTS: readonly ServerPlacement[] = ['inline', 'thread', 'process'];
const TOP_KEYS = ['placement', 'wal_segment_size', 'settings', 'archive', 'servers'] as const;
const SERVER_KEYS = ['upstream', 'placement', 'slot', 'settings', 'streaming'] as const;

export function parseTopology(text: string, file: string): Topology {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const at = (node: { range?: [number, number, number] | null | undefined } | null | undefined): { line: number; column: number } => {
    const offset = node?.range?.[0] ?? 0;
    const pos = lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const fail = (node: { range?: [number, number, number] | null | undefined } | null | undefined, problem: string, fix: string): never => {
    const { line, column } = at(node);
    throw new TopologyError(file, line, column, problem, fix);
  };
  for (const error of doc.errors) {
    const pos = lines.linePos(error.pos[0]);
    if (error.code === 'DUPLICATE_KEY') {
      throw new TopologyError(file, pos.line, pos.col, 'a key appears twice in one map (two servers with one name?)', 'give each server, and each setting, one entry');
    }
    throw new TopologyError(file, pos.line, pos.col, `not valid YAML: ${error.message.split(' at line')[0]}`, 'correct the YAML syntax there');
  }
  const root = doc.contents;
  if (!isMap(root)) return fail(root, 'the file is not a map of keys', 'start with "servers:" (and optionally placement, settings, archive)');
  const top = entries(root, TOP_KEYS, 'at the top level', fail);

  const placement = top.get('placement') === undefined ? 'thread' : placementOf(top.get('placement')!, fail);
  const sizeNode = top.get('wal_segment_size');
  let walSegmentSize: number | null = null;
  if (sizeNode !== undefined) {
    const text = scalarText(sizeNode, 'wal_segment_size', fail);
    const bytes = parseWithUnit(text, 'memory', 1, true);
    if (bytes === null || bytes < 1024 * 1024 || bytes > 1024 ** 3 || (bytes & (bytes - 1)) !== 0) {
      fail(sizeNode, `invalid wal_segment_size "${text}"`, 'use a power of two from 1MB to 1GB, such as 16MB');
    }
    walSegmentSize = bytes;
  }
  const settings = top.get('settings') === undefined ? {} : settingsOf(top.get('settings')!, fail);
  const archiveNode = top.get('archive');
  const archive = archiveNode === undefined ? null : scalarText(archiveNode, 'archive', fail);
  if (archive === '') fail(archiveNode, 'archive is empty', 'give a directory, e.g. "./archive"');

  const serversNode = top.get('servers');
  if (serversNode === undefined) return fail(root, 'no "servers:" map', 'list the servers under "servers:", one of them without an upstream (the primary)');
  if (!isMap(serversNode) || serversNode.items.length === 0) return fail(serversNode, '"servers" must be a map of server names', 'write "servers:" then one "name:" entry per server');
  const servers: TopologyServer[] = [];
  const nodes = new Map<string, YamlNode>();
  for (const pair of serversNode.items) {
    const name = scalarText(pair.key as YamlNode, 'a server name', fail);
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) fail(pair.key as YamlNode, `invalid server name "${name}"`, 'use lower case letters, digits and underscores, starting with a letter');
    const value = (pair.value ?? null) as YamlNode | null;
    const fields = value === null ? new Map<string, YamlNode>() : isMap(value) ? entries(value, SERVER_KEYS, `in server "${name}"`, fail) : fail(value, `server "${name}" must be a map`, 'write its options indented below it, or "{}" for none');
    const upstreamNode = fields.get('upstream');
    const slotNode = fields.get('slot');
    const slot = slotNode === undefined ? null : scalarText(slotNode, 'slot', fail);
    if (slot !== null) {
      const invalid = slotNameError(slot);
      if (invalid !== null) fail(slotNode, invalid.message, invalid.hint ?? 'use lower case letters, digits and underscores');
    }
    const streamingNode = fields.get('streaming');
    const streaming = streamingNode === undefined ? true : boolOf(streamingNode, 'streaming', fail);
    servers.push({
      name, upstream: upstreamNode === undefined ? null : scalarText(upstreamNode, 'upstream', fail),
      placement: fields.get('placement') === undefined ? placement : placementOf(fields.get('placement')!, fail),
      slot, settings: fields.get('settings') === undefined ? {} : settingsOf(fields.get('settings')!, fail), streaming,
    });
    nodes.set(name, upstreamNode ?? (pair.key as YamlNode));
    if (!streaming && archive === null) fail(streamingNode, `server "${name}" has streaming: false but the topology has no archive`, 'add "archive: ./archive" at the top level, or let it stream');
  }
  const primaries = servers.filter((s) => s.upstream === null);
  if (primaries.length !== 1) {
    return fail(serversNode, primaries.length === 0 ? 'no primary: every server has an upstream' : `more than one primary: ${primaries.map((p) => p.name).join(', ')} have no upstream`,
      'exactly one server has no "upstream:"; give each of the others the server it streams from');
  }
  const byName = new Map(servers.map((s) => [s.name, s]));
  for (const server of servers) {
    if (server.upstream !== null && !byName.has(server.upstream)) {
      fail(nodes.get(server.name), `server "${server.name}" streams from "${server.upstream}", which is not in this topology`, `use one of: ${servers.filter((s) => s !== server).map((s) => s.name).join(', ')}`);
    }
    if (server.slot !== null && server.upstream === null) fail(nodes.get(server.name), `the primary "${server.name}" has a slot`, 'a slot belongs to a standby: it is made on its upstream');
  }
  // What would only fail (or silently not stream) once started.
  const effective = (server: TopologyServer, name: string): string | undefined => server.settings[name] ?? settings[name];
  const slotsTaken = new Set<string>();
  for (const server of servers) {
    const node = nodes.get(server.name);
    for (const [name, fix] of [
      ['wal_segment_size', 'set it once, at the top level: wal_segment_size: 16MB'],
      ['primary_conninfo', 'say whom it streams from with "upstream:"'],
      ['primary_slot_name', 'give the standby "slot:" (the slot is then made on its upstream)'],
    ] as const) {
      if (server.settings[name] !== undefined || settings[name] !== undefined) fail(node, `${name} is set in "settings"`, fix);
    }
    if (server.slot !== null) {
      if (!server.streaming) fail(node, `server "${server.name}" has a slot but streaming: false`, 'a slot is for streaming; drop it (an unused slot keeps WAL on its upstream forever)');
      const key = `${server.upstream}/${server.slot}`;
      if (slotsTaken.has(key)) fail(node, `slot "${server.slot}" on "${server.upstream}" is used by two standbys`, 'give each standby a slot of its own');
      slotsTaken.add(key);
    }
    const downstream = servers.filter((s) => s.upstream === server.name);
    if (downstream.length > 0) {
      if (effective(server, 'max_wal_senders') === '0') fail(node, `server "${server.name}" has standbys but max_wal_senders = 0`, 'allow at least one walsender per standby');
      if (effective(server, 'max_replication_slots') === '0' && downstream.some((s) => s.slot !== null)) {
        fail(node, `a standby of "${server.name}" uses a slot but its max_replication_slots = 0`, 'allow at least one slot per slotted standby');
      }
      if (server.upstream !== null && ['off', 'false', '0'].includes(effective(server, 'hot_standby') ?? 'on')) {
        fail(node, `standby "${server.name}" has standbys of its own but hot_standby = off`, 'a cascading standby serves its standbys once it is open for reads: leave hot_standby on');
      }
    }
  }
  // Every chain of upstreams must end at the primary: anything else is a cycle.
  for (const server of servers) {
    const seen: string[] = [server.name];
    for (let up = server.upstream; up !== null; up = byName.get(up)!.upstream) {
      if (seen.includes(up)) {
        fail(nodes.get(server.name), `a cycle of upstreams: ${[...seen, up].join(' -> ')}`, 'every chain of upstreams must end at the primary');
      }
      seen.push(up);
    }
  }
  return { file, placement, walSegmentSize, settings, archive, servers: startOrder(servers) };
}

/** The primary, then standbys level by level (each after its upstream). */
function startOrder(servers: readonly TopologyServer[]): TopologyServer[] {
  const ordered = servers.filter((s) => s.upstream === null);
  while (ordered.length < servers.length) {
    for (const s of servers) if (!ordered.includes(s) && ordered.some((o) => o.name === s.upstream)) ordered.push(s);
  }
  return ordered;
}

type Fail = (node: { range?: [number, number, number] | null | undefined } | null | undefined, problem: string, fix: string) => never;

/** A map's entries by key, refusing keys not in `known` (with the likeliest one meant). */
function entries(map: YAMLMap, known: readonly string[], where: string, fail: Fail): Map<string, YamlNode> {
  const out = new Map<string, YamlNode>();
  for (const pair of map.items as Pair<YamlNode, YamlNode>[]) {
    const key = scalarText(pair.key, 'a key', fail);
    if (!known.includes(key)) {
      const near = closest(key, known);
      fail(pair.key, `unknown key "${key}" ${where}`, near !== null ? `did you mean "${near}"? (known: ${known.join(', ')})` : `use one of: ${known.join(', ')}`);
    }
    out.set(key, (pair.value ?? pair.key) as YamlNode);
  }
  return out;
}

function settingsOf(node: YamlNode, fail: Fail): Record<string, string> {
  if (!isMap(node)) return fail(node, '"settings" must be a map of PostgreSQL settings', 'write one "name: value" per line below it');
  const out: Record<string, string> = {};
  for (const pair of node.items as Pair<YamlNode, YamlNode>[]) {
    const name = scalarText(pair.key, 'a setting name', fail);
    const def = findSetting(name);
    if (def === undefined) fail(pair.key, `unrecognized configuration parameter "${name}"`, 'check the name against PostgreSQL\'s (SHOW ALL lists them)');
    const valueNode = pair.value as YamlNode | null;
    const value = valueNode === null ? '' : isScalar(valueNode) && typeof valueNode.value === 'boolean' ? (valueNode.value ? 'on' : 'off') : scalarText(valueNode, name, fail);
    try {
      checkValue(def!, value);
    } catch (err) {
      fail(valueNode ?? pair.key, (err as Error).message, 'give a value PostgreSQL accepts for it (units like 10ms or 16MB where it has one)');
    }
    out[def!.name] = value;
  }
  return out;
}

function placementOf(node: YamlNode, fail: Fail): ServerPlacement {
  const text = scalarText(node, 'placement', fail);
  if (!(PLACEMENTS as readonly string[]).includes(text)) fail(node, `invalid placement "${text}"`, `use one of: ${PLACEMENTS.join(', ')}`);
  return text as ServerPlacement;
}

function boolOf(node: YamlNode, what: string, fail: Fail): boolean {
  if (isScalar(node) && typeof node.value === 'boolean') return node.value;
  return fail(node, `"${what}" must be true or false`, `write ${what}: true or ${what}: false`);
}

function scalarText(node: YamlNode | null | undefined, what: string, fail: Fail): string {
  if (node === null || node === undefined || !isScalar(node) || node.value === null || typeof node.value === 'object') {
    return fail(node, `${what} must be a single value`, 'write it as plain text after the colon');
  }
  return String(node.value);
}

/** The known word within two edits of `word`, if one is. */
function closest(word: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

