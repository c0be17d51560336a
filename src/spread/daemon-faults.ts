/**
 * Test faults for the daemon, as a policy object a test creates and gives
 * to SpreadDaemon.start({ faults }); a daemon started without one has no
 * fault switch at all. For other tests (pipe-mode reconnect, failover):
 * - `hang`: accept connections but read nothing and answer nothing, like a
 *   SIGSTOPped daemon; existing sessions stop being read too, so clients'
 *   writes back up. Handshakes do not time out meanwhile. Setting it false
 *   resumes every session.
 * - `refuseHandshake`: a reject code (e.g. REJECT_QUOTA, -3) sent to every new
 *   connection before anything is read; false (the default) to serve normally.
 * - `dropAllSessions()`: cut every session at once, as a daemon crash would.
 */

/** What the policy acts on: the daemon it was given to. */
export interface FaultTarget {
  setPaused(on: boolean): void;
  dropAll(): void;
}

export class DaemonFaults {
  refuseHandshake: false | number = false;
  private hung = false;
  private readonly targets = new Set<FaultTarget>();

  constructor(init: { hang?: boolean; refuseHandshake?: false | number } = {}) {
    this.hung = init.hang ?? false;
    this.refuseHandshake = init.refuseHandshake ?? false;
  }

  get hang(): boolean {
    return this.hung;
  }

  set hang(on: boolean) {
    this.hung = on;
    for (const t of this.targets) t.setPaused(on);
  }

  dropAllSessions(): void {
    for (const t of this.targets) t.dropAll();
  }

  /** The daemon binds itself at start and unbinds at close. */
  attach(t: FaultTarget): () => void {
    this.targets.add(t);
    return () => this.targets.delete(t);
  }
}
