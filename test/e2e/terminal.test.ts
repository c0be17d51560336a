/**
 * `top`'s full-screen view in a real terminal (issue #14): tmux runs it in a
 * shell; send-keys types, capture-pane reads the screen. It draws on the
 * alternate screen, switches panels on keys, redraws on resize, and gives the
 * terminal back (primary screen, cursor shown) on `q` and on SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI, defer, feedStdin, startCli, startDaemon, waitFor, withTimeout } from '../helpers.js';
import { accessLines } from '../top/loglines.js';

const TMUX = '/usr/bin/tmux';
const present = fs.existsSync(TMUX);
// In CI tmux is installed by .ci/run: a missing binary there is a failure, not a skip.
const run = present || process.env.CI ? describe : describe.skip;

function tmuxOn(socket: string) {
  const tmux = (...args: string[]): string => execFileSync(TMUX, ['-L', socket, ...args], { encoding: 'utf8', timeout: 10_000 });
  return {
    tmux,
    screen: (): string => tmux('capture-pane', '-p', '-t', 'top'),
    flag: (f: string): string => tmux('display-message', '-p', '-t', 'top', `#{${f}}`).trim(),
  };
}

async function publish(spec: string, lines: string[], host: string): Promise<void> {
  const pub = startCli(['-g', 'web', '-s', spec, '-h', host]);
  await feedStdin(pub, `${lines.join('\n')}\n`);
  expect(await withTimeout(pub.exited, 20_000, 'publisher exit')).toBe(0);
}

run('top in a terminal (#14)', () => {
  it('#14: full screen, keys switch panels, resize redraws, q and SIGTERM restore the terminal', async () => {
    const { spec } = await startDaemon();
    const socket = `spread-pipe-test-${process.pid}`;
    const t = tmuxOn(socket);
    t.tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', '120', '-y', '40', 'sh');
    defer(() => void execFileSync(TMUX, ['-L', socket, 'kill-server'], { stdio: 'ignore' }));
    const cmd = `${process.execPath} ${CLI} top -g web -s ${spec} --interval 200; echo EXIT=$?`;
    t.tmux('send-keys', '-t', 'top', cmd, 'Enter');
    await waitFor(() => t.screen().includes('spread-pipe top'), 10_000, 'the view');
    expect(t.flag('alternate_on')).toBe('1');

    const { lines, heavy } = accessLines(500);
    // Wait for the join (the view's header shows it) before publishing.
    await waitFor(() => t.screen().includes('req/s'), 10_000, 'header');
    await new Promise((r) => setTimeout(r, 500));
    await publish(spec, lines.slice(0, 1000), 'web1');
    await publish(spec, lines.slice(1000), 'web2');
    const total = lines.length;
    await waitFor(() => t.screen().includes(`lines ${total}`), 15_000, `lines ${total} on screen`);
    let screen = t.screen();
    expect(screen).toMatch(/^web1 /m);
    expect(screen).toMatch(/^web2 /m);

    // Panel 2: the top URLs, heaviest first.
    t.tmux('send-keys', '-t', 'top', '2');
    const [firstUrl, firstHits] = [...heavy][0]!;
    await waitFor(() => t.screen().includes(firstUrl), 5000, 'top URLs panel');
    screen = t.screen();
    expect(screen).toMatch(new RegExp(`^\\s+${firstHits}  ${firstUrl.replace(/[.?]/g, '\\$&')}`, 'm'));
    // tab moves on to referrers.
    t.tmux('send-keys', '-t', 'top', 'Tab');
    await waitFor(() => /hits\s+referrer/.test(t.screen()), 5000, 'referrers panel');

    // Resize: the sparkline under the header follows the width.
    const sparkWidth = (): number => (t.screen().split('\n').find((l) => /[▁▂▃▄▅▆▇█]+ req\/s$/.test(l)) ?? '').length;
    expect(sparkWidth()).toBeGreaterThan(100);
    t.tmux('resize-window', '-t', 'top', '-x', '70', '-y', '30');
    await waitFor(() => sparkWidth() > 0 && sparkWidth() <= 70, 5000, 'redraw at 70 columns');

    // q: back on the primary screen with the shell, exit status 0.
    t.tmux('send-keys', '-t', 'top', 'q');
    await waitFor(() => t.screen().includes('EXIT=0'), 5000, 'exit after q');
    expect(t.flag('alternate_on')).toBe('0');
    expect(t.flag('cursor_flag')).toBe('1');

    // SIGTERM restores the terminal too.
    t.tmux('send-keys', '-t', 'top', 'clear', 'Enter');
    t.tmux('send-keys', '-t', 'top', cmd, 'Enter');
    await waitFor(() => t.flag('alternate_on') === '1' && t.screen().includes('spread-pipe top'), 10_000, 'the view again');
    const shell = t.flag('pane_pid');
    const child = execFileSync('pgrep', ['-P', shell], { encoding: 'utf8' }).trim().split('\n')[0]!;
    process.kill(Number(child), 'SIGTERM');
    await waitFor(() => t.screen().includes('EXIT=0'), 10_000, 'exit after SIGTERM').catch((e) => {
      let st = '';
      try {
        st = fs.readFileSync(`/proc/${child}/status`, 'utf8').split('\n').slice(0, 3).join(' ') + ' ' + execFileSync('ps', ['-o', 'pid,ppid,stat,args', '--ppid', shell], { encoding: 'utf8' });
      } catch (x) {
        st = String(x);
      }
      throw new Error(`${e.message}; child ${child} ${st}; screen:\n${t.screen()}`);
    });
    expect(t.flag('alternate_on')).toBe('0');
    expect(t.flag('cursor_flag')).toBe('1');
  });
});
