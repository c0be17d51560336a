/**
 * What every mode of the CLI shares: the program name on every stderr line,
 * exit codes, and turning a bad option into a usage error (exit 2).
 */
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';

export const PROGRAM = 'spread-pipe';

/** Exit codes, documented in --help and README. */
export const EXIT_OK = 0;
/** Runtime failure (daemon unreachable for `tail`, listen failed, ...). */
export const EXIT_FAILURE = 1;
/** Bad command line: nothing was started and stdin was not read. */
export const EXIT_USAGE = 2;

/** One line to stderr, prefixed with the program name. */
export function log(line: string): void {
  process.stderr.write(`${PROGRAM}: ${line}\n`);
}

export class UsageError extends SpreadPipeError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_ARGUMENT, message);
  }
}

/** Run `fn`, turning any thrown SpreadPipeError into a checked usage error. */
export function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(errorMessage(e));
  }
}

/** At most one report line (drops, refused connections) per kind per this many ms: pipe mode and the daemon. @default 10000 */
export const DEFAULT_REPORT_INTERVAL = 10_000;

export const EPILOGUE = `Exit status: 0 done, 1 runtime failure, 2 usage error (nothing started).`;

/** yargs fail handler: one clear line and exit 2 instead of yargs' help dump and exit 1. */
export function failUsage(msg: string | null, err: Error | undefined): never {
  if (err instanceof UsageError) throw err;
  const text = (msg ?? err?.message ?? 'bad arguments').replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ');
  throw new UsageError(`${text} (see --help)`);
}
