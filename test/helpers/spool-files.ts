/** Spool segment files rewritten in another format, as another version would have written them (#16). */
import { FRAME_HEADER, type FrameCheck, sealFrame } from '../../src/record-frame.js';
import { SEG_HEADER } from '../../src/spool/format.js';

/** A copy of segment file bytes `seg` with `magic` in its header and every frame sealed again with `check`. */
export function reframed(seg: Buffer, magic: Buffer, check: FrameCheck): Buffer {
  const b = Buffer.from(seg);
  magic.copy(b);
  for (let off = SEG_HEADER; off < b.length; ) {
    const len = b.readUInt32LE(off);
    sealFrame(b, off, len, check);
    off += FRAME_HEADER + len;
  }
  return b;
}
