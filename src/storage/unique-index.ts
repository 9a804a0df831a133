/*
 * unique-index.ts — a primary key index: key -> every tuple version carrying that key.
 *
 * It holds versions, not rows (as a PostgreSQL btree does): an updated row's old and new
 * versions both appear under the key until VACUUM removes the dead one. Whether a key is
 * taken is a visibility question the executor answers over these versions, including
 * waiting for an in-progress inserter; the index only finds them. Maintained by redo.
 */
import type { Ctid, Datum } from './heap.js';

export function indexKey(values: readonly Datum[], columns: readonly number[]): string {
  return JSON.stringify(columns.map((c) => {
    const v = values[c];
    return v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v;
  }));
}

export class UniqueIndex {
  private readonly entries = new Map<string, Ctid[]>();

  constructor(readonly columns: readonly number[]) {}

  lookup(key: string): readonly Ctid[] {
    return this.entries.get(key) ?? [];
  }

  add(key: string, ctid: Ctid): void {
    const list = this.entries.get(key);
    if (list === undefined) this.entries.set(key, [ctid]);
    else list.push(ctid);
  }

  remove(key: string, ctid: Ctid): void {
    const list = this.entries.get(key);
    if (list === undefined) return;
    const kept = list.filter((c) => c.block !== ctid.block || c.offset !== ctid.offset);
    if (kept.length === 0) this.entries.delete(key);
    else this.entries.set(key, kept);
  }
}
