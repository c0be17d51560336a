/**
 * `top`'s full-screen terminal view: plain ANSI (alternate screen, no curses
 * library), redrawn whole each interval and on resize. The summary and the
 * requests/s sparkline stay on top; the panel below is picked with keys.
 * The terminal is restored on quit, exit and SIGTERM (the CLI calls stop()).
 */
import type { History, Snapshot, SourceSnapshot } from './aggregate.js';

export const PANELS = ['hosts', 'urls', 'referrers', 'agents', 'clients', 'status'] as const;
export type Panel = (typeof PANELS)[number];

const ESC = '\x1b[';
const ALT_ON = '\x1b[?1049h';
const ALT_OFF = '\x1b[?1049l';
const HIDE = '\x1b[?25l';
const SHOW = '\x1b[?25h';
const HOME_CLEAR = '\x1b[H\x1b[2J';
const BOLD = `${ESC}1m`;
const DIM = `${ESC}2m`;
const REV = `${ESC}7m`;
const RED = `${ESC}31m`;
const GREEN = `${ESC}32m`;
const YELLOW = `${ESC}33m`;
const CYAN = `${ESC}36m`;
const RESET = `${ESC}0m`;
const BARS = '▁▂▃▄▅▆▇█';

export function sparkline(values: readonly number[], width: number): string {
  const v = values.slice(-width);
  if (v.length === 0) return '';
  const max = Math.max(...v, 1);
  let s = '';
  for (const x of v) s += BARS[Math.min(7, Math.max(0, Math.round((x / max) * 7)))];
  return s;
}

export function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n * 10) / 10);
}

/** Cut or pad to exactly `w` columns (keys are shown one char per column; wide chars are rare in logs). */
function fit(s: string, w: number): string {
  if (w <= 0) return '';
  // Control characters from a log line must not reach the terminal.
  s = s.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
  return s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s.padEnd(w);
}

export interface TerminalIO {
  write(s: string): unknown;
  columns: number;
  rows: number;
}

export class TerminalView {
  panel: Panel = 'hosts';
  private last: { s: Snapshot; h: History } | undefined;
  private active = false;

  constructor(private readonly out: TerminalIO) {}

  start(): void {
    this.active = true;
    this.out.write(ALT_ON + HIDE + HOME_CLEAR);
  }

  /** Leave the alternate screen and show the cursor again; safe to call twice. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    this.out.write(RESET + SHOW + ALT_OFF);
  }

  /** A key from the raw-mode stdin; returns 'quit' when the user asked to leave. */
  key(k: string): 'quit' | undefined {
    if (k === 'q' || k === 'Q' || k === '\x03' || k === '\x1b') return 'quit';
    const n = Number(k);
    if (Number.isInteger(n) && n >= 1 && n <= PANELS.length) this.panel = PANELS[n - 1]!;
    else if (k === '\t' || k === '\x1b[C' || k === 'l') this.panel = PANELS[(PANELS.indexOf(this.panel) + 1) % PANELS.length]!;
    else if (k === '\x1b[Z' || k === '\x1b[D' || k === 'h') this.panel = PANELS[(PANELS.indexOf(this.panel) + PANELS.length - 1) % PANELS.length]!;
    else return undefined;
    this.redraw();
    return undefined;
  }

  update(s: Snapshot, h: History): void {
    this.last = { s, h };
    this.redraw();
  }

  redraw(): void {
    if (!this.active || !this.last) return;
    this.out.write(HOME_CLEAR + this.render(this.last.s, this.last.h).join('\r\n'));
  }

