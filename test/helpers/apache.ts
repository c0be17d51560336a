/** Real Apache httpd from Debian in the foreground, with spread-pipe as its piped logger (tests in test/e2e). */
import fs from 'node:fs';
import path from 'node:path';
import { describe } from 'vitest';
import { freePort, waitForTcp } from './daemons.js';
import { CLI, startProcess, tempDir } from './process.js';

export const APACHE = '/usr/sbin/apache2';
export const MODULES = '/usr/lib/apache2/modules';
export const apachePresent = fs.existsSync(APACHE);
// In CI apache2 is installed by .ci/run: a missing binary there is a failure, not a skip.
export const runApache = apachePresent || process.env.CI ? describe : describe.skip;

/** Start Apache in the foreground with `pipeArgs` as its piped logger; returns the base URL and paths. */
export async function startApache(pipeArgs: string[]): Promise<{ url: string; dir: string; stop: () => Promise<void> }> {
  const dir = tempDir('spread-pipe-apache-');
  fs.chmodSync(dir, 0o755); // the workers run as www-data
  fs.mkdirSync(path.join(dir, 'htdocs'));
  fs.writeFileSync(path.join(dir, 'htdocs', 'index.html'), 'hello\n');
  const port = await freePort();
  const pipe = [process.execPath, CLI, ...pipeArgs].join(' ');
  const user = process.getuid?.() === 0 ? 'User www-data\nGroup www-data\n' : '';
  fs.writeFileSync(
    path.join(dir, 'httpd.conf'),
    `ServerRoot ${dir}
ServerName localhost
Listen 127.0.0.1:${port}
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule dir_module ${MODULES}/mod_dir.so
${user}PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
DefaultRuntimeDir ${dir}
Mutex file:${dir}
DocumentRoot ${dir}/htdocs
<Directory ${dir}/htdocs>
  Require all granted
</Directory>
LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined
CustomLog ${dir}/access.log combined
CustomLog "|${pipe}" combined
`,
  );
  const httpd = startProcess(APACHE, ['-d', dir, '-f', path.join(dir, 'httpd.conf'), '-DFOREGROUND'], { stdin: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitForTcp(port, 15_000, () => `apache: ${httpd.stderr()}`);
  return {
    url,
    dir,
    stop: async () => {
      httpd.kill('SIGTERM');
      await httpd.exited;
    },
  };
}

