/*
 * framing.ts — splitting a byte stream into length-prefixed frames.
 *
 * Each frame is a 4-byte big-endian body length followed by the msgpackr body. Chunks are
 * kept as they arrive and joined only once a whole frame is present, so a large frame that
 * trickles in costs one copy, not one per chunk. A length of zero or over the current limit
 * is refused before any of the body is buffered. Frames are handed over one by one as they
 * complete, so the valid frames ahead of a malformed one in the same chunk are delivered
 * and nothing after it is.
 */
import { MAX_FRAME_BYTES, TCP_FRAME_HEADER_BYTES } from '../../constants.js';
import { FrameError, type FrameCodec, type Frame } from '../codec.js';

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected = -1;

  /** The largest body accepted; a link lowers it until its peer has authenticated. */
  maxFrameBytes = MAX_FRAME_BYTES;

  constructor(private readonly codec: FrameCodec) {}

  /** Bytes of a frame begun but not finished (for "closed mid-frame" reports). */
  get partial(): { have: number; need: number } | null {
    if (this.buffered === 0) return null;
    return { have: this.buffered, need: this.expected < 0 ? TCP_FRAME_HEADER_BYTES : TCP_FRAME_HEADER_BYTES + this.expected };
  }

  /**
   * Adds a chunk and hands each frame it completes to `deliver`, in order; throws FrameError
   * at the first bad frame. `deliver` returns false to stop (its link has closed).
   */
  push(chunk: Buffer, deliver: (frame: Frame) => boolean): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < TCP_FRAME_HEADER_BYTES) return;
        const length = this.peekHeader();
        if (length === 0) throw new FrameError('frame with an empty body');
        if (length > this.maxFrameBytes) throw new FrameError(`frame length ${length} exceeds the limit of ${this.maxFrameBytes} bytes`);
        this.expected = length;
      }
      if (this.buffered < TCP_FRAME_HEADER_BYTES + this.expected) return;
      const whole = this.take(TCP_FRAME_HEADER_BYTES + this.expected);
      this.expected = -1;
      if (!deliver(this.codec.decode(whole.subarray(TCP_FRAME_HEADER_BYTES)))) return;
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
