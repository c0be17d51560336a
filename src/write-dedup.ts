/**
 * The daemon's --write / --write-split with --ack publishers: each target (a
 * file, or a directory of per-host files) drops lines it already wrote
 * (dedup.ts) and journals what it writes (seen-journal.ts), so that the lines
 * a publisher sends again after the daemon was killed are not written twice.
 * Messages from plain senders pass through untouched and cost nothing here.
 */
import { DuplicateFilter, type SeenRange } from './dedup.js';
import type { Frame } from './spread/decoder.js';
import { type JournalRecovery, SeenJournal } from './seen-journal.js';
import type { WriteHook } from './writer.js';

interface Note {
  journal: SeenJournal;
  changes: SeenRange[];
}

export interface DedupTarget {
  readonly filter: DuplicateFilter;
  readonly journal: SeenJournal;
  readonly recovery: JournalRecovery;
}

export class WriteDedup implements WriteHook {
  private readonly targets: DedupTarget[] = [];

  /**
   * A target whose state lives in `journalFile`; replays it now (may cut a
   * torn last write of a log file). Its directory must exist: none is made.
   */
  add(journalFile: string): DedupTarget {
    const filter = new DuplicateFilter();
    filter.trackChanges();
    const journal = SeenJournal.open(journalFile, filter);
    const t = { filter, journal, recovery: journal.recovery };
    this.targets.push(t);
    return t;
  }

  /**
   * A tap for `target`: hands on what is new in each message, with the ids it
   * carries as the write note. `append` is the writer's append or appendSplit.
   */
  tap(t: DedupTarget, append: (data: Buffer, note: Note | undefined) => void): (f: Frame) => void {
    return (f) => {
      const kept = t.filter.filter(f.sender, f.messType, f.data);
      if (!kept) return;
      const changes = t.filter.takeChanges();
      append(kept, changes.length ? { journal: t.journal, changes } : undefined);
    };
  }

  beforeWrite(path: string, fd: number, bytes: number, notes: unknown[]): void {
    // Usually one target per file; a file written by two targets gets one record each.
    const byJournal = new Map<SeenJournal, SeenRange[]>();
    for (const n of notes as Note[]) {
      const list = byJournal.get(n.journal);
      if (list) list.push(...n.changes);
      else byJournal.set(n.journal, [...n.changes]);
    }
    for (const [j, changes] of byJournal) j.record(path, fd, bytes, changes);
  }

  afterFlush(): void {
    for (const t of this.targets) t.journal.maybeCompact();
  }

  close(): void {
    for (const t of this.targets) t.journal.close();
  }

  /** Duplicate lines dropped, over all targets. */
  get duplicates(): number {
    let n = 0;
    for (const t of this.targets) n += t.filter.stats.duplicateLines;
    return n;
  }
}
