/*
 * Replication slot names and wal_status / safe_wal_size, as pg_replication_slots shows them.
 */
import { expect } from 'chai';
import { slotNameError, walAvailability, type WalAvailabilityInput } from '../../src/replication/slots.js';

const SEG = 1024 * 1024;

describe('replication slots', () => {
  it('accept lower-case letters, digits and underscores only, as PostgreSQL does', () => {
    expect(slotNameError('standby_1')).to.equal(null);
    const upper = slotNameError('Standby');
    expect([upper?.code, upper?.message, upper?.hint]).to.deep.equal([
      '42602', 'replication slot name "Standby" contains invalid character',
      'Replication slot names may only contain lower case letters, numbers, and the underscore character.',
    ]);
    expect(slotNameError('')?.message).to.equal('replication slot name "" is too short');
    expect(slotNameError('s'.repeat(64))?.message).to.equal(`replication slot name "${'s'.repeat(64)}" is too long`);
  });

  const base: WalAvailabilityInput = {
    restartLsn: 10 * SEG, insertLsn: 12 * SEG + 100, oldestSegmentOnDisk: 1, segmentSize: SEG,
    maxWalSizeMb: 4, walKeepSizeMb: 0, maxSlotWalKeepSizeMb: -1,
  };

  it('reports reserved, then extended as the slot falls behind max_wal_size', () => {
    expect(walAvailability(base)).to.deep.equal({ walStatus: 'reserved', safeWalSize: null });
    expect(walAvailability({ ...base, insertLsn: 30 * SEG }).walStatus).to.equal('extended');
  });

  it('reports unreserved past max_slot_wal_keep_size, and lost once the WAL is gone', () => {
    const limited = { ...base, insertLsn: 30 * SEG, maxSlotWalKeepSizeMb: 8 };
    expect(walAvailability(limited).walStatus).to.equal('unreserved');
    expect(walAvailability({ ...limited, oldestSegmentOnDisk: 15 })).to.deep.equal({ walStatus: 'lost', safeWalSize: null });
    const safe = walAvailability({ ...base, maxSlotWalKeepSizeMb: 8 });
    expect(safe.walStatus).to.equal('reserved');
    expect(safe.safeWalSize).to.equal((10 + 8 + 1) * SEG - (12 * SEG + 100));
  });

  it('keeps wal_keep_size worth of segments even for a slot that is far behind', () => {
    const kept = walAvailability({ ...base, insertLsn: 30 * SEG, maxSlotWalKeepSizeMb: 4, walKeepSizeMb: 25 });
    expect(kept.walStatus).to.equal('extended');
  });
});
