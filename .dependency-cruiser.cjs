/**
 * Import boundaries (`npm run lint`). The folders are layers, each importing only those below it:
 *   core < webhooks < invoices < taxes < customers < usage < bills < temporal < host
 * core is plumbing; webhooks the outbox the features write events to, with its endpoints and
 * delivery workflow; invoices the invoice's whole life after its bill closes; taxes the catalogue
 * of tax rates; customers the buyers bills name (invoices read both by SQL only); bills the bill
 * aggregate with its line items, workflow and use cases; temporal the worker's composition root;
 * host the standalone process. client, scripts (the build), bench and tests sit on top. A cycle,
 * between modules or folders, fails the build.
 */
const LAYERS = ['core', 'webhooks', 'invoices', 'taxes', 'customers', 'usage', 'bills', 'temporal', 'host'];
const ON_TOP = ['client', 'scripts', 'bench', 'tests'];

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `${layer}-imports-nothing-above-it`,
  comment: `${layer}/ may import only ${LAYERS.slice(0, i).join(', ') || 'packages'}; the layers above depend on it, not the other way round.`,
  severity: 'error',
  from: { path: `^${layer}/` },
  to: { path: `^(${[...LAYERS.slice(i + 1), ...ON_TOP].join('|')})/` },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-circular',
      comment: 'A module cycle: split the shared part into a module both can import.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'client-imports-only-types',
      comment: 'The typed client ships alone (dist/client): from the service it takes types and the error shape only.',
      severity: 'error',
      from: { path: '^client/' },
      to: {
        path: '^(bills|invoices|webhooks|customers|taxes|usage|core)/',
        pathNot: '^(bills|invoices|webhooks|customers|taxes|usage)/(types|requests)\\.ts$|^core/errors\\.ts$',
      },
    },
    {
      name: 'no-compiler-at-run-time',
      comment:
        'The service reads what the build derived from the declarations (dist/api); the TypeScript compiler and the schema generator stay in scripts/.',
      severity: 'error',
      from: { path: '^(core|webhooks|invoices|taxes|customers|usage|bills|temporal|host)/' },
      to: { path: '^(scripts/|node_modules/(typescript|ts-json-schema-generator)/)' },
    },
    {
      name: 'domain-rules-take-no-request-types',
      comment:
        'Request types (<service>/requests.ts) are the Encore layer: domain rules take plain values, and the use cases hand them the checked requests.',
      severity: 'error',
      from: {
        path: '^(core/|bills/(validation|line-item-rules|periods|bill-state|types)\\.ts$|invoices/(account-rules|types|tax|document)\\.ts$|customers/(customer-rules|types)\\.ts$|webhooks/(validation|types)\\.ts$)',
      },
      to: { path: '^(bills|invoices|webhooks|customers|taxes)/requests\\.ts$' },
    },
    {
      name: 'not-to-tests-or-bench',
      comment: 'Service code never depends on tests or benchmarks.',
      severity: 'error',
      from: { pathNot: '^(tests|bench)/' },
      to: { path: '^(tests|bench)/' },
    },
  ],
  options: {
    // Packages are leaves of the graph, not left out of it: no-compiler-at-run-time needs to see them.
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|\\.data|\\.scratch)/' },
    // Type-only imports count: a type from a layer above is a dependency on it all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
