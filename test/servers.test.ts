import { describe, expect, it } from 'vitest';
import { DaemonList } from '../src/servers.js';
import { parseDaemonAddress } from '../src/spread/address.js';

describe('DaemonList', () => {
  const list = () => new DaemonList(['4803@a', '4803@b', '4803@c'].map(parseDaemonAddress));

  it('tries daemons in order and says when a pass wrapped', () => {
    const l = list();
    expect(l.current.label).toBe('4803@a');
    expect(l.onSecondary).toBe(false);
    expect(l.next()).toMatchObject({ wrapped: false, daemon: { label: '4803@b' } });
    expect(l.onSecondary).toBe(true);
    expect(l.next().wrapped).toBe(false);
    expect(l.next()).toMatchObject({ wrapped: true, daemon: { label: '4803@a' } });
  });

  it('fails back to the first', () => {
    const l = list();
    l.next();
    l.reset();
    expect(l.current).toBe(l.primary);
  });

  it('needs at least one daemon', () => {
    expect(() => new DaemonList([])).toThrow(RangeError);
  });
});
