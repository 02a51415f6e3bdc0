/**
 * Prints what a failing test file's service, SDK and dev server wrote to the run's log files
 * (helpers/run-logs.ts): the bytes added while that file ran (files run one at a time), and nothing
 * for a file that passes. Plain JavaScript: jest loads reporters without transforming them.
 */
const { closeSync, existsSync, openSync, readSync, readdirSync, statSync } = require('node:fs');
const path = require('node:path');

/** At most this much of each log per failing file: the end, where the failure is. */
const MAX_BYTES = 256 * 1024;

class RunLogReporter {
  constructor() {
    this.offsets = new Map();
  }

  logs() {
    const dir = process.env.FEES_TEST_TMP && path.join(process.env.FEES_TEST_TMP, 'logs');
    if (!dir || !existsSync(dir)) return new Map();
    return new Map(readdirSync(dir).map((name) => [path.join(dir, name), statSync(path.join(dir, name)).size]));
  }

  onTestFileStart(test) {
    this.offsets.set(test.path, this.logs());
  }

  onTestFileResult(test, result) {
    const before = this.offsets.get(test.path) ?? new Map();
    this.offsets.delete(test.path);
    if (result.numFailingTests === 0 && !result.testExecError) return;
    for (const [file, size] of this.logs()) {
      const from = Math.max(before.get(file) ?? 0, size - MAX_BYTES);
      if (size <= from) continue;
      const text = Buffer.alloc(size - from);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, text, 0, text.length, from);
      } finally {
        closeSync(fd);
      }
      const name = path.relative(process.cwd(), test.path);
      process.stderr.write(
        `\n----- ${path.basename(file)} while ${name} ran -----\n${text.toString('utf8')}\n----- end of ${path.basename(file)} -----\n`,
      );
    }
  }
}

module.exports = RunLogReporter;
