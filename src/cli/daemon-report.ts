/**
 * The daemon's operator lines on stderr, bounded whatever its peers do.
 * Anyone who can reach the port can open connections and, with NULL
 * authentication, whole sessions: one line per event would let them flood
 * the log. So, like pipe mode's drop reports:
 *
 * - refused connections (by cause: not-allowed, handshake-timeout, ...) and
 *   sessions dropped for breaking the protocol or for not reading: the first
 *   of each cause is printed at once, in full; the rest are counted and
 *   printed as one line per kind at the end of the interval;
 * - connects and disconnects of real sessions: one line each, up to
 *   `burst` lines per interval, then counted the same way;
 * - while such a flood lasts (an interval ended with lines of that kind
 *   held back), the next interval prints only its counts for that kind; a
 *   quiet interval starts afresh. A flood of refused connections does not
 *   hide the connects of real sessions, nor the other way round.
 */
import { rejectCodeName } from '../spread/constants.js';
import type { DaemonEvent } from '../spread/daemon.js';

/** Session lines (connect, disconnect) printed per interval before they are only counted. @default 20 */
export const DEFAULT_SESSION_LINE_BURST = 20;

type Kind = 'refused' | 'dropped' | 'sessions' | 'errors';

const TITLES: Record<Kind, string> = {
  refused: 'refused connections',
  dropped: 'dropped sessions',
  sessions: 'session lines not shown',
  errors: 'errors',
};

interface Held {
  counts: Map<string, number>;
  last: string;
}

export class DaemonReport {
  /** Keys printed in full this interval, per kind; lines printed this interval, per kind. */
  private printed = new Map<Kind, Set<string>>();
  private lines = new Map<Kind, number>();
  private held = new Map<Kind, Held>();
  /** Kinds whose last interval held lines back: this one prints only their counts. */
  private flooding = new Set<Kind>();
  private started = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: (line: string) => void,
    private readonly interval: number,
    private readonly burst = DEFAULT_SESSION_LINE_BURST,
    private readonly now: () => number = Date.now,
  ) {}

  event(e: DaemonEvent): void {
    switch (e.type) {
      case 'listening':
        return this.log(`listening on ${e.address}`);
      case 'connect':
        return this.note('sessions', 'connect', `connect ${e.session} from ${e.remote} (library ${e.library}${e.membership ? ', membership' : ''})`);
      case 'disconnect':
        return this.note('sessions', 'disconnect', `disconnect ${e.session}: ${e.reason}`);
      case 'reject':
        return this.note('refused', e.cause, `refused ${e.remote}: ${e.code ? `${rejectCodeName(e.code)} ` : ''}${e.reason}`);
      case 'protocol-error':
        return this.note('dropped', 'protocol-error', `dropped ${e.session}: ${e.reason}`);
      case 'forged-tag':
        return this.note('refused', 'forged-tag', `refused a message of ${e.session}: host tag ${JSON.stringify(e.tag)} is not named by its client certificate (${e.names.join(', ') || 'no names'})`);
      case 'tls-reload':
        return this.log(e.error ? `SIGHUP: cannot reload TLS files, keeping the old ones: ${e.error}` : `SIGHUP: reloaded TLS files ${e.files}`);
      case 'slow-session':
        return this.note('dropped', 'slow', `cut off slow session ${e.session}: ${e.queued} bytes queued`);
      case 'error':
        // accept() failing for lack of descriptors repeats with every connection attempt.
        return this.note('errors', 'error', `error: ${e.reason}`);
    }
  }

  /** Print what is held back now (exit, SIGUSR1). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.report();
  }

  private note(kind: Kind, key: string, line: string): void {
    this.arm();
    const printed = this.printed.get(kind) ?? new Set<string>();
    this.printed.set(kind, printed);
    const n = this.lines.get(kind) ?? 0;
    const fresh = kind === 'sessions' ? n < this.burst : !printed.has(key);
    if (fresh && !this.flooding.has(kind)) {
      printed.add(key);
      this.lines.set(kind, n + 1);
      this.log(line);
      return;
    }
    const h = this.held.get(kind) ?? { counts: new Map<string, number>(), last: '' };
    this.held.set(kind, h);
    h.counts.set(key, (h.counts.get(key) ?? 0) + 1);
    h.last = line;
  }

  private arm(): void {
    if (this.timer) return;
    this.started = this.now();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.report();
    }, this.interval);
    this.timer.unref();
  }

  private report(): void {
    const secs = Math.max(0, this.now() - this.started) / 1000;
    const span = secs >= 10 ? secs.toFixed(0) : secs.toFixed(1);
    for (const [kind, h] of this.held) {
      const parts = [...h.counts].map(([k, v]) => `${k}=${v}`).join(' ');
      this.log(`${TITLES[kind]} in the last ${span} s: ${parts} (last: ${h.last})`);
    }
    this.flooding = new Set(this.held.keys());
    this.held.clear();
    this.lines.clear();
    this.printed.clear();
    // A flood goes on being counted in the next interval; a quiet one ends it.
    if (this.flooding.size) this.arm();
  }
}
