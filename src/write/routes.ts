/**
 * What `spread-pipe write` does with a message of a group: one Route per
 * `--write GROUP=FILE`, `--write-split GROUP=DIR`, `--write-vhost GROUP=DIR`
 * or spreadlogd.conf `Log { ... }` block. In spreadlogd's order: Match on
 * the message as it arrived, then RewriteTimestamp, then the destination:
 *
 *   file   FILE (strftime fields switch file at their boundary; `|program` pipes)
 *   split  DIR/<first word>.log, the line whole (our --write-split)
 *   vhost  DIR/<first word>, the first word and its space removed
 *          (spreadlogd's VhostDir; each line of a batch by its own word)
 *
 * --ack repeats are dropped first (write-dedup.ts), so Match sees only new
 * lines. File names made from words are safe (no `/`, no leading dot).
 */
import path from 'node:path';
import { isStreamMarker } from '../ack.js';
import type { DuplicateFilter, SeenRange } from '../dedup.js';
import type { SeenJournal } from '../seen-journal.js';
import { safeFileName } from '../writer.js';
import { matchesAny } from './posix-regex.js';
import { PathTemplate } from './strftime.js';
import { type RewriteStyle, TimestampRewriter } from './timestamp.js';

export type RouteKind = 'file' | 'split' | 'vhost';

export interface RouteSpec {
  group: string;
  kind: RouteKind;
  /** FILE (maybe with strftime fields, or `|command`) or DIR. */
  target: string;
  matches: RegExp[];
  rewrite?: RewriteStyle;
  /** Where it was configured, for messages: `--write jigdo=...`, `spreadlogd.conf:12`. */
  source: string;
}

/** What a route hands the writer: the one module that opens, buffers, locks and counts files. */
export interface RouteSink {
  /** `root`: the directory the admin named; directories below it may be created, none above. */
  append(file: string, data: Buffer, note: unknown, root: string | undefined): void;
  /** `|command` targets. */
  appendPipe(command: string, data: Buffer): void;
}

export interface RouteDedup {
  filter: DuplicateFilter;
  journal?: SeenJournal;
}

const NL = Buffer.from('\n');

export class Route {
  readonly stats = { messages: 0, filtered: 0, noWord: 0 };
  private readonly template: PathTemplate | undefined;
  private readonly rewriter: TimestampRewriter | undefined;
  /** Files of a split/vhost route written this run: a gap notice goes into each. */
  private readonly seen = new Set<string>();
  readonly isPipe: boolean;

  constructor(
    readonly spec: RouteSpec,
    private readonly sink: RouteSink,
    opts: { utc?: boolean; maxLength?: number; dedup?: RouteDedup } = {},
  ) {
    this.isPipe = spec.kind === 'file' && spec.target.startsWith('|');
    this.template = spec.kind === 'file' && !this.isPipe ? new PathTemplate(spec.target, opts.utc) : undefined;
    this.rewriter = spec.rewrite ? new TimestampRewriter(spec.rewrite, opts.utc, opts.maxLength) : undefined;
    this.fileRoot = this.template?.timed ? this.template.fixedDir : undefined;
    this.dedup = opts.dedup;
  }

  readonly dedup: RouteDedup | undefined;

  /**
   * The directory a file route may make levels below: the fixed part of a
   * path with strftime fields; none for a plain FILE (its directory must exist).
   * Worked out once: fixedDir slices the template, which per message is garbage.
   */
  private readonly fileRoot: string | undefined;

  /** The file a message received at `now` goes to, and the directory it may make (file routes, not pipes). */
  fileAt(now: number): [string, string | undefined] | undefined {
    return this.template ? [this.template.path(now), this.fileRoot] : undefined;
  }

  handle(sender: string, messType: number, data: Buffer, now: number): void {
    let note: { journal: SeenJournal; changes: SeenRange[] } | undefined;
    const d = this.dedup;
    if (d) {
      const kept = d.filter.filter(sender, messType, data);
      if (!kept) return;
      if (d.journal) {
        const changes = d.filter.takeChanges();
        if (changes.length) note = { journal: d.journal, changes };
      }
      data = kept;
    } else if (isStreamMarker(sender, data)) return; // --no-dedup: still no line (ack.ts)
    if (this.spec.matches.length && !matchesAny(this.spec.matches, data)) {
      this.stats.filtered++;
      return;
    }
    this.stats.messages++;
    if (this.rewriter) data = this.rewriter.rewrite(data, now);
    switch (this.spec.kind) {
      case 'file':
        if (this.isPipe) this.sink.appendPipe(this.spec.target.slice(1), data);
        else this.sink.append(this.template!.path(now), data, note, this.fileRoot);
        return;
      case 'split': {
        const file = path.join(this.spec.target, `${safeFileName(firstWord(data, 0, data.length))}.log`);
        this.seen.add(file);
        this.sink.append(file, data, note, this.spec.target);
        return;
      }
      case 'vhost':
        this.vhost(data, note);
    }
  }

  private vhost(data: Buffer, note: unknown): void {
    const nl = data.indexOf(0x0a);
    if (nl < 0 || nl === data.length - 1) {
      this.vhostLine(data, 0, data.length, note);
      return;
    }
    // A batch: each line goes by its own word (one-line messages, all spreadlogd ever saw, take the path above).
    let start = 0;
    while (start < data.length) {
      let end = data.indexOf(0x0a, start);
      end = end < 0 ? data.length : end + 1;
      this.vhostLine(data, start, end, end >= data.length ? note : undefined);
      start = end;
    }
  }

  private vhostLine(data: Buffer, start: number, end: number, note: unknown): void {
    const sp = data.indexOf(0x20, start);
    if (sp < 0 || sp >= end) {
      // spreadlogd writes nothing for a line without a space (it asks write(2) for -1 bytes).
      this.stats.noWord++;
      return;
    }
    const file = path.join(this.spec.target, safeFileName(data.toString('latin1', start, Math.min(sp, start + 256))));
    this.seen.add(file);
    this.sink.append(file, data.subarray(sp + 1, end), note, this.spec.target);
  }

  /** A gap notice: into the file of now, or into each file of a directory route written so far. */
  notice(line: Buffer, now: number): void {
    if (this.spec.kind === 'file') {
      if (this.isPipe) this.sink.appendPipe(this.spec.target.slice(1), line);
      else this.sink.append(this.template!.path(now), line, undefined, this.fileRoot);
      return;
    }
    for (const f of this.seen) this.sink.append(f, line, undefined, this.spec.target);
  }
}

/** The first word of a message (up to a space or newline), at most 256 bytes: the host tag. */
export function firstWord(data: Buffer, start: number, end: number): string {
  let stop = data.indexOf(0x20, start);
  if (stop < 0 || stop > end) stop = end;
  const nl = data.indexOf(0x0a, start);
  if (nl >= 0 && nl < stop) stop = nl;
  return data.toString('latin1', start, Math.min(stop, start + 256));
}

export { NL };
