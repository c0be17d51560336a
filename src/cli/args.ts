/**
 * The command line of every mode, read the same way: one table per mode
 * (built from the library's DEFAULT_* constants) gives yargs its options and
 * gives messages their flag names. Every option takes exactly one value
 * (never yargs' greedy `array`): a repeatable one is given again for each
 * value, a single-value one given twice is a usage error, and a word that
 * belongs to no option is a usage error (inside `CustomLog "|..."` a stray
 * word must not become a group). Whole numbers and sizes are checked by
 * the two helpers below, never by Number() (which says NaN).
 */
import yargs, { type Argv, type Options } from 'yargs';
import { SpreadPipeError, errorMessage } from '../errors.js';
import { OptionError } from '../options.js';
import { PROGRAM, UsageError } from './common.js';

export interface OptSpec {
  alias?: string;
  type: 'string' | 'boolean';
  describe: string;
  /** Given once per value, collected in order. */
  repeat?: boolean;
  /** The empty string is a value (otherwise `-s ''` is a usage error). */
  empty?: boolean;
  /** Shown in --help; booleans also get it as their value when absent. */
  default?: string | number | boolean;
  /** The library option it becomes, so that a resolver's OptionError names this flag. */
  field?: string;
}

export type OptTable = Readonly<Record<string, OptSpec>>;

/** The flag as a user reads it in a message: `-g/--group`, `--connect-timeout`. */
export function flagLabel(table: OptTable, name: string): string {
  const a = table[name]?.alias;
  return a ? `-${a}/--${name}` : `--${name}`;
}

function yargsOptions(table: OptTable): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const [name, o] of Object.entries(table)) {
    const describe = o.repeat ? `${o.describe} (repeatable: one value each time)` : o.describe;
    out[name] =
      o.type === 'boolean'
        ? { type: 'boolean', alias: o.alias, describe, default: o.default ?? false }
        : { type: 'string', alias: o.alias, describe, requiresArg: true, defaultDescription: o.default === undefined ? undefined : String(o.default) };
  }
  return out;
}

/** What was given, checked for shape (once, no stray words, no empty values): values are still text. */
export class Given {
  constructor(
    readonly table: OptTable,
    private readonly argv: Record<string, unknown>,
  ) {}

  /** A single-value option, or undefined when absent. */
  str(name: string): string | undefined {
    const v = this.argv[name];
    return v === undefined ? undefined : String(v);
  }

  /** A repeatable option's values, in order. */
  list(name: string): string[] {
    const v = this.argv[name];
    if (v === undefined) return [];
    return (Array.isArray(v) ? v : [v]).map(String);
  }

  bool(name: string): boolean {
    return this.argv[name] === true;
  }

  has(name: string): boolean {
    return this.argv[name] !== undefined;
  }

  label(name: string): string {
    return flagLabel(this.table, name);
  }

  /** A whole number (digits only) or undefined when absent. */
  int(name: string, unit: string): number | undefined {
    const t = this.str(name);
    return t === undefined ? undefined : wholeNumber(t, this.label(name), unit);
  }

  /** A byte size (65536, 64k, 32M, 1G) or undefined when absent. */
  size(name: string): number | undefined {
    const t = this.str(name);
    return t === undefined ? undefined : parseSize(t, this.label(name));
  }
}

/** yargs' own complaints, said in our words with the flag's name. */
function yargsFailure(table: OptTable, msg: string | null, err: Error | undefined): never {
  if (err instanceof UsageError) throw err;
  if (err && !msg) throw err; // not a usage problem: a crash
  const text = (msg ?? 'bad arguments').trim();
  const missing = /^Not enough arguments following: (.+)$/.exec(text);
  if (missing) {
    const key = missing[1]!;
    const name = Object.keys(table).find((n) => n === key || table[n]!.alias === key) ?? key;
    throw new UsageError(`${flagLabel(table, name)} needs a value`);
  }
  const unknown = /^Unknown arguments?: (.+)$/.exec(text);
  if (unknown) {
    const words = unknown[1]!.split(', ');
    throw new UsageError(`unknown option ${words.map((w) => `"${w.length === 1 ? '-' : '--'}${w}"`).join(', ')} (see --help)`);
  }
  throw new UsageError(`${text.replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ')} (see --help)`);
}

/**
 * Parse `args` against `table`. --help prints and returns undefined (the
 * caller exits 0); anything malformed throws a UsageError naming the flag.
 */
