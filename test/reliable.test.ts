/**
 * Reliable (--ack in the publisher) over a real built-in daemon: every
 * message also goes to our private group and its copy is the ack; the
 * window bounds what is unacknowledged; a new session resends the window in
 * order; ids that jumped too far ask for a new stream; REJECT_NOT_UNIQUE in
 * a row takes a new name; a daemon that acknowledges nothing is declared
 * stalled.
 */
import { describe, expect, it } from 'vitest';
import { Reliable, type ReliableEvent } from '../src/reliable.js';
import { MAX_ID_JUMP, isStreamName, seqOf } from '../src/ack.js';
import { SpreadClient, prepareSend } from '../src/spread/client.js';
import { RELIABLE_MESS } from '../src/spread/constants.js';
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

function events(r: Reliable): ReliableEvent[] {
  const out: ReliableEvent[] = [];
  r.on('event', (e: ReliableEvent) => out.push(e));
  return out;
}

describe('Reliable', () => {
  it('#12: sends to the groups and to our private group; the copy back acknowledges, and the window empties', async () => {
    const { spec } = await startDaemon();
    const sub = await connectClient(spec);
    sub.c.join('logs');
    await waitFor(() => sub.events.some((e) => e.kind === 'membership'));
    const r = new Reliable({ window: 100 });
    expect(isStreamName(r.name)).toBe(true);
    const ev = events(r);
    const c = await session(spec, r);
    expect(r.attach(c)).toBe(true);
    r.send(c, route, line(0), r.nextId(1), 1);
    r.send(c, route, Buffer.concat([line(1), line(2)]), r.nextId(2), 2);
    expect([r.window.size, r.window.lines, r.peekId()]).toEqual([2, 3, 3]);
    await waitFor(() => r.window.size === 0);
    expect(r.counters.acked).toBe(3);
    expect(ev.filter((e) => e.type === 'acked').map((e) => e.type === 'acked' && e.below)).toEqual([1, 3]);
    // The subscriber sees the lines, the message type carrying the first line's id.
    await waitFor(() => sub.events.filter((e) => e.kind === 'data').length === 2);
    const data = sub.events.filter((e) => e.kind === 'data');
    expect(data.map((e) => e.kind === 'data' && [seqOf(e.frame.messType), e.frame.data.toString()])).toEqual([
      [0, line(0).toString()],
      [1, line(1).toString() + line(2).toString()],
    ]);
  });

  it('#12: admit() waits while the window is full and says send once an ack frees it; room() is what a batch may carry', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable({ window: 4 });
    const c = await session(spec, r);
    r.attach(c);
    expect(r.room(0)).toBe(4);
    expect(r.admit(0, 3, 30)).toBe('send');
    r.send(c, route, Buffer.concat([line(0), line(1), line(2)]), r.nextId(3), 3);
    expect(r.room(3)).toBe(1);
    expect(r.admit(3, 2, 20)).toBe('wait');
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
    for (let i = 0; i < 5; i++) r.send(c1, route, line(i), r.nextId(1), 1);
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
    r.send(c, route, line(0), 0, 1);
    expect(r.admit(1 + MAX_ID_JUMP, 1, 10)).toBe('wait');
    await waitFor(() => r.window.size === 0);
    expect(r.admit(MAX_ID_JUMP, 1, 10)).toBe('send');
    expect(r.admit(1 + MAX_ID_JUMP, 1, 10)).toBe('rotate');
    const old = r.name;
    expect(r.rotate()).not.toBe(old);
    expect(ev.at(-1)).toEqual({ type: 'new-stream', name: r.name, abandoned: 0 });
    expect(r.admit(1 + MAX_ID_JUMP, 1, 10)).toBe('send');
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
    expect(ev).toEqual([{ type: 'new-stream', name: r.name, abandoned: 0 }]);
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
    r.send(c, route, line(0), r.nextId(1), 1);
    const err = await closed;
    expect(isSpreadPipeError(err, ErrorCodes.STALLED)).toBe(true);
    expect(err!.message).toMatch(/acknowledged nothing for 300 ms \(1 lines waiting\)/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('#12: a route with no room for our private group is refused (INVALID_ARGUMENT), nothing sent or windowed', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable();
    const c = await session(spec, r);
    r.attach(c);
    const names = Array.from({ length: 100 }, (_, i) => `g${i}`);
    const full = { type: RELIABLE_MESS, hint: encodeHint(0), groups: groupsField(names), numGroups: 100 };
    expect(() => r.send(c, full, line(0), 0, 1)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect([r.window.size, c.messagesSent]).toEqual([0, 0]);
  });

  it('#12: a copy that matches nothing in flight is counted stray, not acked', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable();
    const c = await session(spec, r);
    r.attach(c);
    // Our private group gets a message whose type no message in flight carries.
    c.send(prepareSend(c.privateGroup, { service: RELIABLE_MESS, messType: 77 }), line(9));
    await waitFor(() => r.counters.stray === 1);
    expect(r.counters.acked).toBe(0);
  });
});
