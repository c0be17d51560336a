import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../src/reader.js';

function split(chunks: Buffer[], maxLine = 100): { lines: string[]; truncated: boolean[] } {
  const lines: string[] = [];
  const truncated: boolean[] = [];
  const s = new LineSplitter((l, t) => {
    lines.push(Buffer.from(l.buffer, l.byteOffset, l.length).toString('latin1'));
    truncated.push(t);
  }, maxLine);
  for (const c of chunks) s.write(c);
  s.end();
  return { lines, truncated };
}

const bytewise = (b: Buffer): Buffer[] => [...b].map((x) => Buffer.from([x]));

describe('LineSplitter', () => {
  it('#16: hands out a line as a plain Uint8Array view of the chunk, not a Buffer (no subclass constructor per line)', () => {
    const got: Uint8Array[] = [];
    const chunk = Buffer.from('one\ntwo\n');
    new LineSplitter((l) => got.push(l)).write(chunk);
    expect(got.map((l) => Object.getPrototypeOf(l) === Uint8Array.prototype)).toEqual([true, true]);
    expect(got.map((l) => [l.buffer === chunk.buffer, l.byteOffset - chunk.byteOffset, l.length])).toEqual([
      [true, 0, 3],
      [true, 4, 3],
    ]);
  });

  const input = Buffer.concat([
    Buffer.from('plain\n'),
    Buffer.from([0x61, 0x00, 0x62, 0xff, 0xfe, 0xc3, 0x28, 0x0a]), // NUL and invalid UTF-8
    Buffer.from('crlf\r\n'),
    Buffer.from('\n'), // an empty line is a line
    Buffer.from('inner\rcr\n'),
    Buffer.from('last without newline'),
  ]);
  const want = ['plain', 'a\u0000b\u00ff\u00fe\u00c3(', 'crlf', '', 'inner\rcr', 'last without newline'];

  it('keeps bytes exact, strips LF and CRLF, keeps an unterminated last line', () => {
    expect(split([input]).lines).toEqual(want);
  });

  it('gives the same lines fed byte by byte and in random chunks', () => {
    expect(split(bytewise(input)).lines).toEqual(want);
    for (let seed = 1; seed < 50; seed++) {
      const chunks: Buffer[] = [];
      let i = 0;
      let r = seed;
      while (i < input.length) {
        r = (r * 1103515245 + 12345) & 0x7fffffff;
        const n = 1 + (r % 9);
        chunks.push(input.subarray(i, i + n));
        i += n;
      }
      expect(split(chunks).lines).toEqual(want);
    }
  });

  it('truncates over-long lines at the limit, counts them, and resumes at the next line', () => {
    const long = 'x'.repeat(250);
    const data = Buffer.from(`short\n${long}\nafter\n${long}`);
    for (const chunks of [[data], bytewise(data)]) {
      const r = split(chunks, 100);
      expect(r.lines).toEqual(['short', 'x'.repeat(100), 'after', 'x'.repeat(100)]);
      expect(r.truncated).toEqual([false, true, false, true]);
    }
  });

  it('holds at most maxLine bytes of an unfinished line', () => {
    const s = new LineSplitter(() => {}, 1000);
    for (let i = 0; i < 10_000; i++) s.write(Buffer.alloc(100, 0x61));
    expect(s.truncated).toBe(1);
    expect((s as unknown as { carry: Buffer | null }).carry).toBeNull();
  });
});
