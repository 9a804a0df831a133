/*
 * prng.ts — a small seeded pseudo-random generator (sfc32) for the simulator.
 *
 * The same seed yields the same sequence on every machine, which is what lets a failing
 * simulation seed replay exactly. The real scheduler draws from crypto instead.
 */

export type RandomSource = () => number;

/** A generator of floats in [0, 1) determined entirely by `seed`. */
export function seededRandom(seed: number): RandomSource {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ Math.imul(seed, 0x85ebca6b);
  let c = 0xb7e15162;
  let d = 1;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next(); // let the seed diffuse through the state
  return next;
}
