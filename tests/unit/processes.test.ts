/** The host's process helpers: a server that ignores SIGTERM still ends within the grace period. */
import { spawn } from 'node:child_process';
import { isAlive, stopProcess } from '../../host/processes';

function stubbornChild() {
  // Ignores SIGTERM, like a server stuck in its shutdown.
  const child = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Promise<number>((resolve) => child.stdout.once('data', () => resolve(child.pid!)));
}

it('sends SIGKILL once the grace period is over', async () => {
  const pid = await stubbornChild();
  const t = Date.now();
  await stopProcess(pid, 'SIGTERM', 300);
  expect(isAlive(pid)).toBe(false);
  expect(Date.now() - t).toBeGreaterThanOrEqual(300);
});

it('without a grace period, keeps waiting for the signal to work', async () => {
  const pid = await stubbornChild();
  const stopped = stopProcess(pid, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  expect(isAlive(pid)).toBe(true);
  process.kill(pid, 'SIGKILL');
  await stopped;
  expect(isAlive(pid)).toBe(false);
});
