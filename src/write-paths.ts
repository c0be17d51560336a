/**
 * The daemon's --write FILE and --write-split DIR, checked before it listens,
 * so a typo or a path that cannot take writes stops the start with one line
 * instead of every message failing later.
 *
 * No directory the admin did not name is created: a --write FILE needs its
 * directory to exist; a --write-split DIR is created (one level, mode 0755)
 * when its parent exists. Never `mkdir -p`: it would make `/nonexistent-dir`
 * at the root for a typo, and Node's recursive mkdirSync loops for ever when
 * mkdir keeps failing with ENOENT under a parent that exists (procfs, sysfs:
 * `/proc/sys/nope`), which once made the daemon spin at 100% CPU.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, SpreadPipeError, errorMessage } from './errors.js';

const fail = (message: string, cause?: unknown): SpreadPipeError => new SpreadPipeError(ErrorCodes.WRITE, message, cause === undefined ? undefined : { cause });

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

/** What is wrong with `dir` as a directory to write in, or undefined when it is one. */
function dirProblem(dir: string): string | undefined {
  try {
    if (!fs.statSync(dir).isDirectory()) return `${dir} is not a directory`;
    return undefined;
  } catch (e) {
    return code(e) === 'ENOENT' ? `directory ${dir} does not exist` : `cannot use directory ${dir}: ${errorMessage(e)}`;
  }
}

/** Open `file` for appending (creating it, not its directory): it will take writes. Throws SP_ERR_WRITE. */
export function checkLogFile(file: string): void {
  const dir = path.dirname(path.resolve(file));
  const problem = dirProblem(dir);
  if (problem) throw fail(`${problem} (create it first: spread-pipe creates no parent directory)`);
  try {
    fs.closeSync(fs.openSync(file, 'a', 0o644));
  } catch (e) {
    throw fail(`cannot open ${file} for appending: ${errorMessage(e)}`, e);
  }
}

/**
 * Make sure `dir` exists (created when its parent does) and takes new files:
 * a hidden probe file is created and removed (root passes access(2) on a
 * read-only procfs directory, so only trying tells). Throws SP_ERR_WRITE.
 */
export function checkLogDir(dir: string): void {
  const parent = path.dirname(path.resolve(dir));
  let exists = true;
  try {
    if (!fs.statSync(dir).isDirectory()) throw fail(`${dir} is not a directory`);
  } catch (e) {
    if (e instanceof SpreadPipeError) throw e;
    if (code(e) !== 'ENOENT') throw fail(`cannot use directory ${dir}: ${errorMessage(e)}`, e);
    exists = false;
  }
  if (!exists) {
    const problem = dirProblem(parent);
    if (problem) throw fail(`${problem} (spread-pipe creates ${dir} itself, not its parents)`);
    try {
      fs.mkdirSync(dir, { mode: 0o755 });
    } catch (e) {
      if (code(e) !== 'EEXIST') throw fail(`cannot create directory ${dir}: ${errorMessage(e)}`, e);
    }
  }
  // A leading dot: no host tag maps to it (safeFileName), so it never meets a log file.
  const probe = path.join(dir, `.spread-pipe-check-${process.pid}`);
  try {
    fs.closeSync(fs.openSync(probe, 'wx', 0o644));
    fs.rmSync(probe, { force: true });
  } catch (e) {
    throw fail(`cannot create files in directory ${dir}: ${errorMessage(e)}`, e);
  }
}
