/*
 * index.ts — walship's public API, and nothing else.
 */
export { Cluster, Server, Session, type ClusterOptions, type InitOptions, type ClusterEvent, type RewindReport, type ServerPlacement, type StandbyOptions } from './cluster/cluster.js';
export type { DiscardedTransaction } from './cluster/rewind.js';
export { PgError, type PgErrorFields, type Severity } from './errors.js';
export type { QueryResult, ResultColumn } from './sql/result.js';
