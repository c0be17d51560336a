/**
 * RewriteTimestamp (spreadlogd's force_local_time): the first `[...]` of a
 * message, brackets included, is replaced by the writer's time of receipt,
 * so a farm whose clocks disagree still gives a log whose times only go up.
 *
 *   CommonLogFormat   [01/Dec/2026:08:30:00 +0100]  (Apache's %t)
 *   any other string  a strftime format; its expansion replaces the brackets
 *                     too, so write them in the format if you want them
 *
 * A message without `[`, or with no `]` after it, is written unchanged, as
 * spreadlogd does. The stamp is rendered once per second, not per message.
 */
import { Strftime, timeParts } from './strftime.js';

const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** Apache's `%t`: `[dd/Mon/yyyy:HH:MM:SS +hhmm]`. */
export function clfTime(ms: number, utc = false): string {
  const t = timeParts(ms, utc);
  const a = Math.abs(t.offset);
  return `[${p2(t.day)}/${MON[t.month]}/${t.year}:${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)} ${t.offset < 0 ? '-' : '+'}${p2(Math.floor(a / 60))}${p2(a % 60)}]`;
}

export type RewriteStyle = { kind: 'clf' } | { kind: 'format'; format: string };

export class TimestampRewriter {
  private readonly fmt: Strftime | undefined;
  private second = NaN;
  private stamp: Buffer = Buffer.alloc(0);

  constructor(
    readonly style: RewriteStyle,
    private readonly utc = false,
    /** Longest result (spreadlogd's buffer): a longer stamp cuts the message's tail. */
    private readonly maxLength = Infinity,
  ) {
    this.fmt = style.kind === 'format' ? new Strftime(style.format) : undefined;
  }

  private stampFor(now: number): Buffer {
    const sec = Math.floor(now / 1000);
    if (sec !== this.second) {
      this.second = sec;
      this.stamp = Buffer.from(this.fmt ? this.fmt.render(now, this.utc) : clfTime(now, this.utc), 'latin1');
    }
    return this.stamp;
  }

  /** The message with its first [...] replaced; the same Buffer when there is none. */
  rewrite(data: Buffer, now: number): Buffer {
    const open = data.indexOf(0x5b);
    if (open < 0) return data;
    const close = data.indexOf(0x5d, open + 1);
    if (close < 0) return data;
    const stamp = this.stampFor(now);
    const len = Math.min(this.maxLength, data.length - (close + 1 - open) + stamp.length);
    const out = Buffer.allocUnsafe(len);
    data.copy(out, 0, 0, open);
    stamp.copy(out, open, 0, Math.min(stamp.length, len - open));
    if (open + stamp.length < len) data.copy(out, open + stamp.length, close + 1, close + 1 + (len - open - stamp.length));
    return out;
  }
}
