/**
 * Pipe mode's --ack, --spool, --spool-max and --gap-notice: the options, the
 * spool opening (which may have to wait for a previous spread-pipe to let
 * go of it: Apache starts the new piped logger while the old one drains),
 * the lines read meanwhile, and the gap notices.
 */
import { log, UsageError } from './common.js';
import { type Given, type OptTable } from './args.js';
import { type Publisher, type PublisherEvent } from '../publisher.js';
import { DEFAULT_SPOOL_MAX, MIN_SPOOL_MAX, Spool } from '../spool.js';
import { GapTally } from '../gap.js';
import { type PreparedSend } from '../spread/client.js';
import { ErrorCodes, SpreadPipeError, errorMessage, isSpreadPipeError } from '../errors.js';
import fs from 'node:fs';
import type { Handed, TargetUser } from './user.js';

/** How often a pending gap notice is tried while the queue is busy. @default 1000 */
export const GAP_NOTICE_INTERVAL = 1000;
/** Extra time to wait for a spool lock beyond the drain timeout of the previous process. @default 3000 */
export const SPOOL_LOCK_GRACE = 3000;

export const RELIABLE_OPTIONS = {
  ack: { type: 'boolean', default: false, describe: 'keep every line until the daemon confirms it (a marker back every 1024 lines or 10 ms), resend it after a failover; receivers (write, tail, --write, top) drop repeats' },
  spool: { type: 'string', describe: 'directory for an on-disk spool: lines outlive daemon outages and restarts or crashes of spread-pipe (it must be writable: exit 1 if not)' },
  'spool-max': { type: 'string', default: DEFAULT_SPOOL_MAX, field: 'maxBytes', describe: 'bytes the spool may hold; past it the oldest lines are dropped (counted)' },
  'gap-notice': { type: 'boolean', default: false, describe: 'after lines were lost, send one line saying how many, why and when' },
} as const satisfies OptTable;

export interface ReliableConfig {
  ack: boolean;
  spool?: string;
  spoolMax: number;
  gapNotice: boolean;
}

export function parseReliableArgs(g: Given): ReliableConfig {
  const spoolMax = g.size('spool-max') ?? DEFAULT_SPOOL_MAX;
  if (spoolMax < MIN_SPOOL_MAX) throw new UsageError(`${g.label('spool-max')}: must be at least 256K (four of the smallest segments), got ${g.str('spool-max')}`);
  if (g.has('spool-max') && !g.has('spool')) throw new UsageError('--spool-max needs --spool');
  return { ack: g.bool('ack'), spool: g.str('spool'), spoolMax, gapNotice: g.bool('gap-notice') };
}

/**
 * Open the spool once, before stdin is read: the spool, or 'locked' when a
 * live spread-pipe holds it (Apache starts the new piped logger while the
 * old one drains: wait for it with waitForSpool). Any other trouble (not
 * writable, a file in the way) throws: `--spool` promises that nothing is
 * lost, so it never turns itself off.
 */
export function openSpool(dir: string, maxBytes: number, user?: TargetUser): Spool | 'locked' {
  try {
    return opened(Spool.open(dir, { maxBytes }), dir, false);
  } catch (e) {
    if (isSpreadPipeError(e, ErrorCodes.SPOOL_LOCKED)) {
      log(`${errorMessage(e)}; waiting for it (reading stdin meanwhile)`);
      return 'locked';
    }
    const hint = user ? ` (with --user ${user.spec} the spool directory must be writable by ${user.name}: chown -R ${user.name} ${dir})` : '';
    throw new SpreadPipeError(ErrorCodes.SPOOL, `--spool: ${errorMessage(e)}${hint}`, { cause: e });
  }
}

/**
 * --user: a spool directory that does not exist yet is made now, as root
 * (its parent is often root's, /var/spool), to be handed to the user
 * before the drop; one that exists is left as it is (it must be the user's).
 */
export function spoolHandover(dir: string): Handed[] {
  try {
    fs.mkdirSync(dir, { mode: 0o750 });
    return [{ path: dir }];
  } catch {
    return []; // there already, or not to be made: opening it after the drop says why
  }
}

