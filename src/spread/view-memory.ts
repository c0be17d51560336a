/**
 * The ArrayBuffer and byte offset under the last view asked about, for code
 * that makes a view of a range per message. `view.buffer` is a call into the
 * runtime (about 35 ns, as much as making the view itself), and such code
 * sees the same queue block or read chunk for hundreds of messages in a row:
 * the memory is looked up again only when the view changes. Holds that one
 * view alive until another is given.
 */
export class ViewMemory {
  /** The memory under the last view given to of(). */
  mem: ArrayBufferLike = new ArrayBuffer(0);
  /** Where that view starts in `mem`. */
  base = 0;
  private view: Uint8Array | undefined;

  /** Point `mem` and `base` at `view`'s memory. */
  of(view: Uint8Array): void {
    if (view === this.view) return;
    this.view = view;
    this.mem = view.buffer;
    this.base = view.byteOffset;
  }
}