  /** The screen as lines of at most `columns` visible characters. */
  render(s: Snapshot, h: History): string[] {
    const W = Math.max(40, this.out.columns || 80);
    const H = Math.max(10, this.out.rows || 24);
    const L: string[] = [];
    const err = s.errors_5xx_per_s > 0 ? `${RED}${BOLD}` : GREEN;
    L.push(`${REV}${BOLD}${fit(` spread-pipe top   ${s.time.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}   up ${s.uptime_s}s`, W)}${RESET}`);
    L.push(
      `${BOLD}${human(s.requests_per_s)}${RESET} req/s  ${BOLD}${human(s.bytes_per_s)}${RESET}B/s  ${err}5xx ${human(s.errors_5xx_per_s)}/s${RESET}  ` +
        `lines ${s.lines}  requests ${s.requests}  ${s.unparsed ? YELLOW : ''}unparsed ${s.unparsed}${RESET}`,
    );
    L.push(
      `clients ${s.distinct_clients_exact ? '' : '~'}${s.distinct_clients}  online (${Math.round(s.online_window_s / 60)} min) ${s.online_clients_exact ? '' : '~'}${s.online_clients}  ` +
        `2xx ${s.hits_by_class['2xx']}  3xx ${s.hits_by_class['3xx']}  4xx ${s.hits_by_class['4xx']}  ${s.hits_by_class['5xx'] ? RED : ''}5xx ${s.hits_by_class['5xx']}${RESET}`,
    );
    // Right-aligned to the full width, so the newest point is always at the same column.
    L.push(`${CYAN}${sparkline(h.requests_per_s, W - 12).padStart(W - 12)}${RESET} ${DIM}req/s${RESET}`);
    L.push(PANELS.map((p, i) => (p === this.panel ? `${REV} ${i + 1} ${p} ${RESET}` : ` ${i + 1} ${p} `)).join('') + `${DIM}  tab: next  q: quit${RESET}`);
    const room = H - L.length - 1;
    L.push(...this.panelLines(s, h, W, room));
    return L.slice(0, H);
  }

  private panelLines(s: Snapshot, h: History, W: number, room: number): string[] {
    const all = room;
    const out: string[] = [];
    const top = (list: { hits: number }[], field: string, title: string): void => {
      out.push(`${BOLD}${'hits'.padStart(10)}  ${title}${RESET}`);
      for (const e of list.slice(0, room - 1)) out.push(`${String(e.hits).padStart(10)}  ${fit(String((e as unknown as Record<string, string>)[field]), W - 12)}`);
    };
    switch (this.panel) {
      case 'hosts': {
        const row = (name: string, x: SourceSnapshot, series: number[] | undefined): string => {
          const sw = Math.max(10, W - 66);
          return `${fit(name, 18)} ${human(x.requests_per_s).padStart(8)} ${human(x.bytes_per_s).padStart(8)} ${String(x.requests).padStart(10)} ${(x.errors_5xx ? RED : '') + String(x.errors_5xx).padStart(7) + RESET} ${String(x.unparsed).padStart(7)}  ${CYAN}${sparkline(series ?? [], sw)}${RESET}`;
        };
        out.push(`${BOLD}${'web server'.padEnd(18)} ${'req/s'.padStart(8)} ${'B/s'.padStart(8)} ${'requests'.padStart(10)} ${'5xx'.padStart(7)} ${'unparsed'.padStart(7)}  history${RESET}`);
        for (const [k, x] of Object.entries(s.by_host).sort((a, b) => b[1].requests_per_s - a[1].requests_per_s || (a[0] < b[0] ? -1 : 1))) out.push(row(k, x, h.by_host[k]));
        const v = Object.entries(s.by_vhost);
        if (v.length > 0) {
          out.push('', `${BOLD}${'vhost'.padEnd(18)}${RESET}`);
          for (const [k, x] of v.sort((a, b) => b[1].requests - a[1].requests)) out.push(row(k, x, h.by_vhost[k]));
        }
        // The overview fills the rest of the screen with the top URLs.
        const left = room - out.length - 2;
        if (left > 0 && s.top_urls.length > 0) {
          out.push('');
          room = left + 1;
          top(s.top_urls, 'url', 'top URLs');
        }
        break;
      }
      case 'urls':
        top(s.top_urls, 'url', 'URL');
        break;
      case 'referrers':
        top(s.top_referrers, 'referrer', 'referrer');
        break;
      case 'agents':
        top(s.top_agents, 'agent', 'user agent');
        break;
      case 'clients':
        top(s.top_clients, 'client', 'client address');
        break;
      case 'status': {
        out.push(`${BOLD}${'hits'.padStart(10)}  status${RESET}`);
        for (const [c, n] of Object.entries(s.hits_by_status)) out.push(`${String(n).padStart(10)}  ${c[0] === '5' ? RED : c[0] === '4' ? YELLOW : ''}${c}${RESET}`);
        const why = Object.entries(s.unparsed_by_reason);
        if (why.length > 0) {
          out.push('', `${BOLD}${'lines'.padStart(10)}  unparsed, by reason${RESET}`);
          for (const [r, n] of why) out.push(`${String(n).padStart(10)}  ${r}`);
        }
        break;
      }
    }
    return out.slice(0, all);
  }
}
