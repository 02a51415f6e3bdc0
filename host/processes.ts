/** Small helpers for the child servers the host starts, or adopts after a crash. */
import { readFileSync } from 'node:fs';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie has exited already; only its parent's wait is missing, and that parent may be us.
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: kill(0) is all we know
  }
}

/**
 * Signals a process and waits until it has exited; after `killAfterMs`, if given, it gets SIGKILL
 * (a server that hangs while shutting down must not outlive the run that started it).
 */
export async function stopProcess(pid: number, signal: NodeJS.Signals, killAfterMs?: number): Promise<void> {
  if (!isAlive(pid)) return;
  send(pid, signal);
  let killAt = killAfterMs === undefined ? Infinity : Date.now() + killAfterMs;
  while (isAlive(pid)) {
    if (Date.now() > killAt) {
      send(pid, 'SIGKILL');
      killAt = Infinity;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function send(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // It exited since we looked: what the signal was for.
  }
}
