/*
 * assert.ts — invariants are asserted, not hoped for.
 *
 * An assertion guards state this code owns; its failure is a bug. It throws, the actor that
 * hit it crashes, and its supervisor decides what happens next. Input from outside (network,
 * disk, configuration, users) is validated with clear errors instead, never asserted.
 */

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertNever(value: never, what: string): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
