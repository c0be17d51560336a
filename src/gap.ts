/**
 * --gap-notice: once delivery resumes after lines were lost, the publisher
 * sends one line into the log itself saying how many lines from this host
 * were lost, why, and when, so the central log shows its gaps:
 *
 *   web1 spread-pipe: lost 1234 lines (queue-full=1200 lost-in-flight=34) between 2026-11-23T06:40:00.000Z and 2026-11-23T06:41:02.125Z
 *
 * The line starts with the host tag (when lines are tagged) so a per-host
 * writer files it with that host's lines; "spread-pipe: lost " after it is
 * fixed text to grep for. Reasons are the publisher's drop reasons, in a
 * stable order; times are UTC, first and last loss.
 */

export interface GapInfo {
  /** Host tag, without the trailing space; undefined with --no-tag. */
  host?: string;
  /** Lines lost, by reason (zero counts are left out). */
  reasons: Readonly<Record<string, number>>;
  /** Time of the first and the last loss counted. */
  from: Date;
  to: Date;
}

const MARK = 'spread-pipe: lost ';
const RE = /^(?:(\S+) )?spread-pipe: lost (\d+) lines \(([^)]*)\) between (\S+) and (\S+)$/;

export function gapTotal(reasons: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const v of Object.values(reasons)) n += v;
  return n;
}

/** The notice as one LF-terminated line. */
export function formatGapNotice(g: GapInfo): Buffer {
  const parts = Object.entries(g.reasons)
    .filter(([, v]) => v > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  const head = g.host ? `${g.host} ` : '';
  return Buffer.from(`${head}${MARK}${gapTotal(g.reasons)} lines (${parts.join(' ')}) between ${g.from.toISOString()} and ${g.to.toISOString()}\n`, 'latin1');
}

/** The notice in a line, or undefined when the line is not one. */
export function parseGapNotice(line: Buffer | string): (GapInfo & { total: number }) | undefined {
  const s = (typeof line === 'string' ? line : line.toString('latin1')).replace(/\r?\n$/, '');
  if (!s.includes(MARK)) return undefined;
  const m = RE.exec(s);
  if (!m) return undefined;
  const reasons: Record<string, number> = {};
  for (const kv of m[3]!.split(' ').filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i <= 0) return undefined;
    reasons[kv.slice(0, i)] = Number(kv.slice(i + 1));
  }
  const from = new Date(m[4]!);
  const to = new Date(m[5]!);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return undefined;
  return { ...(m[1] ? { host: m[1] } : {}), reasons, from, to, total: Number(m[2]) };
}

/**
 * Losses since the last notice. The publisher adds each drop; take() hands
 * out a notice when there is something to tell and clears the tally.
 */
export class GapTally {
  private reasons: Record<string, number> = {};
  private from: Date | undefined;
  private to: Date | undefined;

  add(reason: string, lines: number, now = new Date()): void {
    if (lines <= 0) return;
    this.reasons[reason] = (this.reasons[reason] ?? 0) + lines;
    this.from ??= now;
    this.to = now;
  }

  get pending(): number {
    return gapTotal(this.reasons);
  }

  take(host: string | undefined): Buffer | undefined {
    if (!this.from || this.pending === 0) return undefined;
    const line = formatGapNotice({ host, reasons: this.reasons, from: this.from, to: this.to! });
    this.reasons = {};
    this.from = this.to = undefined;
    return line;
  }
}
