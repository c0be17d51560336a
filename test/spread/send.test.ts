import { describe, expect, it } from 'vitest';
import { AGREED_MESS, MAX_PRIVATE_NAME, RELIABLE_MESS, SAFE_MESS } from '../../src/spread/constants.js';
import { encodeMessage, nameField } from '../../src/spread/encode.js';
import { MessageEncoder, prepareSend } from '../../src/spread/send.js';
import { generatedName } from '../../src/spread/transport.js';
import { validatePrivateName } from '../../src/spread/address.js';

describe('MessageEncoder (#12: send preparation apart from the session)', () => {
  it('#12: writes the bytes encodeMessage writes, as destinations, service and type change', () => {
    const enc = new MessageEncoder(nameField('#me#host'));
    const routes = [
      { groups: ['logs'], opts: {} },
      { groups: ['logs'], opts: { messType: -7 } },
      { groups: ['a', 'bb', 'ccc'], opts: { service: SAFE_MESS } },
      { groups: ['a', 'bb', 'ccc'], opts: { service: RELIABLE_MESS, selfDiscard: true, messType: 32767 } },
      { groups: ['logs'], opts: {} },
    ];
    const buf = Buffer.alloc(4096, 0xee);
    let off = 3;
    const want: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const r = routes[i % routes.length]!;
      const p = prepareSend(r.groups, r.opts);
      const src = Buffer.from(`xx line ${i} ${'z'.repeat(i * 7)} yy`);
      // A range of a bigger block, as the publisher's queue hands it out.
      const start = 3;
      const end = src.length - 3;
      off = enc.encode(buf, off, p, src, start, end - start);
      want.push(encodeMessage(p.type, '#me#host', r.groups, src.subarray(start, end), { hint: p.hint }));
      expect((r.opts as { service?: number }).service ?? AGREED_MESS).toBe(p.type & 0x3f);
    }
    const all = Buffer.concat(want);
    expect(buf.subarray(3, off).equals(all)).toBe(true);
    expect(buf[2]).toBe(0xee);
    expect(buf[off]).toBe(0xee);
  });

  it('#12: a whole source is written without a view; an empty message has only its header and groups', () => {
    const enc = new MessageEncoder(nameField('p'));
    const p = prepareSend('g');
    const data = Buffer.from('hello');
    const out = Buffer.alloc(200);
    const end = enc.encode(out, 0, p, data, 0, data.length);
    expect(out.subarray(0, end).equals(encodeMessage(AGREED_MESS, 'p', ['g'], data))).toBe(true);
    const e2 = enc.encode(out, 0, p, data, 2, 0);
    expect(out.subarray(0, e2).equals(encodeMessage(AGREED_MESS, 'p', ['g']))).toBe(true);
  });
});

describe('MessageEncoder sources (#16: the memory under the last block kept)', () => {
  it('#16: ranges of blocks that are views into one pool, taken in turn and refilled, are written as they are at the call', () => {
    const enc = new MessageEncoder(nameField('#me#host'));
    const p = prepareSend('logs');
    // Two blocks inside one ArrayBuffer at offsets other than 0, as Buffer's pool hands them out.
    const pool = Buffer.alloc(2048);
    const blocks = [pool.subarray(100, 700), pool.subarray(900, 1800)];
    const out = Buffer.alloc(16384);
    let off = 0;
    const want: Buffer[] = [];
    for (let i = 0; i < 24; i++) {
      const block = blocks[(i >> 1) % 2]!;
      // Every third message the block is filled again first: the bytes sent are the new ones.
      if (i % 3 === 0) block.fill(0x41 + (i % 26));
      const start = (i * 37) % 300;
      const len = 20 + ((i * 53) % 200);
      block.write(`#${i}#`, start, 'latin1');
      off = enc.encode(out, off, p, block, start, len);
      want.push(encodeMessage(p.type, '#me#host', ['logs'], Buffer.from(block.subarray(start, start + len)), { hint: p.hint }));
    }
    expect(out.subarray(0, off).equals(Buffer.concat(want))).toBe(true);
  });
});

describe('generatedName (#12: moved to transport.ts)', () => {
  it('#12: the first try is the pid, later ones a legal name with a suffix', () => {
    expect(generatedName(0)).toBe(`sp${process.pid}`.slice(0, MAX_PRIVATE_NAME));
    for (let i = 1; i < 50; i++) {
      const n = generatedName(i);
      expect(n.length).toBeLessThanOrEqual(MAX_PRIVATE_NAME);
      expect(n).toMatch(/^sp\d*-[0-9a-z]{1,3}$/);
      expect(() => validatePrivateName(n)).not.toThrow();
    }
  });
});
