/**
 * What every mode of the CLI shares: the program name on every stderr line,
 * exit codes, and the usage error (exit 2).
 */
import { ErrorCodes, SpreadPipeError } from '../errors.js';

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

export const EPILOGUE = `Every option takes one value; repeat a repeatable option for each value. A single-value option given twice, or a word that belongs to no option, is a usage error.
Exit status: 0 done, 1 runtime failure, 2 usage error (nothing started, stdin not read).`;

/** At most one report line (drops, refused connections) per kind per this many ms: pipe mode and the daemon. @default 10000 */
export const DEFAULT_REPORT_INTERVAL = 10_000;

/** Where the other modes and the version are found, for every mode's --help. */
export const MODES = `Modes: ${PROGRAM} [options] (pipe mode), ${PROGRAM} tail --help, ${PROGRAM} write --help, ${PROGRAM} top --help, ${PROGRAM} --daemon --help; ${PROGRAM} --version.`;

/**
 * Spread's `PORT` alone means the unix socket /tmp/PORT on this machine,
 * which a web server rarely has: said once when it cannot be reached.
 */
export function localSocketHint(address: { kind: string; label: string }, given: boolean): string {
  if (address.kind !== 'unix' || !/^\d+$/.test(address.label)) return '';
  const p = address.label;
  return ` (${given ? `-s ${p}` : `no -s was given, so the default ${p}`} means the unix socket /tmp/${p} on this machine; for a daemon on another machine give -s ${p}@HOST)`;
}
