/**
 * One subscription of `spread-pipe write`: a Spread session that joins the
 * groups of its routes on one daemon of an ordered list, and keeps itself
 * joined. When the session is lost it dials the next daemon of the list at
 * once (a segment's daemons all deliver the same groups), then the next,
 * and after a whole pass that failed waits the reconnect delay (back-off)
 * before the next pass. Joined again, it reports the gap: Spread delivers
 * only to current members, so what was sent between losing the session and
 * the daemon confirming the joins is not coming back.
 *
 * Subscribed means: the daemon's membership notice for each group, naming
 * us, has arrived (messages sent after that reach us), or JOIN_CONFIRM_MS
 * passed without one (a daemon that sends no notices).
 *
 * Fail-back: while on another daemon than the first of the list, the first
 * is dialled every failbackInterval; when it answers, the session leaves the
 * other daemon and joins there (a gap record covers the switch: two
 * sessions joined at once would write what both deliver twice).
 *
 * Liveness: a daemon that hangs (SIGSTOP, a wedged host) keeps the TCP
 * session open and sends nothing, so 'close' never comes. Every
 * livenessInterval with nothing received, the session sends a small FIFO
 * message to its own private group (every Spread since 3.x delivers a
 * message to a private group to that connection, PROTOCOL.md 6.1); when
 * nothing at all has arrived one interval later, the daemon is taken as
 * hung: the session is dropped and the next daemon dialled (a gap record).
 * Any frame counts as an answer, so a busy stream (whose probe waits behind
 * it in the daemon's queue) is never mistaken for a hung daemon.
 */
import { EventEmitter } from 'node:events';
import { type ReconnectDelay, exponentialBackoff } from '../backoff.js';
import { DaemonList } from '../servers.js';
import type { DaemonAddress } from '../spread/address.js';
import { SpreadClient, type SpreadEvent } from '../spread/client.js';
import { FIFO_MESS } from '../spread/constants.js';
import type { Frame } from '../spread/decoder.js';
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';

/** A daemon that sends no membership notice for a join is taken as joined after this. @default 2000 */
export const JOIN_CONFIRM_MS = 2000;
/** Bytes of the session's one read buffer (SpreadClientOptions.readBuffer). @default 256 KiB */
export const READ_BUFFER = 256 * 1024;
/**
 * ms the session stops reading after a short read (SpreadClientOptions.readDelay):
 * real Spread writes each message on its own, and a writer that reads each
 * as it comes spends its CPU on wakeups. Below the writer's FLUSH_DELAY, so
 * a line still reaches its file within a few ms. @default 2 ms
 */
export const READ_DELAY = 2;
/** ms between two tries of the first daemon while subscribed on another. @default 30000 */
export const DEFAULT_FAILBACK_INTERVAL = 30_000;
/** ms of silence after which a probe is sent; as long again with nothing received and the daemon is taken as hung. @default 10000 */
export const DEFAULT_LIVENESS_INTERVAL = 10_000;
/** The probe's message type (its body says what it is, for anyone tracing the wire). */
export const PROBE_MESS_TYPE = 0x5370; // 'Sp'
const PROBE_BODY = Buffer.from('spread-pipe write liveness probe');

export type SessionState =
  | { kind: 'idle' }
  | { kind: 'connecting'; daemon: DaemonAddress; attempt: number }
  | { kind: 'joining'; daemon: DaemonAddress; client: SpreadClient }
  | { kind: 'subscribed'; daemon: DaemonAddress; client: SpreadClient; since: number }
  | { kind: 'waiting'; until: number; cause: string }
  | { kind: 'closed' };

export type SessionEvent =
  | { type: 'subscribed'; daemon: string; privateGroup: string }
  | { type: 'lost'; daemon: string; reason: string; at: number }
  | { type: 'connect-failed'; daemon: string; reason: string; retryIn: number | false }
  | { type: 'gap'; daemon: string; from: number; to: number }
  /** The first daemon of the list answers again: the session leaves `from` for it. */
  | { type: 'failback'; daemon: string; from: string };

export interface SessionOptions {
  daemons: readonly DaemonAddress[];
  groups: readonly string[];
  /** Private name; default derived from the pid. */
  name?: string;
  connectTimeout?: number;
  reconnectDelay?: ReconnectDelay;
  /** Time source (a test's fake clock). @default Date.now */
  clock?: () => number;
  /** ms between tries of the first daemon while on another; 0: never fail back. @default 30000 */
  failbackInterval?: number;
  /** ms of silence before a probe, and as long again before the daemon is taken as hung; 0: off. @default 10000 */
  livenessInterval?: number;
  onData: (frame: Frame, now: number) => void;
}

