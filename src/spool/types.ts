/** What the parts of a spool (../spool.ts) share: records, counters, events. */

export interface SpoolRecord {
  readonly id: number;
  readonly data: Buffer;
  /** Opaque routing text stored with the record (the publisher's group list). */
  readonly route: string | undefined;
}

export interface SpoolStats {
  appended: number;
  /** Records deleted unread to stay under maxBytes. */
  dropped: number;
  /** Records deleted to stay under maxBytes after they were read but before they were acknowledged. */
  droppedUnacked: number;
  droppedBytes: number;
  /** Records skipped as torn or corrupt (check, length, segment header), or missing after a failed write. */
  corrupt: number;
  /** Bytes of a torn tail cut off at open. */
  tornBytes: number;
  writeErrors: number;
  readFromDisk: number;
}

export type SpoolEvent =
  | { type: 'drop'; records: number; unacked: number; bytes: number }
  | { type: 'corrupt'; file: string; records: number; reason: string }
  | { type: 'error'; message: string };

export const newStats = (): SpoolStats => ({ appended: 0, dropped: 0, droppedUnacked: 0, droppedBytes: 0, corrupt: 0, tornBytes: 0, writeErrors: 0, readFromDisk: 0 });

/** How a part reports to its spool: the counters it keeps, its events. */
export interface SpoolSink {
  readonly stats: SpoolStats;
  event(e: SpoolEvent): void;
  /** A write error: reported once while it lasts (a broken disk fails every append). */
  fail(message: string): void;
  /** A write succeeded: the next error is news again. */
  ok(): void;
}
