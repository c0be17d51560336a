/**
 * The sending strategies over a real LineQueue (and, for ids, a put-back
 * message): what next() yields for one line per message, --batch and --ack,
 * and that send()/putBack() keep every byte. A real built-in daemon takes
 * the --ack sends.
 */
import { describe, expect, it } from 'vitest';
import { LineQueue, QUEUE_BLOCK_BYTES } from '../src/queue.js';
import { ACK_BATCH_LINES, AckWindowSends, Batches, OnePerMessage, type Outgoing, ROTATE, maxBody, sendStrategy } from '../src/strategy.js';
import { Reliable } from '../src/reliable.js';
import { MAX_ID_JUMP } from '../src/ack.js';
import { type PreparedSend, SpreadClient, prepareSend } from '../src/spread/client.js';
import { MAX_GROUP_NAME, RELIABLE_MESS, SAFE_MESSAGE_BODY_LEN } from '../src/spread/constants.js';
import { defer, startDaemon, waitFor } from './helpers.js';

const a = prepareSend('logs', { service: RELIABLE_MESS });
const b = prepareSend('audit', { service: RELIABLE_MESS });
const line = (i: number): Buffer => Buffer.from(`web1 GET /${i} ${'z'.repeat(i % 40)}\n`);
const text = (m: Outgoing): string => m.buf.toString('latin1', m.start, m.end);

function queue(): LineQueue<PreparedSend> {
  return new LineQueue<PreparedSend>(1e6, 1 << 30, 'drop-newest');
}

/** Everything next() yields until it yields nothing, as [text, lines, route]. */
function all(s: { next(): Outgoing | typeof ROTATE | undefined }): [string, number, PreparedSend][] {
  const out: [string, number, PreparedSend][] = [];
  for (let m = s.next(); m !== undefined && m !== ROTATE; m = s.next()) out.push([text(m), m.lines, m.route]);
  return out;
}

async function client(spec: string, name?: string): Promise<SpreadClient> {
  const c = await SpreadClient.connect({ daemon: spec, name, membership: false });
  c.on('close', () => {});
  defer(() => c.destroy());
  return c;
}

