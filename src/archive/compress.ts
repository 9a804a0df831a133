/*
 * compress.ts — gzip for the built-in directory archive (basic_archive.compression = gzip),
 * as offload tasks: compressing a 16 MB segment takes tens of milliseconds, too long for an
 * actor's thread, so the archive jobs in store.ts hand it to the offload pool as a step.
 *
 * An archived `<name>.gz` is a plain gzip file, so a restore_command can be
 * `gunzip -c /archive/%f.gz > %p`. Level 1: on WAL it compresses nearly as well as the
 * default level 6 at several times the speed (bench/archive.ts measures both), and an
 * archiver that falls behind keeps segments in pg_wal.
 *
 * Compression is deterministic: the gzip header carries no time or name, so the same segment
 * compresses to the same bytes with the same zlib, which is what lets two servers sharing an
 * archive recognise the identical file. (Another zlib may choose other bytes for the same
 * segment; the archive job then compares the decompressed contents.)
 *
 * Neither task throws on bad input: a corrupt or oversized file is an answer the job turns
 * into an error naming the file, the same in the pool and in the simulator.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { defineTask } from '../runtime/offload.js';

/** zlib's level for archived segments. */
export const ARCHIVE_GZIP_LEVEL = 1;

export const GZIP = defineTask(import.meta.url, 'gzip', (input: { readonly bytes: Uint8Array }): Uint8Array =>
  gzipSync(input.bytes, { level: ARCHIVE_GZIP_LEVEL }));

export type GunzipResult =
  | { readonly ok: true; readonly bytes: Uint8Array }
  /** `tooLarge`: it would decompress to more than `maxBytes`. */
  | { readonly ok: false; readonly tooLarge: boolean; readonly error: string };

export const GUNZIP = defineTask(import.meta.url, 'gunzip', (input: { readonly bytes: Uint8Array; readonly maxBytes: number }): GunzipResult => {
  try {
    return { ok: true, bytes: gunzipSync(input.bytes, { maxOutputLength: Math.max(1, input.maxBytes) }) };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') return { ok: false, tooLarge: true, error: `decompresses to more than ${input.maxBytes} bytes` };
    // zlib's own words: "incorrect header check", "unexpected end of file", "invalid distance too far back"...
    return { ok: false, tooLarge: false, error: (err as Error).message };
  }
});
