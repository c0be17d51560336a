/**
 * The routes of a writer, built and checked once for the daemon's --write /
 * --write-split and for `spread-pipe write` alike: every path is tried
 * before anything is started (a typo stops the start with one line), the
 * duplicate journals are read (a broken one stops the start, not a running
 * writer), and each route gets its dedup state:
 *
 *   FILE            FILE.seen
 *   FILE with %     FIXED-DIR/.<rest of the template, made safe>.seen
 *   DIR             DIR/.seen   (split and vhost routes of one DIR share it)
 *   |program        in memory only (a program has no file to check against)
 */
import fs from 'node:fs';
import path from 'node:path';
import { DuplicateFilter } from '../dedup.js';
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';
import type { WriteDedup } from '../write-dedup.js';
import { checkLogDir, checkLogFile } from '../write-paths.js';
import { type LogWriter, safeFileName } from '../writer.js';
import { Route, type RouteDedup, type RouteSpec } from './routes.js';
import { PathTemplate, StrftimeError } from './strftime.js';

export interface BuildOptions {
  /** Drop --ack repeats (journals next to the files). */
  dedup?: WriteDedup;
  utc?: boolean;
  /** Longest message kept (spreadlogd's BufferSize): also cuts a rewritten timestamp's tail. */
  maxLength?: number;
  /** Told about a journal that found unfinished writes after a crash. */
  onRecovery?: (journal: string, undone: number, truncated: string[]) => void;
}

/** The journal that holds a route's duplicate state, or undefined for a pipe. */
export function journalPath(spec: RouteSpec): string | undefined {
  if (spec.kind !== 'file') return path.join(spec.target, '.seen');
  if (spec.target.startsWith('|')) return undefined;
  const t = new PathTemplate(spec.target);
  if (!t.timed) return `${spec.target}.seen`;
  const rest = path.relative(t.fixedDir, spec.target);
  return path.join(t.fixedDir, `.${safeFileName(rest)}.seen`);
}

const writeError = (spec: RouteSpec, e: unknown): SpreadPipeError =>
  new SpreadPipeError(ErrorCodes.WRITE, `${spec.source}: ${errorMessage(e)}`, { cause: e });

/** Check one route's destination (throws SP_ERR_WRITE naming where it was configured). */
export function checkRoute(spec: RouteSpec, utc = false): void {
  try {
    if (spec.kind !== 'file') return checkLogDir(spec.target);
    if (spec.target.startsWith('|')) {
      if (spec.target.slice(1).trim() === '') throw new Error('no program after "|"');
      return;
    }
    let t: PathTemplate;
    try {
      t = new PathTemplate(spec.target, utc);
    } catch (e) {
      if (e instanceof StrftimeError) throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `${spec.source}: ${e.message}`);
      throw e;
    }
    if (!t.timed) return checkLogFile(spec.target);
    // The fixed part must be there (or be made, one level); the fields below it are made as needed.
    checkLogDir(t.fixedDir);
  } catch (e) {
    if (e instanceof SpreadPipeError && e.code === ErrorCodes.INVALID_ARGUMENT) throw e;
    throw writeError(spec, e);
  }
}

/** Build every route on `writer`, checking paths and reading journals first. */
export function buildRoutes(specs: readonly RouteSpec[], writer: LogWriter, opts: BuildOptions = {}): Route[] {
  for (const s of specs) checkRoute(s, opts.utc);
  const byJournal = new Map<string, RouteDedup>();
  return specs.map((spec) => {
    let dedup: RouteDedup | undefined;
    if (opts.dedup) {
      const j = journalPath(spec);
      if (j === undefined) {
        dedup = { filter: new DuplicateFilter() };
      } else {
        // Two routes writing one file or directory share its journal: one writer of it.
        dedup = byJournal.get(j);
        if (!dedup) {
          try {
            const t = opts.dedup.add(j);
            if (t.recovery.undone || t.recovery.truncated.length) opts.onRecovery?.(j, t.recovery.undone, t.recovery.truncated);
            dedup = { filter: t.filter, journal: t.journal };
          } catch (e) {
            const verb = fs.existsSync(j) ? 'cannot use' : 'cannot create';
            const where = spec.kind === 'file' ? 'beside the file' : 'in the directory';
            throw new SpreadPipeError(ErrorCodes.WRITE, `${spec.source}: ${verb} the duplicate journal ${j} (kept ${where} to drop --ack repeats; --no-dedup turns it off): ${errorMessage(e)}`, { cause: e });
          }
          byJournal.set(j, dedup);
        }
      }
    }
    return new Route(spec, writer, { utc: opts.utc, maxLength: opts.maxLength, dedup });
  });
}

/** Routes by group, for the tap or the session's message handler. */
export function routesByGroup(routes: readonly Route[]): Map<string, Route[]> {
  const m = new Map<string, Route[]>();
  for (const r of routes) {
    const list = m.get(r.spec.group);
    if (list) list.push(r);
    else m.set(r.spec.group, [r]);
  }
  return m;
}