describe('send strategies', () => {
  it('#12: picked from the options: one per message by default, batches with batchBytes, the ack window with reliable', () => {
    const q = queue();
    expect(sendStrategy(q, {})).toBeInstanceOf(OnePerMessage);
    expect(sendStrategy(q, { batchBytes: 8192 })).toBeInstanceOf(Batches);
    expect(sendStrategy(q, { reliable: new Reliable(), batchBytes: 8192 })).toBeInstanceOf(AckWindowSends);
    expect(sendStrategy(q, { reliable: new Reliable() })).toBeInstanceOf(AckWindowSends);
  });

  it('#12: one per message hands out each line where it lies in a queue block (no view per line), notices alone', () => {
    const q = queue();
    const want: [string, number, PreparedSend][] = [];
    for (let i = 0; i < 3000; i++) {
      q.pushLine(Buffer.from('web1 '), Buffer.from(`GET /${i}`), i % 2 ? a : b);
      want.push([`web1 GET /${i}\n`, 1, i % 2 ? a : b]);
      if (i === 10) {
        q.push(Buffer.from('web1 notice\n'), a, 0);
        want.push(['web1 notice\n', 0, a]);
      }
    }
    const s = new OnePerMessage(q);
    const m = s.next()!;
    expect(m).not.toBe(ROTATE);
    expect((m as Outgoing).buf.length).toBe(QUEUE_BLOCK_BYTES);
    const got = [[text(m as Outgoing), (m as Outgoing).lines, (m as Outgoing).route], ...all(s)];
    expect(got).toEqual(want);
    expect(q.length).toBe(0);
  });

  it('#12: batches pack lines to one route up to batchBytes, the bytes unchanged; a notice packed in keeps its bytes', () => {
    const q = queue();
    const lines: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      lines.push(line(i));
      q.push(line(i), i < 1500 ? a : b);
      if (i === 700) {
        lines.push(Buffer.from('web1 notice\n'));
        q.push(Buffer.from('web1 notice\n'), a, 0);
      }
    }
    const got = all(new Batches(q, 1000));
    expect(got.every(([t]) => t.length <= 1000)).toBe(true);
    expect(got.length).toBeLessThan(200);
    expect(got.map(([t]) => t).join('')).toBe(Buffer.concat(lines).toString('latin1'));
    expect(got.reduce((n, [, l]) => n + l, 0)).toBe(2000);
    // Never two routes in one message.
    const firstB = got.findIndex(([, , r]) => r === b);
    expect(got.slice(firstB).every(([, , r]) => r === b)).toBe(true);
  });

  it('#12: maxBody leaves room for the group names within the safe message size (#16: --ack adds none)', () => {
    const wide = prepareSend(Array.from({ length: 99 }, (_, i) => `g${i}`));
    expect(maxBody(a, 8192)).toBe(8192);
    expect(maxBody(wide, 1 << 20)).toBe(SAFE_MESSAGE_BODY_LEN - 99 * MAX_GROUP_NAME);
  });

  it('#12: putBack() puts a message in front again, whole, and it comes out first', () => {
    const q = queue();
    for (let i = 0; i < 5; i++) q.push(line(i), a);
    const s = new Batches(q, 1 << 20);
    const m = s.next() as Outgoing;
    expect(m.lines).toBe(5);
    s.putBack(m);
    expect([q.lines, q.length]).toEqual([5, 1]);
    expect(all(s)).toEqual([[Buffer.concat([0, 1, 2, 3, 4].map(line)).toString('latin1'), 5, a]]);
  });

  it('#12: the ack window yields while it has room, then nothing until acks come; batches stay within room and ACK_BATCH_LINES; a notice goes alone', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable({ window: 2 * ACK_BATCH_LINES + 10 });
    const c = await client(spec, r.name);
    r.attach(c);
    const q = queue();
    for (let i = 0; i < 3 * ACK_BATCH_LINES; i++) {
      q.push(Buffer.from('x\n'), a);
      if (i === 5) q.push(Buffer.from('notice\n'), a, 0);
    }
    const s = new AckWindowSends(q, r, 1 << 20);
    const sent: number[] = [];
    for (let m = s.next(); m !== undefined; m = s.next()) {
      expect(m).not.toBe(ROTATE);
      sent.push((m as Outgoing).lines);
      s.send(c, m as Outgoing);
    }
    // Lines 0-5, the notice alone (0 lines, one id), then batches capped by ACK_BATCH_LINES, then by the room left:
    // the window's 2 * ACK_BATCH_LINES + 10 ids less 6 + 1 + 2 * ACK_BATCH_LINES.
    expect(sent).toEqual([6, 0, ACK_BATCH_LINES, ACK_BATCH_LINES, 3]);
    expect(r.window.lines).toBe(2 * ACK_BATCH_LINES + 10);
    await waitFor(() => r.window.size === 0);
    let rest = 0;
    for (let m = s.next(); m !== undefined; m = s.next()) {
      rest += (m as Outgoing).lines;
      s.send(c, m as Outgoing);
    }
    expect(rest + sent.reduce((x, y) => x + y, 0)).toBe(3 * ACK_BATCH_LINES);
    await waitFor(() => r.window.size === 0);
    expect(r.counters.acked).toBe(3 * ACK_BATCH_LINES + 1);
  });

  it('#12: the ack window asks for a new stream when the next id jumped too far and nothing is in flight', async () => {
    const { spec } = await startDaemon();
    const r = new Reliable();
    const c = await client(spec, r.name);
    r.attach(c);
    const q = queue();
    q.push(line(0), a);
    const s = new AckWindowSends(q, r, undefined);
    s.send(c, s.next() as Outgoing);
    // A spooled line whose id is far past the last one sent (lines between were dropped unsent).
    q.unshift({ body: line(1), route: a, lines: 1, size: line(1).length, id: 1 + MAX_ID_JUMP });
    expect(s.next()).toBeUndefined(); // in flight: wait for the ack first
    expect(q.length).toBe(1);
    await waitFor(() => r.window.size === 0);
    expect(s.next()).toBe(ROTATE);
    r.rotate();
    const m = s.next() as Outgoing;
    expect([m.id, m.lines, text(m)]).toEqual([1 + MAX_ID_JUMP, 1, line(1).toString()]);
  });
});
