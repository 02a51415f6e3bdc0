/**
 * Prints the logs of a failing test file (helpers/run-logs.ts), and nothing for a file that
 * passes: what its service, SDK and child processes wrote to the file's own folder (files run in
 * parallel, each with its own), and the part of the run's shared logs (the dev server's) written
 * while it ran, which may hold lines of files that ran beside it. Plain JavaScript: jest loads
 * reporters without transforming them.
 */
const { closeSync, existsSync, openSync, readSync, readdirSync, statSync } = require('node:fs');
const path = require('node:path');

/** At most this much of each log per failing file: the end, where the failure is. */
const MAX_BYTES = 256 * 1024;

/** The folder name helpers/per-file.ts gives a test file's logs. */
const slugOf = (file) => path.relative(path.resolve(__dirname, '..'), file).replace(/[^A-Za-z0-9]+/g, '-');

const logsDir = () => process.env.FEES_TEST_TMP && path.join(process.env.FEES_TEST_TMP, 'logs');

/** The log files directly in `dir`, with their sizes. */
function logsIn(dir) {
  if (!dir || !existsSync(dir)) return new Map();
  return new Map(
    readdirSync(dir)
      .filter((name) => name.endsWith('.log'))
      .map((name) => [path.join(dir, name), statSync(path.join(dir, name)).size]),
  );
}

function tail(file, from, size) {
  const start = Math.max(from, size - MAX_BYTES);
  if (size <= start) return '';
  const text = Buffer.alloc(size - start);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, text, 0, text.length, start);
  } finally {
    closeSync(fd);
  }
  return text.toString('utf8');
}

class RunLogReporter {
  constructor() {
    this.offsets = new Map();
  }

  onTestFileStart(test) {
    this.offsets.set(test.path, logsIn(logsDir()));
  }

  onTestFileResult(test, result) {
    const shared = this.offsets.get(test.path) ?? new Map();
    this.offsets.delete(test.path);
    if (result.numFailingTests === 0 && !result.testExecError) return;
    const name = path.relative(process.cwd(), test.path);
    const own = logsIn(logsDir() && path.join(logsDir(), slugOf(test.path)));
    const print = (file, from, size, what) => {
      const text = tail(file, from, size);
      if (text)
        process.stderr.write(
          `\n----- ${path.basename(file)}${what} while ${name} ran -----\n${text}\n----- end of ${path.basename(file)} -----\n`,
        );
    };
    for (const [file, size] of own) print(file, 0, size, '');
    for (const [file, size] of logsIn(logsDir())) print(file, shared.get(file) ?? 0, size, ' (shared by the files running beside it)');
  }
}

module.exports = RunLogReporter;
