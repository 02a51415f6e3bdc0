// ESM-only dependencies that jest's module system cannot require (Node itself can): compiled
// to CommonJS for the tests.
const ESM_ONLY = ['content-disposition', 'cookie', '@apidevtools/json-schema-ref-parser'];

const shared = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest'],
    [`/node_modules/(${ESM_ONLY.join('|')})/.+\\.js$`]: ['@swc/jest'],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_ONLY.join('|')})/)`],
};

/** What every project that runs against the real stack shares: one dev server, template database and bundle per run. */
const stack = {
  ...shared,
  globalSetup: '<rootDir>/tests/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/tests/helpers/global-teardown.ts',
  // Each file its own database and log folder; every answer from the service is checked against
  // its OpenAPI document.
  setupFilesAfterEnv: ['<rootDir>/tests/helpers/per-file.ts', '<rootDir>/tests/helpers/contract.ts'],
};

/** @type {import('jest').Config} */
module.exports = {
  // Files run in parallel: each has its own database (helpers/per-file.ts), and the shared dev
  // server and Postgres take the rest of the machine. MAX_WORKERS measured: docs/development.md.
  maxWorkers: Number(process.env.JEST_MAX_WORKERS ?? 3),
  testTimeout: 60_000,
  // Service and SDK logs go to files; a failing test file gets its logs printed.
  reporters: ['default', '<rootDir>/tests/helpers/log-reporter.js'],
  projects: [
    // Pure code: no Postgres, no Temporal, no global set-up (`npm run test:unit`).
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/tests/unit/**/*.test.ts'] },
    {
      ...stack,
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/integration/**/*.test.ts', '<rootDir>/tests/replay/**/*.test.ts'],
    },
    // The fault drills and the benchmark's smoke check, minutes each: `npm run test:drills`.
    { ...stack, displayName: 'drills', testMatch: ['<rootDir>/tests/drills/**/*.test.ts'] },
  ],
};
