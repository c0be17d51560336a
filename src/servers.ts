/**
 * The ordered list of daemons (nats.js servers.ts style): try them in order,
 * fail over to the next, and know when we are away from the first one so
 * the publisher can fail back to it when it returns.
 */
import type { DaemonAddress } from './spread/address.js';

export class DaemonList {
  private i = 0;

  constructor(readonly daemons: readonly DaemonAddress[]) {
    if (daemons.length === 0) throw new RangeError('at least one daemon is needed');
  }

  get current(): DaemonAddress {
    return this.daemons[this.i]!;
  }

  get index(): number {
    return this.i;
  }

  get primary(): DaemonAddress {
    return this.daemons[0]!;
  }

  /** Connected somewhere other than the first daemon: fail-back is worth probing. */
  get onSecondary(): boolean {
    return this.i !== 0;
  }

  /** Move to the next daemon after a failure; `wrapped` is true when a full pass over the list ended. */
  next(): { daemon: DaemonAddress; wrapped: boolean } {
    this.i = (this.i + 1) % this.daemons.length;
    return { daemon: this.current, wrapped: this.i === 0 };
  }

  /** Back to the first daemon (fail-back succeeded). */
  reset(): void {
    this.i = 0;
  }
}
