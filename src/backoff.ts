/**
 * Reconnect delays: an injectable `(attempt, cause) => ms | false` (false:
 * stop trying), by default capped exponential with jitter so that a farm of
 * web servers does not reconnect in lock-step after the log host returns.
 */

export type ReconnectDelay = (attempt: number, cause: unknown) => number | false;

/** @default 200 */
export const DEFAULT_BACKOFF_INITIAL = 200;
/** @default 10000 */
export const DEFAULT_BACKOFF_MAX = 10_000;
/** Fraction of the delay that is random. @default 0.3 */
export const DEFAULT_BACKOFF_JITTER = 0.3;

export interface BackoffOptions {
  /** First delay in ms. @default 200 */
  initial?: number;
  /** Cap in ms. @default 10000 */
  max?: number;
  /** 0..1. @default 0.3 */
  jitter?: number;
  /** Give up after this many attempts. @default Infinity */
  maxAttempts?: number;
  /** Random source, for tests. @default Math.random */
  random?: () => number;
}

/** attempt 1 -> ~initial, doubling up to max; the jitter only shortens the delay. */
export function exponentialBackoff(opts: BackoffOptions = {}): ReconnectDelay {
  const initial = opts.initial ?? DEFAULT_BACKOFF_INITIAL;
  const max = opts.max ?? DEFAULT_BACKOFF_MAX;
  const jitter = opts.jitter ?? DEFAULT_BACKOFF_JITTER;
  const maxAttempts = opts.maxAttempts ?? Infinity;
  const random = opts.random ?? Math.random;
  return (attempt) => {
    if (attempt > maxAttempts) return false;
    const base = Math.min(max, initial * 2 ** Math.min(30, Math.max(0, attempt - 1)));
    return Math.round(base * (1 - jitter * random()));
  };
}
