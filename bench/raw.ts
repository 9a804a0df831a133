/*
 * raw.ts — the raw mechanisms benchmarks compare against, measured the same way each time.
 */
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const quantile = (values: readonly number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
};

/** `count` 8 KiB pwrite + fdatasync into a preallocated file in `dir`; latencies in µs. */
export function rawFdatasync(dir: string, count: number): number[] {
  const path = join(dir, 'raw.dat');
  const fd = openSync(path, 'w+');
  const block = new Uint8Array(8192).fill(1);
  const size = count * 8192;
  const zeros = new Uint8Array(1024 * 1024);
  for (let at = 0; at < size; at += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, size - at), at);
  fdatasyncSync(fd);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    writeSync(fd, block, 0, block.length, i * 8192);
    fdatasyncSync(fd);
    times.push((performance.now() - t0) * 1000);
  }
  closeSync(fd);
  rmSync(path);
  return times;
}
