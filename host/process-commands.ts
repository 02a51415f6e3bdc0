/**
 * The commands of the service's processes, one place for every way they are started: `npm run
 * cluster` runs them natively, the container image runs them as its commands (Dockerfile,
 * deploy/compose.yaml, the Helm chart), and a test holds those equal to these. Paths are relative
 * to the project root, the working directory of each.
 */
export type Role = 'api' | 'worker' | 'migrate' | 'temporal-setup';

/** A worker's heap: the SDK sizes its workflow cache from it (docs/performance.md). */
export const WORKER_HEAP_MB = 1024;

export const PROCESS_COMMANDS: Record<Role, readonly string[]> = {
  api: ['node', '--import', 'tsx', 'host/main.ts', 'api'],
  worker: ['node', `--max-old-space-size=${WORKER_HEAP_MB}`, '--import', 'tsx', 'host/main.ts', 'worker'],
  migrate: ['node', '--import', 'tsx', 'host/main.ts', 'migrate'],
  'temporal-setup': ['node', '--import', 'tsx', 'host/temporal-setup.ts'],
};