export async function parseCommandLine(
  args: string[],
  table: OptTable,
  help: { scriptName: string; usage: string; examples?: Array<[string, string]>; epilogue: string },
): Promise<Given | undefined> {
  checkSwitchValues(args, table);
  let y: Argv = yargs(args)
    .scriptName(help.scriptName)
    .usage(help.usage)
    .options(yargsOptions(table))
    .parserConfiguration({ 'duplicate-arguments-array': true, 'flatten-duplicate-arrays': true, 'greedy-arrays': false, 'camel-case-expansion': false })
    .epilogue(help.epilogue)
    .help('help')
    .version(false)
    .strictOptions()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => yargsFailure(table, msg, err));
  for (const [cmd, what] of help.examples ?? []) y = y.example(cmd, what);
  let helped = false;
  const argv = (await y.parseAsync(args, {}, (_e, _a, out) => {
    if (out) {
      helped = true;
      process.stdout.write(`${out}\n`);
    }
  })) as Record<string, unknown>;
  if (helped || argv.help) return undefined;
  const stray = (argv._ as unknown[]).map(String);
  if (stray.length) {
    // Name what it followed: the option whose value the user thought it continued.
    const at = args.indexOf(stray[0]!);
    const before = at > 0 ? args.slice(Math.max(0, at - 2), at).filter((a, i, all) => a.startsWith('-') || (i > 0 && all[i - 1]!.startsWith('-'))) : [];
    const after = before.length ? ` after "${before.join(' ')}"` : '';
    throw new UsageError(`unexpected argument "${stray[0]}"${after}: every option takes exactly one value (repeat the option for more; quote a value that has spaces)`);
  }
  for (const [name, o] of Object.entries(table)) {
    const v = argv[name];
    if (v === undefined) continue;
    const values = Array.isArray(v) ? v : [v];
    if (o.type === 'boolean') continue; // --x --x and --no-x --x: yargs keeps the last, as users expect of a switch
    if (!o.repeat && values.length > 1) throw new UsageError(`${flagLabel(table, name)} given twice (${values.map((x) => JSON.stringify(String(x))).join(' and ')}): it takes one value`);
    if (!o.empty && values.some((x) => String(x) === '')) throw new UsageError(`${flagLabel(table, name)} needs a value, got an empty string`);
  }
  return new Given(table, argv);
}

/**
 * A switch takes no value, but yargs reads `--batch=x` as false and says nothing: a typo would turn
 * the switch off silently. Only `=true` and `=false` are a switch's values.
 */
function checkSwitchValues(args: string[], table: OptTable): void {
  for (const a of args) {
    if (a === '--') break;
    const m = /^--?(?:no-)?([^=]+)=(.*)$/s.exec(a);
    if (!m) continue;
    const name = Object.keys(table).find((n) => n === m[1] || table[n]!.alias === m[1]);
    if (name && table[name]!.type === 'boolean' && m[2] !== 'true' && m[2] !== 'false') {
      throw new UsageError(`${flagLabel(table, name)} is a switch and takes no value, got ${JSON.stringify(a)}`);
    }
  }
}

/** `--connect-timeout: expected a whole number of milliseconds, got "abc"`. */
export function wholeNumber(text: string, label: string, unit: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t))) throw new UsageError(`${label}: expected a whole number of ${unit}, got ${JSON.stringify(text)}`);
  return Number(t);
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Byte sizes on the command line: 65536, 64k, 64K, 64M, 1G, 64KiB (binary multiples). */
export function parseSize(text: string, label: string): number {
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${label}: expected a size in bytes like 65536, 64k, 32M or 1G, got ${JSON.stringify(text)}`);
  const v = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(v)) throw new UsageError(`${label}: ${JSON.stringify(text)} is too large`);
  return v;
}

/**
 * Run a resolver or parser: an OptionError names the flag its field comes
 * from, any other SpreadPipeError becomes a usage error (prefixed with
 * `label` when given). Anything else is a bug and stays a crash.
 */
export function usage<T>(table: OptTable, fn: () => T, label?: string): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof OptionError) {
      const name = Object.keys(table).find((n) => table[n]!.field === e.option);
      if (name) throw new UsageError(`${flagLabel(table, name)}: ${e.detail}`);
    }
    if (e instanceof SpreadPipeError) throw new UsageError(label ? `${label}: ${errorMessage(e)}` : errorMessage(e));
    throw e;
  }
}

export { PROGRAM };
