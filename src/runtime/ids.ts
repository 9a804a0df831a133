/*
 * ids.ts — identifiers from nanoid.
 *
 * Under the real scheduler ids come from nanoid's crypto source. Under simulation they come
 * from the run's seeded generator, so the same seed names everything the same way.
 */
import { customRandom, nanoid, urlAlphabet } from 'nanoid';
import type { RandomSource } from './prng.js';

export const ID_LENGTH = 12;

export type IdSource = () => string;

export function randomIds(): IdSource {
  return () => nanoid(ID_LENGTH);
}

export function seededIds(random: RandomSource): IdSource {
  return customRandom(urlAlphabet, ID_LENGTH, (size) => {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = Math.floor(random() * 256);
    return bytes;
  });
}
