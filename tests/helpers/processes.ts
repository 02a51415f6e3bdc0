/**
 * Other processes, the two ways tests use them: a command run to its end (the `npm run keys`,
 * `reconcile` and `bench` scripts as an operator runs them, the Temporal CLI, pgrep), and a
 * long-running process (`npm start`, `npm run worker`) started, waited for by what it prints,
 * and stopped by a signal.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { suiteEncryptionEnv } from './encryption';

export const ROOT = path.resolve(__dirname, '..', '..');

/** How a command ended, and what it printed. */
export interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** The whole environment (the test's own by default). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (and the run rejected, with its output) past this long. */
  timeoutMs?: number;
}

/**
 * A command run to its end. A non-zero exit is an outcome, not an error: the test asserts the code,
 * and a failing command shows its output in the assertion. Rejects only when the command could
 * not run at all or ran past its timeout.
 */
export function runCommand(file: string, args: string[], opts: RunOptions = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        cwd: opts.cwd ?? ROOT,
        env: { ...(opts.env ?? process.env), ...suiteEncryptionEnv() },
        timeout: opts.timeoutMs ?? 0,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        if (typeof err.code === 'number' && !err.killed) return resolve({ code: err.code, stdout, stderr });
        reject(new Error(`${path.basename(file)} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      },
    );
  });
}

/**
 * One of this repository's TypeScript entry points (`host/keys.ts`, `host/reconcile.ts`,
 * `bench/run.ts`) as npm runs it: node with tsx's loader, from the repository root. `env` is added
 * to the test's own environment.
 */
export function runScript(
  script: string,
  args: string[] = [],
  env: Record<string, string | undefined> = {},
  opts: Omit<RunOptions, 'env'> = {},
): Promise<Finished> {
  return runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, script), ...args], { ...opts, env: { ...process.env, ...env } });
}

/** A process started by startProcess. */
export interface Running {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr as they came. */
  output: () => string;
  /** Its exit code, or null when a signal ended it. */
  exited: Promise<number | null>;
  /**
   * Resolves as soon as its output holds `text` (also when it already does); rejects, with the
   * output, when the process exits first or `timeoutMs` passes.
   */
  waitFor: (text: string | RegExp, timeoutMs?: number) => Promise<void>;
  /** Sends `signal` and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export interface StartOptions {
  /** The whole environment: a service gets only what it is given, as a fresh shell would give it. */
  env: NodeJS.ProcessEnv;
  /** node's own flags before tsx's loader (`--max-old-space-size=...`). */
  nodeArgs?: string[];
  /**
   * In a process group of its own, signalled as one (as a terminal signals its foreground group on
   * Ctrl-C): what a supervisor that re-executes itself must survive.
   */
  group?: boolean;
}

/**
 * `script` (a TypeScript entry point of this repository) in a process of its own: node itself with
 * tsx's loader, as `npm start` runs it, so signals reach the service directly (the tsx CLI wrapper
 * relays them, and gives up on a child whose event loop is busy).
 */
export function startProcess(script: string, args: string[], opts: StartOptions): Running {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...opts.env, ...suiteEncryptionEnv() },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.group === true,
  });
  let out = '';
  let ended: string | undefined;
  const events = new EventEmitter();
  const append = (d: Buffer) => {
    out += d.toString();
    events.emit('output');
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      ended = code === null ? `signal ${signal}` : `code ${code}`;
      events.emit('exit');
      resolve(code);
    }),
  );

  const waitFor = (text: string | RegExp, timeoutMs = 60_000) =>
    new Promise<void>((resolve, reject) => {
      const seen = () => (typeof text === 'string' ? out.includes(text) : text.test(out));
      const settle = (failure?: string) => {
        clearTimeout(timer);
        events.off('output', onOutput);
        events.off('exit', onExit);
        if (failure) reject(new Error(`${script} ${args.join(' ')} ${failure} before printing ${text}:\n${out}`));
        else resolve();
      };
      const onOutput = () => seen() && settle();
      const onExit = () => settle(`exited (${ended})`);
      const timer = setTimeout(() => settle(`ran ${timeoutMs} ms`), timeoutMs);
      events.on('output', onOutput);
      events.on('exit', onExit);
      if (seen()) settle();
      else if (ended) onExit();
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!ended) {
      if (opts.group) process.kill(-child.pid!, signal);
      else child.kill(signal);
    }
    return exited;
  };
  return { child, output: () => out, exited, waitFor, stop };
}
