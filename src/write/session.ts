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
 */
import { EventEmitter } from 'node:events';
import { type ReconnectDelay, exponentialBackoff } from '../backoff.js';
import { DaemonList } from '../servers.js';
import type { DaemonAddress } from '../spread/address.js';
import { SpreadClient, type SpreadEvent } from '../spread/client.js';
import type { Frame } from '../spread/decoder.js';
import { errorMessage } from '../errors.js';

/** A daemon that sends no membership notice for a join is taken as joined after this. @default 2000 */
export const JOIN_CONFIRM_MS = 2000;
/** Bytes of the session's one read buffer (SpreadClientOptions.readBuffer). @default 256 KiB */
export const READ_BUFFER = 256 * 1024;

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
  | { type: 'gap'; daemon: string; from: number; to: number };

export interface SessionOptions {
  daemons: readonly DaemonAddress[];
  groups: readonly string[];
  /** Private name; default derived from the pid. */
  name?: string;
  connectTimeout?: number;
  reconnectDelay?: ReconnectDelay;
  /** Time source (a test's fake clock). @default Date.now */
  clock?: () => number;
  onData: (frame: Frame, now: number) => void;
}

export class WriteSession extends EventEmitter {
  state: SessionState = { kind: 'idle' };
  /** Sessions opened, gaps seen and total time not subscribed after the first subscription. */
  readonly stats = { sessions: 0, gaps: 0, gapMs: 0, messages: 0 };
  private readonly list: DaemonList;
  private readonly delay: ReconnectDelay;
  private readonly clock: () => number;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

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
    while (this.state.kind !== 'closed') {
      const daemon = this.list.current;
      this.state = { kind: 'connecting', daemon, attempt: pass };
      let client: SpreadClient;
      try {
        // One reused read buffer: routes copy what they keep (the writer copies at append).
        client = await SpreadClient.connect({ daemon, name: this.opts.name, membership: true, connectTimeout: this.opts.connectTimeout, signal: this.abort.signal, readBuffer: READ_BUFFER });
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
      const closed = new Promise<string>((resolve) => client.once('close', (err?: Error) => resolve(err ? errorMessage(err) : 'closed by the daemon')));
      await this.subscribe(client, daemon);
      if (this.isClosed()) {
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
      const reason = await closed;
      if (this.isClosed()) return;
      lostAt = this.clock();
      this.emitEvent({ type: 'lost', daemon: daemon.label, reason, at: lostAt });
      // The daemon that just failed is the last to try again.
      this.list.next();
    }
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
      client.on('message', (ev: SpreadEvent) => {
        if (ev.kind === 'data') {
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
    const s = this.state;
    if (s.kind === 'subscribed' || s.kind === 'joining') s.client.pause();
  }

  resume(): void {
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
