/**
 * `--user NAME[:GROUP]`, the same in every mode: looked up while the
 * command line is checked (an unknown user or group is a usage error), the
 * drop done by the mode once what needs root is open (src/privileges.ts),
 * and pipe mode's warning when it runs as root without it.
 */
import { type Given, type OptTable, usage } from './args.js';
import { log } from './common.js';
import { type TargetUser, checkCanBecome, dropPrivileges, handOver, lookupUser } from '../privileges.js';

export type { TargetUser } from '../privileges.js';

export const USER_OPTIONS = {
  user: {
    type: 'string',
    describe:
      'NAME[:GROUP]: once the listeners (and a missing --spool directory) are made, run as this user and group (its supplementary groups too); exit 1 if the drop fails. Files opened later (logs, the spool) must be writable by that user',
  },
} as const satisfies OptTable;

/** --user looked up and checked: undefined when not given. Unknown names: exit 2; another user without root: exit 1. */
export function parseUser(g: Given): TargetUser | undefined {
  const spec = g.str('user');
  if (spec === undefined) return undefined;
  const target = usage(g.table, () => lookupUser(spec), g.label('user'));
  checkCanBecome(target);
  return target;
}

/** Something made as root that the user must still own after the drop (to remove it at exit). */
export interface Handed {
  path: string;
  /** Keep its group (--syslog-group gave it one). */
  keepGroup?: boolean;
}

/** Drop to `target` (nothing without --user); throws a PRIVILEGES error that stops the mode. */
export function becomeUser(target: TargetUser | undefined, handed: readonly Handed[] = []): void {
  if (!target) return;
  if (process.geteuid?.() === 0) for (const h of handed) handOver(h.path, target, h.keepGroup);
  const now = dropPrivileges(target);
  log(`running as ${target.name}:${target.group} (uid ${now.euid}, gid ${now.egid}, groups ${now.groups.join(',') || '-'})`);
}

/** Pipe mode (and the syslog bridge) talk to the network: as root only when told to stay so. */
export function warnIfRoot(target: TargetUser | undefined): void {
  if (target || process.geteuid?.() !== 0) return;
  log('running as root: a piped logger needs no root rights once started; give --user www-data (the web server\'s user) to drop them');
}
