/**
 * The Encore endpoints and the standalone host must serve the same API. This reads the `api()`
 * declarations from the Encore files with the TypeScript compiler and compares them with the
 * standalone route table, so the two cannot drift apart unnoticed.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { routes } from '../../host/routes';

const root = path.resolve(__dirname, '..', '..');

interface Endpoint {
  method: string;
  path: string;
  expose: boolean;
  auth: boolean;
  /** The scope its handler checks: the first argument of `run(...)` or `checkScope(...)`. */
  scope: string | undefined;
  headers: string[];
}

function scopeIn(node: ts.Node, file: ts.SourceFile): string | undefined {
  let scope: string | undefined;
  const visit = (n: ts.Node) => {
    if (scope) return;
    if (ts.isCallExpression(n) && ['run', 'checkScope'].includes(n.expression.getText(file))) {
      const [first] = n.arguments;
      if (first && ts.isStringLiteral(first)) scope = first.text;
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
  return scope;
}

function literal(obj: ts.ObjectLiteralExpression, name: string): string | boolean | undefined {
  for (const p of obj.properties) {
    if (ts.isPropertyAssignment(p) && p.name.getText() === name) {
      if (ts.isStringLiteral(p.initializer)) return p.initializer.text;
      if (p.initializer.kind === ts.SyntaxKind.TrueKeyword) return true;
      if (p.initializer.kind === ts.SyntaxKind.FalseKeyword) return false;
    }
  }
  return undefined;
}

/** Header names declared with `Header<'Name'>` in a request interface of the file. */
function headersOf(file: ts.SourceFile, typeName: string | undefined): string[] {
  const names: string[] = [];
  file.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node) || node.name.text !== typeName) return;
    for (const member of node.members) {
      const type = ts.isPropertySignature(member) ? member.type : undefined;
      if (type && ts.isTypeReferenceNode(type) && type.typeName.getText(file) === 'Header') {
        const arg = type.typeArguments?.[0];
        if (arg && ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal)) names.push(arg.literal.text);
      }
    }
  });
  return names.sort();
}

function encoreEndpoints(): Endpoint[] {
  const services = readdirSync(root).filter((d) => existsSync(path.join(root, d, 'encore.service.ts')));
  const endpoints: Endpoint[] = [];
  for (const service of services) {
    const file = path.join(root, service, 'api.ts');
    if (!existsSync(file)) continue;
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node) => {
      if (ts.isCallExpression(node) && ['api', 'api.raw'].includes(node.expression.getText(source))) {
        const [options, handler] = node.arguments;
        if (!options || !ts.isObjectLiteralExpression(options)) throw new Error(`${file}: api() options must be a literal`);
        const param = handler && ts.isArrowFunction(handler) ? handler.parameters[0] : undefined;
        const typeName = param?.type && ts.isTypeReferenceNode(param.type) ? param.type.typeName.getText(source) : undefined;
        endpoints.push({
          method: String(literal(options, 'method')),
          path: String(literal(options, 'path')),
          expose: literal(options, 'expose') === true,
          auth: literal(options, 'auth') === true,
          scope: handler ? scopeIn(handler, source) : undefined,
          headers: headersOf(source, typeName),
        });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return endpoints;
}

const key = (e: { method: string; path: string; scope?: string; headers: readonly string[] }) =>
  `${e.method} ${e.path} ${e.scope} [${[...e.headers].sort().join(', ')}]`;

describe('route parity between the Encore layer and the standalone host', () => {
  const encore = encoreEndpoints();

  it('finds the Encore endpoints', () => {
    expect(encore.length).toBeGreaterThanOrEqual(8);
    expect(encore.map((e) => e.path)).toContain('/bills/:billId/invoice');
  });

  it('serves the same methods, paths, scopes and headers in both hosts', () => {
    expect(routes.map(key).sort()).toEqual(encore.map(key).sort());
  });

  it('exposes every Encore endpoint, behind the auth handler, as the standalone host does', () => {
    expect(encore.filter((e) => !e.expose || !e.auth)).toEqual([]);
  });
});

describe('module boundaries', () => {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', '.data', '.git', 'dist'].includes(entry.name)) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) files.push(path.relative(root, full));
    }
  };
  walk(root);
  const importsOf = (file: string) => [...readFileSync(path.join(root, file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]);

  it('imports encore.dev only from the Encore layer files', () => {
    // Each service's request types (requests.ts) carry Encore's validation types: they are Encore layer too.
    const encoreLayer = /^(\w+\/encore\.service\.ts|\w+\/(api|requests)\.ts|bills\/(db|gateway)\.ts|core\/encore\.ts)$/;
    const offenders = files.filter((f) => importsOf(f).some((m) => m.startsWith('encore.dev')) && !encoreLayer.test(f));
    expect(offenders).toEqual([]);
  });

  it('keeps domain modules free of framework imports', () => {
    const domain = files.filter((f) =>
      /^(core\/(money|errors|validate|canonical-json)|bills\/(validation|types|store|line-item-rules|line-item-store)|invoices\/(store|types|invoicing))\.ts$/.test(
        f,
      ),
    );
    expect(domain.length).toBeGreaterThanOrEqual(12);
    const frameworks = /^(encore\.dev|fastify|@temporalio)/;
    expect(domain.filter((f) => importsOf(f).some((m) => frameworks.test(m)))).toEqual([]);
  });

  it('keeps request types out of the domain rules: they take plain values', () => {
    const rules = files.filter((f) =>
      /^(core\/(money|validate)|bills\/(validation|line-item-rules|periods|bill-state)|invoices\/account-rules|webhooks\/validation)\.ts$/.test(
        f,
      ),
    );
    expect(rules).toHaveLength(8);
    expect(rules.filter((f) => importsOf(f).some((m) => /requests$/.test(m)))).toEqual([]);
  });
});
