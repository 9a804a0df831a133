/*
 * units.ts — numbers with units, as postgresql.conf and SET accept them and SHOW prints them.
 *
 * Memory units are B, kB, MB, GB, TB (powers of 1024); time units are us, ms, s, min, h, d.
 * Units are case-sensitive, as in PostgreSQL, and may follow the number after spaces. A value
 * without a unit is in the setting's base unit. A fractional value is rounded to the base
 * unit ("1.5s" for a millisecond setting is 1500). SHOW prints a value in the largest unit
 * that divides it exactly ("1min", "64MB"), as PostgreSQL does.
 */

export type UnitKind = 'memory' | 'time';

export const MEMORY_UNITS: readonly [string, number][] = [['TB', 1024 ** 4], ['GB', 1024 ** 3], ['MB', 1024 ** 2], ['kB', 1024], ['B', 1]];
export const TIME_UNITS: readonly [string, number][] = [['d', 86_400_000_000], ['h', 3_600_000_000], ['min', 60_000_000], ['s', 1_000_000], ['ms', 1000], ['us', 1]];

/** Units in microseconds (time) or bytes (memory), largest first. */
export function unitsOf(kind: UnitKind): readonly [string, number][] {
  return kind === 'memory' ? MEMORY_UNITS : TIME_UNITS;
}

export function unitHint(kind: UnitKind): string {
  return kind === 'memory'
    ? 'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".'
    : 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".';
}

/**
 * Parses `text` into a number of base units (`baseUnit` is the size of one base unit in
 * bytes or microseconds). Returns null when the text is not a number with a valid unit.
 */
export function parseWithUnit(text: string, kind: UnitKind | null, baseUnit: number, integer: boolean): number | null {
  const match = /^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?0x[0-9a-fA-F]+)\s*([A-Za-z]*)\s*$/.exec(text);
  if (match === null) return null;
  const number = match[1]!.toLowerCase().includes('0x') ? parseInt(match[1]!, 16) : Number(match[1]);
  if (!Number.isFinite(number)) return null;
  const unit = match[2]!;
  let value = number;
  if (unit !== '') {
    if (kind === null) return null;
    const factor = unitsOf(kind).find(([name]) => name === unit)?.[1];
    if (factor === undefined) return null;
    value = (number * factor) / baseUnit;
  }
  return integer ? Math.round(value) : value;
}

/** `value` base units printed in the largest unit that divides it exactly. */
export function formatWithUnit(value: number, kind: UnitKind, baseUnit: number): string {
  if (value === 0) return '0';
  if (!Number.isInteger(value)) return `${value}${unitName(kind, baseUnit)}`;
  const raw = value * baseUnit;
  for (const [name, factor] of unitsOf(kind)) {
    if (factor >= baseUnit && raw % factor === 0) return `${raw / factor}${name}`;
  }
  return `${value}${unitName(kind, baseUnit)}`;
}

function unitName(kind: UnitKind, baseUnit: number): string {
  return unitsOf(kind).find(([, factor]) => factor === baseUnit)?.[0] ?? '';
}
