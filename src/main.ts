#!/usr/bin/env node
/**
 * CLI wiring only: pick the mode from argv and hand over to its module.
 *   spread-pipe [options]            pipe mode: stdin lines (and --syslog) to Spread groups
 *   spread-pipe tail [options]       subscriber: print what arrives on groups
 *   spread-pipe write [options]      central log writer on any Spread daemon (spreadlogd's place)
 *   spread-pipe top [options]        subscriber: live view of the farm (terminal, JSON, web page)
 *   spread-pipe --daemon [options]   built-in minimal Spread daemon
 *
 * Exit status: a UsageError (a bad command line) is 2 with one line; any
 * other SpreadPipeError (a daemon unreachable, a port taken, a spool that
 * cannot be written) is 1 with one line; anything else is a bug: 1 with its
 * stack, never passed off as a usage error.
 */
import { EXIT_FAILURE, EXIT_USAGE, UsageError, log } from './cli/common.js';
import { SpreadPipeError, errorMessage } from './errors.js';
import { VERSION } from './version.js';

type Mode = 'pipe' | 'tail' | 'write' | 'top' | 'daemon';

function pickMode(args: string[]): { mode: Mode; rest: string[] } {
  if (args[0] === 'tail') return { mode: 'tail', rest: args.slice(1) };
  if (args[0] === 'write') return { mode: 'write', rest: args.slice(1) };
  if (args[0] === 'top') return { mode: 'top', rest: args.slice(1) };
  if (args.includes('--daemon')) return { mode: 'daemon', rest: args.filter((a) => a !== '--daemon') };
  return { mode: 'pipe', rest: args };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const { mode, rest } = pickMode(args);
  // Every mode answers --version (`spread-pipe tail --version`, `spread-pipe --daemon --version`).
  if (rest.includes('--version') || rest.includes('-V')) {
    process.stdout.write(`spread-pipe ${VERSION}\n`);
    return 0;
  }
  const mod =
    mode === 'tail'
      ? await import('./cli/tail.js')
      : mode === 'write'
        ? await import('./cli/write.js')
        : mode === 'top'
          ? await import('./cli/top.js')
        : mode === 'daemon'
          ? await import('./cli/daemon.js')
          : await import('./cli/pipe.js');
  return mod.run(rest);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof SpreadPipeError) {
      log(errorMessage(e));
      process.exitCode = e instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
    } else {
      log(`internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exitCode = EXIT_FAILURE;
    }
  },
);
