/*
 * framing.ts — splitting a byte stream into length-prefixed frames.
 *
 * Each frame is a 4-byte big-endian body length followed by the msgpackr body. Chunks are
 * kept as they arrive and joined only once a whole frame is present, so a large frame that
 * trickles in costs one copy, not one per chunk. A length of zero or over MAX_FRAME_BYTES is
 * refused before any of the body is buffered.
 */
import { MAX_FRAME_BYTES, TCP_FRAME_HEADER_BYTES } from '../../constants.js';
import { FrameError, type FrameCodec, type Frame } from '../codec.js';

export class FrameDecoder {
  constructor(private readonly codec: FrameCodec) {}

  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected = -1;

  /** Bytes of a frame begun but not finished (for "closed mid-frame" reports). */
  get partial(): { have: number; need: number } | null {
    if (this.buffered === 0) return null;
    return { have: this.buffered, need: this.expected < 0 ? TCP_FRAME_HEADER_BYTES : TCP_FRAME_HEADER_BYTES + this.expected };
  }

  /** Adds a chunk and returns the frames it completed; throws FrameError on a bad frame. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < TCP_FRAME_HEADER_BYTES) return frames;
        const length = this.peekHeader();
        if (length === 0) throw new FrameError('frame with an empty body');
        if (length > MAX_FRAME_BYTES) throw new FrameError(`frame length ${length} exceeds the limit of ${MAX_FRAME_BYTES} bytes`);
        this.expected = length;
      }
      if (this.buffered < TCP_FRAME_HEADER_BYTES + this.expected) return frames;
      const whole = this.take(TCP_FRAME_HEADER_BYTES + this.expected);
      this.expected = -1;
      frames.push(this.codec.decode(whole.subarray(TCP_FRAME_HEADER_BYTES)));
    }
  }

  private peekHeader(): number {
    const first = this.chunks[0]!;
    if (first.length >= TCP_FRAME_HEADER_BYTES) return first.readUInt32BE(0);
    const joined = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [joined];
    return joined.readUInt32BE(0);
  }

  private take(bytes: number): Buffer {
    const joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const rest = joined.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return joined.subarray(0, bytes);
  }
}
