/**
 * --spool in the publisher, on the sending side: when the spool may forget
 * lines. With --ack, once they are acknowledged; without, once the messages
 * that carried them were handed to the kernel (FlushTracker), checked now
 * and then while a session lives and when it ends. What a crash leaves
 * uncommitted is sent again by the next spread-pipe on the same spool. The
 * --ack stream name lives in the spool's meta, so that a restart goes on
 * with the same stream.
 */
import { type Spool } from './spool.js';
import { FlushTracker } from './spool-queue.js';
import { type SpreadClient } from './spread/client.js';

/** ms between checks of what the session has handed to the kernel. */
const FLUSH_CHECK_INTERVAL = 200;

export class SpoolCommits {
  /** Without --ack: which spooled lines reached the kernel. */
  private readonly flushes: FlushTracker | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly spool: Spool,
    acked: boolean,
  ) {
    if (!acked) this.flushes = new FlushTracker();
  }

  /** The --ack stream name kept in the spool. */
  get stream(): string | undefined {
    return this.spool.meta.stream as string | undefined;
  }

  set stream(name: string | undefined) {
    if (this.spool.meta.stream !== name) this.spool.setMeta({ ...this.spool.meta, stream: name });
  }

  /** --ack: every line below `below` is acknowledged. */
  acked(below: number): void {
    this.spool.commit(below);
  }

  /** Without --ack: a message of spooled lines left the queue for good (sent, or rejected: never to be sent again). */
  settled(m: { readonly id: number | undefined; readonly lines: number }): void {
    if (this.flushes && m.id !== undefined) this.flushes.sent(m.id + m.lines);
  }

  /** A new session: watch what it hands to the kernel. */
  attach(c: SpreadClient): void {
    if (!this.flushes) return;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.flushedBy(c), FLUSH_CHECK_INTERVAL);
    this.timer.unref();
  }

  /** The session is left (fail-back, close): stop watching it. */
  left(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The session closed under us: what it held is out of the process or counted lost, so the spool may forget it. */
  lost(): void {
    this.left();
    const handed = this.flushes?.reset();
    if (handed !== undefined) this.spool.commit(handed);
  }

  /** Forget the lines that session `c` has handed to the kernel. */
  flushedBy(c: SpreadClient): void {
    const end = this.flushes?.flushed(c);
    if (end !== undefined) this.spool.commit(end);
  }
}
