/**
 * Reliable (--ack in the publisher) over a real built-in daemon: data go to
 * their groups only, and a marker to our private group, back from the
 * daemon, acknowledges everything sent before it (#16); the window bounds what is unacknowledged; a new session resends the window in
 * order; ids that jumped too far ask for a new stream; REJECT_NOT_UNIQUE in
 * a row takes a new name; a daemon that acknowledges nothing is declared
 * stalled.
 */
import { describe, expect, it } from 'vitest';
import { Reliable, type ReliableEvent } from '../src/reliable.js';
import { MAX_ID_JUMP, isStreamName, seqOf } from '../src/ack.js';
import { SpreadClient, prepareSend } from '../src/spread/client.js';
import { FIFO_MESS, RELIABLE_MESS, SAFE_MESS } from '../src/spread/constants.js';
import { ErrorCodes, SpreadPipeError, isSpreadPipeError } from '../src/errors.js';
import { groupsField, encodeHint } from '../src/spread/encode.js';
import { connectClient, defer, startDaemon, startDaemonProcess, waitFor } from './helpers.js';

const route = prepareSend('logs', { service: RELIABLE_MESS });
const line = (i: number): Buffer => Buffer.from(`web1 line ${i}\n`);

async function session(spec: string, r: Reliable): Promise<SpreadClient> {
  const c = await SpreadClient.connect({ daemon: spec, name: r.name, membership: false });
  c.on('close', () => {});
  defer(() => c.destroy());
  return c;
}

/** Send `body` (its LFs are its lines) with the next ids. */
function put(r: Reliable, c: SpreadClient, body: Buffer, to = route): boolean {
  const lines = body.toString().split('\n').length - 1;
  return r.send(c, to, body, 0, body.length, r.nextId(lines), lines);
}

function events(r: Reliable): ReliableEvent[] {
  const out: ReliableEvent[] = [];
  r.on('event', (e: ReliableEvent) => out.push(e));
  return out;
}

