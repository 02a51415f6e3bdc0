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

/** @type {import('jest').Config} */
module.exports = {
  // Integration tests count and digest whole tables of one shared database: one test file at a time.
  maxWorkers: 1,
  testTimeout: 60_000,
  // Service and dev-server logs go to files; a failing test file gets its part of them printed.
  reporters: ['default', '<rootDir>/tests/helpers/log-reporter.js'],
  projects: [
    // Pure code: no Postgres, no Temporal, no global set-up (`npm run test:unit`).
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/tests/unit/**/*.test.ts'] },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/integration/**/*.test.ts', '<rootDir>/tests/replay/**/*.test.ts'],
      // One shared Temporal dev server, database and workflow bundle for the whole run.
      globalSetup: '<rootDir>/tests/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/tests/helpers/global-teardown.ts',
      // Every answer from the service is checked against its OpenAPI document.
      setupFilesAfterEnv: ['<rootDir>/tests/helpers/contract.ts'],
    },
  ],
};
