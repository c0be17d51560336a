/**
 * The checks every `resolve...Options()` is made of (nats.js parseOptions,
 * undici's constructors): fill a default, check a whole number against its
 * bounds, check a choice. A bad value throws an OptionError, a
 * SpreadPipeError with code INVALID_ARGUMENT (or, for a name or address,
 * the code of the check it failed: ILLEGAL_NAME, ILLEGAL_SPREAD) that also says which option
 * (the library's name for it) and, separately, what is wrong: the CLI then
 * names its own flag (`--connect-timeout`) instead of `connectTimeout`.
 */
import { type ErrorCode, ErrorCodes, SpreadPipeError } from './errors.js';

export class OptionError extends SpreadPipeError {
  constructor(
    /** The option as the library names it, e.g. `connectTimeout`. */
    readonly option: string,
    /** What is wrong, without the option's name: `must be at least 1, got 0`. */
    readonly detail: string,
    /** INVALID_ARGUMENT, or the more precise code of the check it came from (ILLEGAL_NAME, ...). */
    code: ErrorCode = ErrorCodes.INVALID_ARGUMENT,
  ) {
    super(code, `${option}: ${detail}`);
    this.name = 'OptionError';
  }
}

export interface IntBounds {
  min?: number;
  max?: number;
  /** Plural noun for messages: "milliseconds", "bytes", "lines". */
  unit?: string;
}

/** `value` or its default, checked to be a whole number inside the bounds. */
export function intOption(option: string, value: number | undefined, def: number, b: IntBounds = {}): number {
  const v = value ?? def;
  const unit = (n: number): string => (b.unit ? ` ${n === 1 ? b.unit.replace(/s$/, '') : b.unit}` : '');
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new OptionError(option, `expected a whole number${b.unit ? ` of ${b.unit}` : ''}, got ${JSON.stringify(v)}`);
  if (b.min !== undefined && v < b.min) throw new OptionError(option, `must be at least ${b.min}${unit(b.min)}, got ${v}`);
  if (b.max !== undefined && v > b.max) throw new OptionError(option, `must be at most ${b.max}${unit(b.max)}, got ${v}`);
  return v;
}

/** `value` or its default, checked to be one of `choices`. */
export function choiceOption<T extends string>(option: string, value: T | undefined, def: T, choices: readonly T[]): T {
  const v = value ?? def;
  if (!choices.includes(v)) throw new OptionError(option, `expected one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

/** Run a validator that throws SpreadPipeErrors of its own, as the check of `option`. */
export function checked<T>(option: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof OptionError) throw e;
    if (e instanceof SpreadPipeError) throw new OptionError(option, e.message, e.code);
    throw e;
  }
}

/** Run another class's resolver, reporting its options under this class's names (`maxLines` -> `queueLines`). */
export function renamed<T>(names: Readonly<Record<string, string>>, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof OptionError && names[e.option]) throw new OptionError(names[e.option]!, e.detail, e.code);
    throw e;
  }
}