function opened(s: Spool, dir: string, waited: boolean): Spool {
  if (waited) log(`spool ${dir} is free now`);
  if (s.unread) log(`spool ${dir}: ${s.unread} lines from before will be sent first`);
  return s;
}

/**
 * Wait up to `waitMs` while another live spread-pipe holds the spool. stdin
 * is being read by then (lines wait in EarlyLines): past the wait, or on
 * another error, go on without the spool rather than lose what was read.
 */
export async function waitForSpool(dir: string, maxBytes: number, waitMs: number): Promise<Spool | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      return opened(Spool.open(dir, { maxBytes }), dir, true);
    } catch (e) {
      if (!isSpreadPipeError(e, ErrorCodes.SPOOL_LOCKED) || Date.now() >= deadline) {
        log(`${errorMessage(e)}; going on WITHOUT the spool`);
        return undefined;
      }
    }
  }
}

/** Lines read before the publisher exists (while the spool is locked), bounded like the queue. */
export class EarlyLines {
  private lines: [Buffer, PreparedSend | undefined][] = [];
  private bytes = 0;
  private dropped = 0;

  constructor(
    private readonly maxLines: number,
    private readonly maxBytes: number,
  ) {}

  push(body: Buffer, route: PreparedSend | undefined): void {
    if (this.lines.length >= this.maxLines || this.bytes + body.length > this.maxBytes) {
      this.dropped++;
      return;
    }
    this.lines.push([body, route]);
    this.bytes += body.length;
  }

  /** Hand everything to the publisher, in order; what did not fit is counted there. */
  replay(p: Publisher): void {
    for (const [body, route] of this.lines) p.push(body, route);
    if (this.dropped) p.noteDropped('queue-full', this.dropped);
    this.lines = [];
    this.bytes = 0;
    this.dropped = 0;
  }
}

/**
 * --gap-notice: tally every drop; once connected and the queue has room,
 * send one line through the publisher (so it is queued, spooled and
 * acknowledged like any other) to the static groups, or to where the last
 * line went when lines are routed.
 */
export class GapNotices {
  private readonly tally = new GapTally();
  private readonly timer: NodeJS.Timeout;
  private lastRoute: PreparedSend | undefined;

  constructor(
    private readonly publisher: Publisher,
    private readonly host: string | undefined,
    private readonly fallback: PreparedSend | undefined,
    private readonly roomy: () => boolean,
  ) {
    publisher.on('event', (e: PublisherEvent) => {
      if (e.type === 'drop') this.tally.add(e.reason, e.lines);
      else if (e.type === 'connected') setImmediate(() => this.send());
    });
    this.timer = setInterval(() => this.send(), GAP_NOTICE_INTERVAL);
    this.timer.unref();
  }

  /** Where lines go, for routed setups without -g. */
  saw(route: PreparedSend | undefined): void {
    if (route) this.lastRoute = route;
  }

  /** Send the notice now if there is one and delivery is possible. */
  send(): void {
    if (this.tally.pending === 0 || !this.publisher.connected || !this.roomy()) return;
    const route = this.fallback ?? this.lastRoute;
    if (!route) return;
    const line = this.tally.take(this.host);
    // Not an input line: counted as a notice, so read = sent_lines + dropped still holds.
    if (line) this.publisher.pushNotice(line, route);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The --ack / --spool part of the counters line; `carried`: lines the spool held when opened. */
export function reliableSummary(p: Publisher, spool: Spool | undefined, carried = 0): string {
  const parts: string[] = [];
  const r = p.reliable;
  if (r) parts.push(`acked=${r.counters.acked} resent=${r.counters.resent} unacked=${r.window.lines} ack_markers=${r.counters.markers} stream="${r.name}"`);
  // spool_carried: lines a previous run left in the spool, sent (or dropped) by this one besides what it read.
  if (spool) parts.push(`spool_unacked=${spool.unacked} spool_bytes=${spool.bytes} spool_carried=${carried}`);
  return parts.length ? ` ${parts.join(' ')}` : '';
}
