/**
 * The project's root directory, where `encore.app` is: the migrations and the workflow sources are
 * found from it. Not from `__dirname`, which Encore's ES module bundle does not have, nor from
 * `import.meta`, which the CommonJS of tsx and jest does not: from the working directory (npm
 * scripts, `encore run` and the tests all run in the root) or else the started script's directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** This project's root: encore.app beside a package.json that names this package (not another app's). */
function isOurRoot(dir: string): boolean {
  if (!existsSync(path.join(dir, 'encore.app')) || !existsSync(path.join(dir, 'package.json'))) return false;
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

function findUp(from: string): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (isOurRoot(dir)) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

const PACKAGE_NAME = 'fees-api';

let root: string | undefined;

export function appRoot(): string {
  root ??= findUp(process.cwd()) ?? (process.argv[1] ? findUp(path.dirname(process.argv[1])) : undefined);
  if (!root)
    throw new Error(`cannot find the project root (the directory with encore.app) from ${process.cwd()}; run from inside the project`);
  return root;
}
