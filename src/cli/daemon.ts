/** `spread-pipe --daemon`: placeholder until the built-in daemon lands (issue 4). */
import { EXIT_FAILURE, log } from './common.js';

export async function run(_args: string[]): Promise<number> {
  log('--daemon is not built yet');
  return EXIT_FAILURE;
}
