// Preloaded with `node --require`: notes every load of the TypeScript compiler or the schema
// generator (ESM imports of a CommonJS package go through Module._load too), and at exit writes
// what was loaded to PROBE_OUT. tests/unit/api-artifacts.test.ts runs the server under it.
const Module = require('node:module');
const { writeFileSync } = require('node:fs');

const WATCHED = /^(typescript|ts-json-schema-generator)(\/|$)/;
const loaded = new Set();
const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (WATCHED.test(request)) loaded.add(`${request} (from ${parent && parent.filename})`);
  return load.call(this, request, parent, isMain);
};
process.on('exit', () => {
  const cached = Object.keys(require.cache).filter((f) => /[\\/]node_modules[\\/](typescript|ts-json-schema-generator)[\\/]/.test(f));
  writeFileSync(process.env.PROBE_OUT, JSON.stringify({ loaded: [...loaded], cached }));
});
