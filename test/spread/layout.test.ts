import { describe, expect, it } from 'vitest';
import { ENDIAN_MARKER, HEADER_SIZE, JOIN_MESS, MAX_GROUP_NAME, REJECT_MESS, RELIABLE_MESS, SAFE_MESS } from '../../src/spread/constants.js';
import { encodeMessage, encodeRejectMess } from '../../src/spread/encode.js';
import {
  HDR_DATA_LEN,
  HDR_HINT,
  HDR_NUM_GROUPS,
  HDR_SENDER,
  HDR_TYPE,
  NameFieldCache,
  REJECT_EXTRA,
  REJECT_OLD_TYPE,
  groupsField,
  hintMessType,
  isLittleEndian,
  isLittleEndianHeader,
  nameField,
  nameFieldEquals,
  readHeader,
  readNameField,
  readNameFields,
  swap32,
  writeHintAndDataLen,
} from '../../src/spread/layout.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('wire layout (#12: one owner)', () => {
  it('#12: the named offsets are PROTOCOL.md 4.1', () => {
    expect([HDR_TYPE, HDR_SENDER, HDR_NUM_GROUPS, HDR_HINT, HDR_DATA_LEN, HEADER_SIZE]).toEqual([0, 4, 36, 40, 44, 48]);
    expect(HDR_SENDER + MAX_GROUP_NAME).toBe(HDR_NUM_GROUPS);
    expect([REJECT_OLD_TYPE, REJECT_EXTRA]).toEqual([48, 4]);
  });

  it('#12: isLittleEndian wants both marker bits', () => {
    expect(isLittleEndian(ENDIAN_MARKER)).toBe(true);
    expect(isLittleEndian((RELIABLE_MESS | ENDIAN_MARKER) >>> 0)).toBe(true);
    expect(isLittleEndian(RELIABLE_MESS)).toBe(false);
    expect(isLittleEndian(0x80000000)).toBe(false);
    expect(isLittleEndian(0x00000080)).toBe(false);
    expect(isLittleEndian(swap32((RELIABLE_MESS | ENDIAN_MARKER) >>> 0))).toBe(true); // the marker is symmetric
    expect(isLittleEndian(swap32(RELIABLE_MESS))).toBe(false);
  });

  it('#12: readHeader reads a little-endian header', () => {
    const data = Buffer.from('hello world');
    const b = encodeMessage(SAFE_MESS, 'sender', ['g1', 'g2', 'g3'], data, { messType: -2 });
    expect(isLittleEndianHeader(b, 0)).toBe(true);
    expect(readHeader(b, 0)).toEqual({ type: SAFE_MESS, littleEndian: true, numGroups: 3, dataLen: data.length, hint: (-2 << 8) & 0x00ffff00, hintLittleEndian: true });
    expect(hintMessType(readHeader(b, 0).hint)).toBe(-2);
    expect(readNameField(b, HDR_SENDER)).toBe('sender');
  });

  it('#12: readHeader reads a big-endian header, and at an offset', () => {
    const data = Buffer.alloc(300, 0x61);
    const frame = encodeMessage(RELIABLE_MESS, 'be', ['only'], data, { messType: 32767, bigEndian: true });
    const b = Buffer.concat([Buffer.alloc(7, 0xee), frame]);
    expect(isLittleEndianHeader(b, 7)).toBe(false);
    expect(readHeader(b, 7)).toEqual({ type: RELIABLE_MESS, littleEndian: false, numGroups: 1, dataLen: 300, hint: 32767 << 8, hintLittleEndian: false });
    expect(hintMessType(readHeader(b, 7).hint)).toBe(32767);
  });

  it('#12: readHeader keeps the header order and the hint order apart (a daemon forwards the hint unconverted)', () => {
    const b = encodeMessage(RELIABLE_MESS, 's', ['g'], Buffer.from('x'), { messType: 5 });
    // A big-endian client's hint in a little-endian header, as a daemon forwards it.
    b.writeUInt32BE(5 << 8, HDR_HINT);
    const h = readHeader(b, 0);
    expect([h.littleEndian, h.hintLittleEndian, hintMessType(h.hint)]).toEqual([true, false, 5]);
  });

  it('#12: readHeader on a REJECT_MESS; old_type sits at REJECT_OLD_TYPE', () => {
    const b = encodeRejectMess({ oldType: JOIN_MESS, sender: 'me', groups: ['g'], hint: ENDIAN_MARKER, data: Buffer.alloc(0) });
    const h = readHeader(b, 0);
    expect(h.type & REJECT_MESS).toBeTruthy();
    expect(h.numGroups).toBe(2);
    expect((b.readUInt32LE(REJECT_OLD_TYPE) & ~ENDIAN_MARKER) >>> 0).toBe(JOIN_MESS);
    expect(readNameFields(b, REJECT_OLD_TYPE + REJECT_EXTRA, 2)).toEqual(['g', 'me']);
  });

  it('#12: readNameField stops at the first NUL', () => {
    const f = nameField('grp');
    expect(f.length).toBe(MAX_GROUP_NAME);
    expect(readNameField(f, 0)).toBe('grp');
    expect(readNameField(Buffer.alloc(MAX_GROUP_NAME), 0)).toBe('');
    const odd = Buffer.alloc(MAX_GROUP_NAME);
    odd.write('ab\0cd', 0, 'latin1');
    expect(readNameField(odd, 0)).toBe('ab');
  });

  it('#12: an unterminated 32-byte name is read whole and never past its field', () => {
    const name32 = 'A'.repeat(MAX_GROUP_NAME);
    const b = Buffer.concat([latin1(name32), latin1('BEYOND\0')]);
    expect(readNameField(b, 0)).toBe(name32);
    expect(nameFieldEquals(b, 0, latin1(name32))).toBe(true);
    expect(nameFieldEquals(b, 0, latin1(name32 + 'B'))).toBe(false);
    expect(nameFieldEquals(b, 0, latin1('A'.repeat(31)))).toBe(false); // no NUL after 31 bytes
    // The encoder keeps at most 31 bytes, so its fields are always terminated.
    expect(readNameField(nameField(name32), 0)).toBe('A'.repeat(31));
    // A field at the very end of the buffer.
    const tail = Buffer.concat([Buffer.alloc(5), latin1(name32)]);
    expect(readNameField(tail, 5)).toBe(name32);
    expect(nameFieldEquals(tail, 5, latin1(name32))).toBe(true);
  });

  it('#12: nameFieldEquals compares up to the NUL, bytes not characters', () => {
    const f = Buffer.concat([nameField('#sp1#host'), nameField('logs')]);
    expect(nameFieldEquals(f, 0, latin1('#sp1#host'))).toBe(true);
    expect(nameFieldEquals(f, 0, latin1('#sp1#hos'))).toBe(false); // a prefix
    expect(nameFieldEquals(f, 0, latin1('#sp1#hostx'))).toBe(false);
    expect(nameFieldEquals(f, MAX_GROUP_NAME, latin1('logs'))).toBe(true);
    expect(nameFieldEquals(f, MAX_GROUP_NAME, latin1(''))).toBe(false);
    expect(nameFieldEquals(Buffer.alloc(MAX_GROUP_NAME), 0, latin1(''))).toBe(true);
    const hi = nameField('caf\u00e9');
    expect(readNameField(hi, 0)).toBe('caf\u00e9');
    expect(nameFieldEquals(hi, 0, latin1('caf\u00e9'))).toBe(true);
  });

  it('#14: NameFieldCache reads what readNameField reads, whatever the last name was (prefixes, 32-byte names, empty, bytes after the NUL)', () => {
    // X32: a 32-byte name with no NUL (the field's end ends it).
    const names = ['#pub#bench', '#pub#bench', '#pub#benc', '#pub#bench', '#pub#benchx', 'X32', 'X32', 'x'.repeat(31), 'X32', '', '', 'a', 'caf\u00e9'];
    const fields = names.map((n) => (n === 'X32' ? Buffer.alloc(MAX_GROUP_NAME, 0x78) : nameField(n)));
    // Junk after the NUL must not count: the field ends at its first NUL.
    const junk = Buffer.from(nameField('#pub#bench'));
    junk[12] = 0x41;
    fields.splice(2, 0, junk);
    const padded = Buffer.concat([Buffer.from([1, 2, 3]), ...fields]);
    const c = new NameFieldCache();
    for (let i = 0; i < fields.length; i++) {
      const at = 3 + i * MAX_GROUP_NAME;
      expect(c.read(padded, at), `field ${i}`).toBe(readNameField(padded, at));
    }
  });

  it('#12: readNameFields reads what groupsField writes', () => {
    const names = ['a', 'bb', 'x'.repeat(31), ''];
    expect(readNameFields(groupsField(names), 0, names.length)).toEqual(names);
    expect(readNameFields(groupsField([]), 0, 0)).toEqual([]);
  });
});

describe('writeHintAndDataLen (#12)', () => {
  it('#12: writes what writeMessage writes for hint and data_len', async () => {
    const { encodeHint, writeMessage } = await import('../../src/spread/encode.js');
    const data = Buffer.from('payload of some length');
    const hint = encodeHint(-300);
    const want = Buffer.alloc(HEADER_SIZE + MAX_GROUP_NAME + data.length);
    writeMessage(want, 0, RELIABLE_MESS, nameField('me'), groupsField(['g']), hint, data);
    const got = Buffer.from(want);
    got.fill(0xaa, HDR_HINT, HEADER_SIZE);
    writeHintAndDataLen(got, 0, hint, data.length);
    expect(got.equals(want)).toBe(true);
    const at = Buffer.alloc(100, 0x55);
    writeHintAndDataLen(at, 3, 0x80ff0180, 0x01020304);
    expect(at.readUInt32LE(3 + HDR_HINT)).toBe(0x80ff0180);
    expect(at.readInt32LE(3 + HDR_DATA_LEN)).toBe(0x01020304);
    expect(at[2]).toBe(0x55);
    expect(at[3 + HEADER_SIZE]).toBe(0x55);
  });
});
