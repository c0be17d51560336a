/** Small decoding helpers shared by tests. */
import type { PreparedSend } from '../../src/spread/client.js';

/** The destination names of a prepared send. */
export function decodeOne(p: PreparedSend): string[] {
  const out: string[] = [];
  for (let i = 0; i < p.numGroups; i++) {
    const f = p.groups.subarray(i * 32, i * 32 + 32);
    const end = f.indexOf(0);
    out.push(f.toString('latin1', 0, end < 0 ? 32 : end));
  }
  return out;
}

// ---- Frames against capture annotations ----------------------------------

import { expect } from 'vitest';
import { ENDIAN_MARKER } from '../../src/spread/constants.js';
import { type DecoderLimits, type Frame, CLIENT_LIMITS, MessageDecoder } from '../../src/spread/decoder.js';

/** All frames in `bytes`, decoded in one write. */
export function decodeAll(bytes: Buffer, limits: DecoderLimits = CLIENT_LIMITS): Frame[] {
  const out: Frame[] = [];
  new MessageDecoder((f) => out.push(f), limits).write(bytes);
  return out;
}

/** The capture analyser's `data_text`: printable ASCII, \xHH otherwise; `cut` bodies shown by their first 40 bytes. */
export function analyserText(data: Buffer, cut = false): string {
  let s = '';
  for (const b of cut ? data.subarray(0, 40) : data) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return cut ? `${s}...(${data.length} bytes total)` : s;
}

/** Assert a decoded frame says what the capture's `decoded` annotation says. */
export function expectFrameAsAnnotated(f: Frame, d: Record<string, any>, label: string): void {
  expect(
    {
      type: f.type,
      sender: f.sender,
      groups: f.groups,
      dataLen: f.data.length,
      messType: f.messType,
      bigEndianHeader: f.bigEndianHeader,
      endianMismatch: f.endianMismatch,
      oldType: f.oldType,
    },
    label,
  ).toEqual({
    type: Number(d.service),
    sender: d.sender,
    groups: d.groups,
    dataLen: d.data_len,
    messType: d.mess_type,
    bigEndianHeader: d.header_endian === 'big',
    endianMismatch: d.hint_endian === 'big',
    oldType: d.reject_old_type === undefined ? undefined : (Number(d.reject_old_type) & ~ENDIAN_MARKER) >>> 0,
  });
  expect(f.groups.length, label).toBe(d.num_groups);
  if (d.data_text !== undefined) expect(analyserText(f.data, /\.\.\.\(\d+ bytes total\)$/.test(d.data_text)), label).toBe(d.data_text);
}
