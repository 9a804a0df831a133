/*
 * Roles in storage: the Authid records' redo, versions seen through snapshots, and the
 * checkpoint image (an image from before roles were catalogued still has postgres).
 */
import { expect } from 'chai';
import { BOOTSTRAP_SUPERUSER, Catalog, type RoleDef } from '../../src/storage/catalog.js';
import { InvalidXid } from '../../src/storage/clog.js';
import * as rec from '../../src/storage/records.js';
import { describeRecord, redo } from '../../src/storage/redo.js';
import { NO_OWN_TRANSACTION, takeSnapshot } from '../../src/storage/snapshot.js';
import { DatabaseState } from '../../src/storage/state.js';
import type { WalRecordInput } from '../../src/wal/record.js';

const now = (state: DatabaseState) => takeSnapshot([], state.clog.nextXid);
const visibleRole = (state: DatabaseState, name: string) => state.catalog.role(name, now(state), NO_OWN_TRANSACTION, state.clog);

/** CREATE ROLE app, ALTER it to LOGIN with a verifier, in two committed transactions; DROP in a third that aborts. */
function roleHistory(state: DatabaseState): WalRecordInput[] {
  const wal: WalRecordInput[] = [];
  const log = (record: WalRecordInput): void => {
    redo(state, record);
    wal.push(record);
  };
  const created = state.clog.assign();
  const def: RoleDef = { oid: state.assignOid(), name: 'app', superuser: false, login: false, replication: false, verifier: null, xmin: created, cmin: 0, xmax: InvalidXid, cmax: 0 };
  log(rec.createRole(created, { def }));
  log(rec.commit(created, { subxids: [], time: 0 }));
  const altered = state.clog.assign();
  log(rec.alterRole(altered, { oid: def.oid, cid: 0, def: { ...def, login: true, verifier: 'SCRAM-SHA-256$4096:c2FsdA==$a:b', xmin: altered } }));
  log(rec.commit(altered, { subxids: [], time: 0 }));
  const dropped = state.clog.assign();
  log(rec.dropRole(dropped, { oid: def.oid, cid: 0 }));
  log(rec.abort(dropped, { subxids: [], time: 0 }));
  return wal;
}

describe('roles in storage', () => {
  it('has the bootstrap superuser in a new cluster and in an image from before roles were kept', () => {
    const fresh = new DatabaseState();
    expect(visibleRole(fresh, 'postgres')).to.include({ oid: BOOTSTRAP_SUPERUSER, superuser: true, login: true, replication: true, verifier: null });
    const { roles: _roles, ...older } = fresh.catalog.image();
    expect(Catalog.fromImage(older).roles.map((r) => r.name)).to.deep.equal(['postgres']);
  });

  it('replays CREATE, ALTER and an aborted DROP to the same versions the primary has', () => {
    const primary = new DatabaseState();
    const wal = roleHistory(primary);
    expect(wal.map(describeRecord)).to.deep.equal([
      'Authid/CREATE', 'Transaction/COMMIT', 'Authid/ALTER', 'Transaction/COMMIT', 'Authid/DROP', 'Transaction/ABORT',
    ]);
    const replica = new DatabaseState();
    for (const record of wal) redo(replica, record);
    expect(replica.catalog.roles).to.deep.equal(primary.catalog.roles);
    expect(replica.nextOid).to.equal(primary.nextOid);
    const app = visibleRole(replica, 'app');
    expect(app).to.include({ login: true, verifier: 'SCRAM-SHA-256$4096:c2FsdA==$a:b' });
    expect(replica.catalog.roles.filter((r) => r.name === 'app'), 'the old version stays, deleted by the ALTER').to.have.length(2);
  });

  it('drops the version an aborted DROP left live, and the image carries roles through a restart', () => {
    const state = new DatabaseState();
    roleHistory(state);
    const oid = visibleRole(state, 'app')!.oid;
    const xid = state.clog.assign();
    redo(state, rec.dropRole(xid, { oid, cid: 0 }));
    redo(state, rec.commit(xid, { subxids: [], time: 0 }));
    expect(visibleRole(state, 'app')).to.equal(undefined);
    const restored = DatabaseState.fromImage(structuredClone(state.image()));
    expect(restored.catalog.roles).to.deep.equal(state.catalog.roles);
    expect(visibleRole(restored, 'app')).to.equal(undefined);
    expect(visibleRole(restored, 'postgres')?.superuser).to.equal(true);
  });
});