describe('Reliable', () => {
  it('#16: data go to the groups only; one marker to our private group acknowledges them, and the window empties', async () => {
    const { spec } = await startDaemon();
    const sub = await connectClient(spec);
    sub.c.join('logs');
    await waitFor(() => sub.events.some((e) => e.kind === 'membership'));
    const r = new Reliable({ window: 100 });
    expect(isStreamName(r.name)).toBe(true);
    const ev = events(r);
    const c = await session(spec, r);
    expect(r.attach(c)).toBe(true);
    put(r, c, line(0));
    put(r, c, Buffer.concat([line(1), line(2)]));
    expect([r.window.size, r.window.lines, r.peekId()]).toEqual([2, 3, 3]);
    await waitFor(() => r.window.size === 0);
    expect(r.counters.acked).toBe(3);
    // Both messages went within the marker interval: one marker acknowledged both.
    expect(r.counters.markers).toBe(1);
    expect(ev.filter((e) => e.type === 'acked')).toEqual([{ type: 'acked', below: 3, lines: 3 }]);
    expect(r.counters.stray).toBe(0);
    // The subscriber sees the lines, the message type carrying the first line's id.
    await waitFor(() => sub.events.filter((e) => e.kind === 'data').length === 2);
    const data = sub.events.filter((e) => e.kind === 'data');
    expect(data.map((e) => e.kind === 'data' && [seqOf(e.frame.messType), e.frame.data.toString()])).toEqual([
      [0, line(0).toString()],
      [1, line(1).toString() + line(2).toString()],
    ]);
    // ... and no marker.
    await new Promise((res) => setTimeout(res, 100));
    expect(sub.events.filter((e) => e.kind === 'data')).toHaveLength(2);
  });

  it('#16: a marker goes after markerLines lines, or markerMs after the first line it covers, whichever first', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable({ markerLines: 10, markerMs: 300 });
    const c = await session(spec, r);
    r.attach(c);
    for (let i = 0; i < 25; i++) put(r, c, line(i));
    expect(r.counters.markers).toBe(2);
    await waitFor(() => r.counters.acked === 20);
    expect(r.window.lines).toBe(5);
    const t0 = Date.now();
    await waitFor(() => r.window.size === 0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(r.counters.markers).toBe(3);
    // flush() (the publisher draining) sends one at once.
    put(r, c, line(25));
    r.flush();
    expect(r.counters.markers).toBe(4);
    await waitFor(() => r.window.size === 0, 200);
    r.flush(); // nothing unmarked: no marker
    expect(r.counters.markers).toBe(4);
  });

  it('#16: a marker due by time while one is on its way back goes when that one is back (one per round trip)', async () => {
    const d = await startDaemonProcess();
    const r = new Reliable({ markerLines: 10, markerMs: 30 });
    const c = await session(d.spec, r);
    r.attach(c);
    await waitFor(() => c.connected);
    for (let i = 0; i < 10; i++) put(r, c, line(i));
    expect(r.counters.markers).toBe(1);
    // The daemon is slow to answer (a deep queue): the first marker is not back yet.
    d.proc.kill('SIGSTOP');
    defer(() => void d.proc.kill('SIGCONT'));
    for (let i = 10; i < 13; i++) put(r, c, line(i));
    await new Promise((res) => setTimeout(res, 200));
    // Due for 170 ms: sending it now would put a second marker behind the first for nothing.
    expect(r.counters.markers).toBe(1);
    d.proc.kill('SIGCONT');
    // The first is back: the second goes at once, and acknowledges the rest.
    await waitFor(() => r.counters.markers === 2, 2000);
    await waitFor(() => r.window.size === 0, 2000);
    expect(r.counters.acked).toBe(13);
  });

  it('#16: the marker is FIFO (the weakest service that orders one sender\'s messages), SAFE after SAFE data; it goes to our private group alone', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable({ markerLines: 1 });
    const c = await session(spec, r);
    r.attach(c);
    const sent: { type: number; numGroups: number; groups: string }[] = [];
    const orig = c.sendRange.bind(c);
    c.sendRange = (p, src, start, end, hint) => {
      sent.push({ type: p.type, numGroups: p.numGroups, groups: p.groups.toString('latin1').replace(/\0+/g, ' ').trim() });
      return orig(p, src, start, end, hint);
    };
    put(r, c, line(0));
    put(r, c, line(1), prepareSend(['logs', 'more'], { service: SAFE_MESS }));
    expect(sent).toEqual([
      { type: RELIABLE_MESS, numGroups: 1, groups: 'logs' },
      { type: FIFO_MESS, numGroups: 1, groups: c.privateGroup },
      { type: SAFE_MESS, numGroups: 2, groups: 'logs more' },
      { type: SAFE_MESS, numGroups: 1, groups: c.privateGroup },
    ]);
    await waitFor(() => r.window.size === 0);
  });

  it('#12: admit() waits while the window is full and says send once an ack frees it; room() is what a batch may carry', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable({ window: 4, markerLines: 100, markerMs: 60_000 });
    const c = await session(spec, r);
    r.attach(c);
    expect(r.room(0)).toBe(4);
    expect(r.admit(0, 3, 30)).toBe('send');
    put(r, c, Buffer.concat([line(0), line(1), line(2)]));
    expect(r.room(3)).toBe(1);
    const markers = r.counters.markers;
    expect(r.admit(3, 2, 20)).toBe('wait');
    // A full window sends its marker at once rather than after the interval.
    expect(r.counters.markers).toBe(markers + 1);
    await waitFor(() => r.window.size === 0);
    expect(r.admit(3, 2, 20)).toBe('send');
  });

  it('#12: a new session sends the unacknowledged window again, in order, and counts it as resent', async () => {
    const d = await startDaemonProcess();
    const r = new Reliable();
    const c1 = await session(d.spec, r);
    r.attach(c1);
    await waitFor(() => c1.connected);
    // The daemon stops: nothing is acknowledged.
    d.proc.kill('SIGSTOP');
    defer(() => void d.proc.kill('SIGCONT'));
    for (let i = 0; i < 5; i++) put(r, c1, line(i));
    expect(r.window.lines).toBe(5);
    c1.destroy();
    d.proc.kill('SIGCONT');
    const { spec } = await startDaemon();
    const sub = await connectClient(spec);
    sub.c.join('logs');
    await waitFor(() => sub.events.some((e) => e.kind === 'membership'));
    const c2 = await session(spec, r);
    r.attach(c2);
    expect(r.counters.resent).toBe(5);
    await waitFor(() => r.window.size === 0);
    const got = sub.events.filter((e) => e.kind === 'data').map((e) => e.kind === 'data' && e.frame.data.toString());
    expect(got).toEqual([0, 1, 2, 3, 4].map((i) => line(i).toString()));
  });

  it('#12: ids that jumped too far (lines dropped unsent) wait for the window to empty, then ask for a new stream', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable();
    const ev = events(r);
    const c = await session(spec, r);
    r.attach(c);
    r.send(c, route, line(0), 0, line(0).length, 0, 1);
    expect(r.admit(1 + MAX_ID_JUMP, 1, 10)).toBe('wait');
    await waitFor(() => r.window.size === 0);
    expect(r.admit(MAX_ID_JUMP, 1, 10)).toBe('send');
    expect(r.admit(1 + MAX_ID_JUMP, 1, 10)).toBe('rotate');
    const old = r.name;
    expect(r.rotate()).not.toBe(old);
    expect(ev.at(-1)).toEqual({ type: 'new-stream', name: r.name, abandoned: 0, why: 'ids-jumped' });
    expect(r.admit(1 + MAX_ID_JUMP, 1, 10)).toBe('send');
  });

  it('#16: after a crash (rotateFrom): lines before the id go under the old stream; from it on, once those are acknowledged, a new stream', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable({ name: '=oldstream' });
    const ev = events(r);
    const c = await session(spec, r);
    r.attach(c);
    r.rotateFrom(5);
    // The spool's lines from before (ids 0..4) go as they are; a batch of them stops before id 5.
    expect(r.room(0)).toBe(5);
    expect(r.room(3)).toBe(2);
    expect(r.admit(0, 5, 50)).toBe('send');
    r.send(c, route, Buffer.from('a\nb\nc\nd\ne\n'), 0, 10, 0, 5);
    // The first new line waits for them...
    expect(r.admit(5, 1, 10)).toBe('wait');
    await waitFor(() => r.window.size === 0);
    // ...then goes under a new name, and so do the lines after it.
    expect(r.admit(5, 1, 10)).toBe('rotate');
    expect(r.name).toBe('=oldstream');
    expect(r.rotate()).not.toBe('=oldstream');
    expect(ev.at(-1)).toEqual({ type: 'new-stream', name: r.name, abandoned: 0, why: 'after-crash' });
    expect(r.admit(5, 1, 10)).toBe('send');
    expect(r.admit(6, 1, 10)).toBe('send');
  });

  it('#12: three REJECT_NOT_UNIQUE in a row take a new name; another error in between starts the count again', () => {
    const r = new Reliable();
    const ev = events(r);
    const first = r.name;
    const refused = new SpreadPipeError(ErrorCodes.REJECT_NOT_UNIQUE, 'name in use');
    r.connectFailed(refused);
    r.connectFailed(refused);
    r.connectFailed(new SpreadPipeError(ErrorCodes.CONNECTION_CLOSED, 'gone'));
    r.connectFailed(refused);
    r.connectFailed(refused);
    expect(r.name).toBe(first);
    r.connectFailed(refused);
    expect(r.name).not.toBe(first);
    expect(ev).toEqual([{ type: 'new-stream', name: r.name, abandoned: 0, why: 'name-refused' }]);
  });

  it('#12: a daemon that acknowledges nothing for ackTimeout ms has the session closed as STALLED', async () => {
    const d = await startDaemonProcess();
    const r = new Reliable({ ackTimeout: 300 });
    const c = await session(d.spec, r);
    const closed = new Promise<Error | undefined>((resolve) => c.on('close', resolve));
    r.attach(c);
    d.proc.kill('SIGSTOP');
    defer(() => void d.proc.kill('SIGCONT'));
    const t0 = Date.now();
    put(r, c, line(0));
    const err = await closed;
    expect(isSpreadPipeError(err, ErrorCodes.STALLED)).toBe(true);
    expect(err!.message).toMatch(/acknowledged nothing for 300 ms \(1 lines waiting\)/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('#16: a route to 100 groups (Spread\'s limit) goes as it is: --ack adds no destination', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable();
    const c = await session(spec, r);
    r.attach(c);
    const names = Array.from({ length: 100 }, (_, i) => `g${i}`);
    const full = { type: RELIABLE_MESS, hint: encodeHint(0), groups: groupsField(names), numGroups: 100 };
    put(r, c, line(0), full);
    await waitFor(() => r.window.size === 0);
    expect(r.counters.acked).toBe(1);
  });

  it('#12: a message to our private group that is no marker is counted stray, not acked (#16)', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable();
    const c = await session(spec, r);
    r.attach(c);
    put(r, c, line(0));
    r.flush();
    await waitFor(() => r.window.size === 0);
    // Our private group gets a message that is no marker (a line).
    c.send(prepareSend(c.privateGroup, { service: RELIABLE_MESS, messType: 77 }), line(9));
    await waitFor(() => r.counters.stray === 1);
    expect(r.counters.acked).toBe(1);
  });
});
