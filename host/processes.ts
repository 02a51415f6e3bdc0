/** Small helpers for the child servers the host starts, or adopts after a crash. */

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals a process and waits until it has exited. */
export async function stopProcess(pid: number, signal: NodeJS.Signals): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, signal);
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, 100));
}