export class WriteSession extends EventEmitter {
  state: SessionState = { kind: 'idle' };
  /** Sessions opened, gaps seen and total time not subscribed after the first subscription. */
  readonly stats = { sessions: 0, gaps: 0, gapMs: 0, messages: 0, failbacks: 0, hung: 0 };
  private readonly list: DaemonList;
  private readonly delay: ReconnectDelay;
  private readonly clock: () => number;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Frames received on the current session (liveness). */
  private frames = 0;
  private paused = false;

  constructor(private readonly opts: SessionOptions) {
    super();
    this.list = new DaemonList(opts.daemons);
    this.delay = opts.reconnectDelay ?? exponentialBackoff();
    this.clock = opts.clock ?? Date.now;
  }

  get label(): string {
    return this.opts.daemons.map((d) => d.label).join(',');
  }

  /** Start the dial loop (once); resolves when closed. */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.loop;
  }

  private emitEvent(e: SessionEvent): void {
    this.emit('event', e);
  }

  private async run(): Promise<void> {
    let lostAt: number | undefined;
    let pass = 0;
    let triedThisPass = 0;
    /** A session already open to the first daemon (fail-back): joined instead of dialling. */
    let ready: SpreadClient | undefined;
    while (this.state.kind !== 'closed') {
      const daemon = this.list.current;
      this.state = { kind: 'connecting', daemon, attempt: pass };
      let client: SpreadClient;
      try {
        client = ready ?? (await this.dial(daemon));
        ready = undefined;
      } catch (e) {
        if (this.isClosed()) return;
        triedThisPass++;
        this.list.next();
        let wait: number | false = 0;
        if (triedThisPass >= this.opts.daemons.length) {
          // A whole pass failed: back off before the next one.
          triedThisPass = 0;
          pass++;
          wait = this.delay(pass, e);
        }
        this.emitEvent({ type: 'connect-failed', daemon: daemon.label, reason: errorMessage(e), retryIn: wait });
        if (wait === false) {
          this.state = { kind: 'closed' };
          this.emit('gave-up', e);
          return;
        }
        if (wait > 0) await this.sleep(wait, errorMessage(e));
        continue;
      }
      if (this.isClosed()) {
        client.destroy();
        return;
      }
      pass = 0;
      triedThisPass = 0;
      this.stats.sessions++;
      this.frames = 0;
      const closed = new Promise<string>((resolve) => client.once('close', (err?: Error) => resolve(err ? errorMessage(err) : 'closed by the daemon')));
      const stopWatch = this.watchLiveness(client, daemon);
      await this.subscribe(client, daemon);
      if (this.isClosed()) {
        stopWatch();
        await client.disconnect().catch(() => {});
        return;
      }
      const since = this.clock();
      this.state = { kind: 'subscribed', daemon, client, since };
      this.emitEvent({ type: 'subscribed', daemon: daemon.label, privateGroup: client.privateGroup });
      if (lostAt !== undefined) {
        this.stats.gaps++;
        this.stats.gapMs += Math.max(0, since - lostAt);
        this.emitEvent({ type: 'gap', daemon: daemon.label, from: lostAt, to: since });
      }
      const back = this.list.onSecondary ? this.watchPrimary() : undefined;
      const ended = await Promise.race([closed.then((reason) => ({ reason })), ...(back ? [back.found.then((primary) => ({ primary }))] : [])]);
      back?.stop();
      stopWatch();
      if (this.isClosed()) {
        if ('primary' in ended) ended.primary.destroy();
        return;
      }
      lostAt = this.clock();
      if ('primary' in ended) {
        this.stats.failbacks++;
        this.emitEvent({ type: 'failback', daemon: this.list.primary.label, from: daemon.label });
        await client.disconnect().catch(() => {});
        this.list.reset();
        ready = ended.primary;
        continue;
      }
      this.emitEvent({ type: 'lost', daemon: daemon.label, reason: ended.reason, at: lostAt });
      // The daemon that just failed is the last to try again.
      this.list.next();
    }
  }

  private dial(daemon: DaemonAddress): Promise<SpreadClient> {
    // One reused read buffer: routes copy what they keep (the writer copies at append).
    return SpreadClient.connect({ daemon, name: this.opts.name, membership: true, connectTimeout: this.opts.connectTimeout, signal: this.abort.signal, readBuffer: READ_BUFFER, readDelay: READ_DELAY });
  }

  /** While on a secondary daemon: dial the first one every failbackInterval; `found` resolves with a session to it. */
  private watchPrimary(): { found: Promise<SpreadClient>; stop: () => void } | undefined {
    const every = this.opts.failbackInterval ?? DEFAULT_FAILBACK_INTERVAL;
    if (!every) return undefined;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const found = new Promise<SpreadClient>((resolve) => {
      const tick = (): void => {
        timer = setTimeout(() => {
          this.dial(this.list.primary).then(
            (c) => {
              if (stopped) void c.disconnect().catch(() => {});
              else resolve(c);
            },
            () => {
              if (!stopped) tick();
            },
          );
        }, every);
      };
      tick();
    });
    return {
      found,
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  /**
   * Probe a silent daemon through our own private group; destroy the
   * session when nothing at all arrives within a further interval.
   */
  private watchLiveness(client: SpreadClient, daemon: DaemonAddress): () => void {
    const every = this.opts.livenessInterval ?? DEFAULT_LIVENESS_INTERVAL;
    if (!every) return () => {};
    let seen = -1;
    let probed = false;
    const timer = setInterval(() => {
      if (this.paused) {
        seen = -1;
        return;
      }
      if (this.frames !== seen) {
        seen = this.frames;
        probed = false;
        return;
      }
      if (!probed) {
        probed = true;
        try {
          client.multicast(client.privateGroup, PROBE_BODY, { service: FIFO_MESS, messType: PROBE_MESS_TYPE });
        } catch {
          // closed meanwhile: 'close' follows
        }
        return;
      }
      this.stats.hung++;
      client.destroy(new SpreadPipeError(ErrorCodes.STALLED, `daemon ${daemon.label} sent nothing for ${every} ms after a probe (hung?)`));
    }, every);
    timer.unref();
    return () => clearInterval(timer);
  }

  private isClosed(): boolean {
    return this.state.kind === 'closed';
  }

  /** Join every group; resolve once each is confirmed (or JOIN_CONFIRM_MS), delivering data from the start. */
  private subscribe(client: SpreadClient, daemon: DaemonAddress): Promise<void> {
    this.state = { kind: 'joining', daemon, client };
    const pending = new Set(this.opts.groups);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, JOIN_CONFIRM_MS);
      const self = client.privateGroup;
      client.on('message', (ev: SpreadEvent) => {
        this.frames++;
        if (ev.kind === 'data') {
          // Our own liveness probe coming back: not a log line.
          const f = ev.frame;
          if (f.messType === PROBE_MESS_TYPE && f.groups.length === 1 && f.groups[0] === self && f.sender === self) return;
          this.stats.messages++;
          this.opts.onData(ev.frame, this.clock());
        } else if (ev.kind === 'membership' && pending.size && ev.info.members.includes(client.privateGroup)) {
          pending.delete(ev.info.group);
          if (pending.size === 0) done();
        }
      });
      client.once('close', done);
      try {
        for (const g of this.opts.groups) client.join(g);
      } catch {
        done(); // closed meanwhile: 'close' follows
      }
    });
  }

  private sleep(ms: number, cause: string): Promise<void> {
    this.state = { kind: 'waiting', until: this.clock() + ms, cause };
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Pause reading from the daemon (it buffers for us), e.g. while a disk is slow. */
  pause(): void {
    this.paused = true;
    const s = this.state;
    if (s.kind === 'subscribed' || s.kind === 'joining') s.client.pause();
  }

  resume(): void {
    this.paused = false;
    const s = this.state;
    if (s.kind === 'subscribed' || s.kind === 'joining') s.client.resume();
  }

  /** Leave: disconnect from the daemon (what it sent before is delivered first). */
  async close(): Promise<void> {
    const s = this.state;
    this.state = { kind: 'closed' };
    this.abort.abort();
    this.wake?.();
    if (s.kind === 'subscribed' || s.kind === 'joining') await s.client.disconnect().catch(() => {});
    await this.loop?.catch(() => {});
  }
}

/** The gap record: one line, on stderr and (with --gap-notice) in each file of the session's routes. */
export function gapRecord(from: number, to: number): string {
  return `spread-pipe write: not subscribed from ${new Date(from).toISOString()} to ${new Date(to).toISOString()}; lines sent then are missing`;
}
