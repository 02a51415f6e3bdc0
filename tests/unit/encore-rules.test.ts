/**
 * The Encore layer against the rules of Encore's own parser, which reads the app statically before
 * `encore run` starts it and refuses constructs TypeScript accepts. Each rule names the lines of
 * encoredev/encore it encodes, read at tag v1.58.2 (5d7021ef), the newest tag the mirror had for our
 * `encore.dev` 1.58.6 pin: its runtimes/js/encore.dev sources are byte-identical to the package's,
 * and the parser ships in the Encore CLI, so check these again when either moves. Each rule is also
 * run against the code as it was before it held (BEFORE below), to show it would have caught it.
 * Running under `encore run` is not verified here: Encore's runtime cannot be installed here.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const root = path.resolve(__dirname, '..', '..');
const rel = (file: string) => path.relative(root, file);

/** The files Encore parses as the app's services: every folder with an encore.service.ts. */
const SERVICES = readdirSync(root).filter((d) => existsSync(path.join(root, d, 'encore.service.ts')));
const serviceFiles = SERVICES.flatMap((d) =>
  readdirSync(path.join(root, d))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(root, d, f)),
);

const parse = (file: string, text = readFileSync(file, 'utf8')) => ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);

function walk(node: ts.Node, visit: (n: ts.Node) => void): void {
  visit(node);
  node.forEachChild((child) => walk(child, visit));
}

const isCallTo = (n: ts.Node, callee: string): n is ts.CallExpression | ts.NewExpression =>
  (ts.isCallExpression(n) || ts.isNewExpression(n)) && n.expression.getText() === callee;

/**
 * Rule 1: the `migrations` option is a LocalRelPath (tsparser/litparser/src/lib.rs:225-234: only
 * `.` and plain names, so no `..` and no root), joined to the declaring file's directory
 * (tsparser/src/parser/resources/infra/sqldb.rs:119-120). The directory is read with read_dir and
 * is_dir, which follow symlinks (sqldb.rs:212-230; the daemon reads each file with os.ReadFile,
 * cli/daemon/sqldb/migrate.go:39-41), and each .sql file must match sqldb.rs:235-236.
 */
function migrationPathViolations(source: ts.SourceFile): string[] {
  const found: string[] = [];
  walk(source, (n) => {
    if (!ts.isNewExpression(n) || n.expression.getText() !== 'SQLDatabase') return;
    const options = n.arguments?.[1];
    if (!options || !ts.isObjectLiteralExpression(options)) return;
    for (const p of options.properties) {
      if (!ts.isPropertyAssignment(p) || p.name.getText() !== 'migrations') continue;
      if (!ts.isStringLiteral(p.initializer)) {
        found.push(`${rel(source.fileName)}: migrations must be a string literal`);
        continue;
      }
      const dir = p.initializer.text;
      if (path.isAbsolute(dir) || dir.split(/[\\/]/).includes('..')) {
        found.push(`${rel(source.fileName)}: migrations path ${dir} leaves the service`);
        continue;
      }
      const full = path.join(path.dirname(source.fileName), dir);
      const files = existsSync(full) && statSync(full).isDirectory() ? readdirSync(full) : [];
      const sql = files.filter((f) => f.endsWith('.sql'));
      if (sql.length === 0) found.push(`${rel(source.fileName)}: no migrations in ${dir}`);
      for (const f of sql)
        if (!/^(\d+)_([^.]+)\.(up|down)\.sql$/.test(f)) found.push(`${rel(source.fileName)}: migration ${f} is not named N_name.up.sql`);
    }
  });
  return found;
}

/**
 * Rule 2: a resource is bound to the nearest enclosing variable declaration
 * (tsparser/src/parser/resources/parseutil.rs:297-320, extract_bind_name): a destructuring is
 * "expected identifier as bind name", and `const deps = () => encoreDeps(SQLDatabase.named(...))`
 * makes `deps` the database, so calling it is "invalid use of database resource"
 * (tsparser/src/parser/resources/infra/sqldb.rs:512-526; passing the bound const as an argument or
 * reading a field of it is allowed). Our rule: the call is the whole initialiser of a top-level
 * `const name`, which can be imported and passed along.
 */
function bindingViolations(source: ts.SourceFile): string[] {
  const found: string[] = [];
  walk(source, (n) => {
    if (!isCallTo(n, 'SQLDatabase.named') && !(ts.isNewExpression(n) && n.expression.getText() === 'SQLDatabase')) return;
    const decl = n.parent;
    const ok =
      ts.isVariableDeclaration(decl) &&
      decl.initializer === n &&
      ts.isIdentifier(decl.name) &&
      ts.isVariableDeclarationList(decl.parent) &&
      (decl.parent.flags & ts.NodeFlags.Const) !== 0 &&
      ts.isVariableStatement(decl.parent.parent) &&
      ts.isSourceFile(decl.parent.parent.parent);
    if (!ok) {
      const { line } = source.getLineAndCharacterOfPosition(n.getStart());
      found.push(`${rel(source.fileName)}:${line + 1}: ${n.getText()} is not bound to a top-level const`);
    }
  });
  return found;
}

/**
 * Rule 3: Encore bundles the app as ES modules (cli/cmd/tsbundler-encore/main.go:112-113,
 * `Format: api.FormatESModule`, run as main.mjs), where `__dirname`, `__filename` and `require` do
 * not exist. None may appear in a module the Encore layer loads.
 */
function commonJsViolations(source: ts.SourceFile): string[] {
  const found: string[] = [];
  walk(source, (n) => {
    if (!ts.isIdentifier(n) || !['__dirname', '__filename', 'require'].includes(n.text)) return;
    // A property named so (obj.require) is not the global.
    if (ts.isPropertyAccessExpression(n.parent) && n.parent.name === n) return;
    const { line } = source.getLineAndCharacterOfPosition(n.getStart());
    found.push(`${rel(source.fileName)}:${line + 1}: ${n.text}`);
  });
  return found;
}

/** Every module the service files load, following relative imports. */
function loadedModules(): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    const real = realpathSync(file);
    if (seen.has(real)) return;
    seen.add(real);
    for (const s of parse(real).statements) {
      if (!(ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) || !s.moduleSpecifier) continue;
      if ((ts.isImportDeclaration(s) && s.importClause?.isTypeOnly) || (ts.isExportDeclaration(s) && s.isTypeOnly)) continue;
      const spec = (s.moduleSpecifier as ts.StringLiteral).text;
      if (!spec.startsWith('.')) continue;
      const target = path.resolve(path.dirname(real), spec);
      const candidates = [`${target}.ts`, path.join(target, 'index.ts'), target];
      const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile());
      if (hit) visit(hit);
    }
  };
  serviceFiles.forEach(visit);
  return [...seen];
}

/**
 * Rule 4: request and response types must be interfaces, and "type index is not supported in
 * schema types" (tsparser/src/app/mod.rs:215-233); `extends` is resolved
 * (tsparser/src/parser/types/type_resolve.rs:1342-1376). Encore would also take a named object
 * type alias; we keep to interfaces.
 */
function endpointTypeViolations(files: string[]): { checked: number; found: string[] } {
  const program = ts.createProgram(files, {
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    module: ts.ModuleKind.Preserve,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
  });
  const checker = program.getTypeChecker();
  const found: string[] = [];
  const check = (file: ts.SourceFile, what: string, type: ts.TypeNode | undefined) => {
    if (!type || !ts.isTypeReferenceNode(type)) return found.push(`${rel(file.fileName)}: ${what} is not a named type`);
    let symbol = checker.getSymbolAtLocation(type.typeName);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    const decl = symbol?.declarations?.[0];
    if (!decl || !ts.isInterfaceDeclaration(decl))
      return found.push(`${rel(file.fileName)}: ${what} ${type.getText()} is not an interface`);
    if (decl.members.some(ts.isIndexSignatureDeclaration))
      found.push(`${rel(file.fileName)}: ${what} ${decl.name.text} has a top-level index signature`);
  };
  let checked = 0;
  for (const fileName of files.filter((f) => f.endsWith('api.ts'))) {
    const file = program.getSourceFile(fileName)!;
    walk(file, (n) => {
      if (!ts.isCallExpression(n) || n.expression.getText() !== 'api') return;
      checked++;
      const handler = n.arguments[1];
      // Only a declared type can be checked here: an endpoint must state its own.
      if (!handler || !ts.isArrowFunction(handler)) return found.push(`${rel(file.fileName)}: handler is not an arrow function`);
      const param = handler.parameters[0];
      if (param) check(file, 'request', param.type);
      const ret = handler.type;
      if (ret && ts.isTypeReferenceNode(ret) && ret.typeName.getText() === 'Promise') check(file, 'response', ret.typeArguments?.[0]);
      else found.push(`${rel(file.fileName)}: response is not declared as Promise<Interface>`);
    });
  }
  return { checked, found };
}

/**
 * What else Encore's parser checks, which holds today and must keep holding: one gateway and one
 * auth handler, bound to consts, inside a service (tsparser/src/legacymeta/mod.rs:484-556,
 * tsparser/src/parser/apis/authhandler.rs:128-129); each encore.service.ts default-exports one
 * unbound `new Service(...)` (tsparser/src/parser/apis/service.rs:47-59, 107-123); `Header<...>`
 * is Encore's, imported from encore.dev/api (tsparser/src/parser/types/type_resolve.rs:1058-1066).
 */
function layoutViolations(sources: ts.SourceFile[]): string[] {
  const found: string[] = [];
  const calls = (callee: string) =>
    sources.flatMap((file) => {
      const hits: ts.Node[] = [];
      walk(file, (n) => {
        if (isCallTo(n, callee)) hits.push(n);
      });
      return hits;
    });
  const boundToConst = (n: ts.Node) => ts.isVariableDeclaration(n.parent) && ts.isIdentifier(n.parent.name);
  const gateways = calls('Gateway');
  const handlers = calls('authHandler');
  if (gateways.length !== 1) found.push(`${gateways.length} gateways`);
  if (handlers.length !== 1) found.push(`${handlers.length} auth handlers`);
  for (const n of [...gateways, ...handlers])
    if (!boundToConst(n)) found.push(`${rel(n.getSourceFile().fileName)}: ${n.getText().slice(0, 30)} is not bound to a const`);
  for (const file of sources.filter((f) => f.fileName.endsWith('encore.service.ts'))) {
    const services = calls('Service').filter((n) => n.getSourceFile() === file);
    const exported = file.statements.some(
      (st) =>
        ts.isExportAssignment(st) &&
        !st.isExportEquals &&
        ts.isNewExpression(st.expression) &&
        st.expression.expression.getText() === 'Service',
    );
    if (services.length !== 1 || !exported) found.push(`${rel(file.fileName)}: must default-export one new Service(...)`);
  }
  for (const file of sources) {
    let usesHeader = false;
    walk(file, (n) => {
      if (ts.isTypeReferenceNode(n) && n.typeName.getText() === 'Header') usesHeader = true;
    });
    const imported = file.statements.some(
      (st) =>
        ts.isImportDeclaration(st) &&
        (st.moduleSpecifier as ts.StringLiteral).text === 'encore.dev/api' &&
        /\bHeader\b/.test(st.importClause?.getText() ?? ''),
    );
    if (usesHeader && !imported) found.push(`${rel(file.fileName)}: Header<...> is not imported from encore.dev/api`);
  }
  return found;
}

/**
 * Rule 5: a path parameter is a string, number or boolean, validated or not
 * (tsparser/src/parser/resources/apis/encoding.rs:528-552, `rewrite_path_types`: `unwrap_validated`,
 * then only Basic String, Boolean or Number). The field's type is taken as written: a named alias
 * (`billId: Id`) is a Named type there, refused as "unsupported path parameter type". A validation
 * type may come through an alias inside the intersection (`string & IdPattern`), which `intersect`
 * resolves (tsparser/src/parser/types/typ.rs:1365-1372, a Named operand).
 */
function pathParamViolations(program: ts.Program, files: string[]): { checked: number; found: string[] } {
  const checker = program.getTypeChecker();
  const resolved = (node: ts.TypeReferenceNode) => {
    let symbol = checker.getSymbolAtLocation(node.typeName);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    return symbol?.declarations?.[0];
  };
  const isValidation = (node: ts.TypeNode): boolean => {
    if (ts.isParenthesizedTypeNode(node)) return isValidation(node.type);
    if (ts.isIntersectionTypeNode(node)) return node.types.every(isValidation);
    if (!ts.isTypeReferenceNode(node)) return false;
    const decl = resolved(node);
    if (!decl) return false;
    if (/[\\/]node_modules[\\/]encore\.dev[\\/]validate[\\/]/.test(decl.getSourceFile().fileName)) return true;
    return ts.isTypeAliasDeclaration(decl) && isValidation(decl.type);
  };
  const BASIC = [ts.SyntaxKind.StringKeyword, ts.SyntaxKind.NumberKeyword, ts.SyntaxKind.BooleanKeyword];
  const allowed = (type: ts.TypeNode | undefined): boolean => {
    if (!type) return false;
    if (BASIC.includes(type.kind)) return true;
    if (!ts.isIntersectionTypeNode(type)) return false;
    const basics = type.types.filter((t) => BASIC.includes(t.kind));
    return basics.length === 1 && type.types.filter((t) => !basics.includes(t)).every(isValidation);
  };
  const found: string[] = [];
  let checked = 0;
  for (const fileName of files) {
    const file = program.getSourceFile(fileName)!;
    walk(file, (n) => {
      if (!ts.isCallExpression(n) || n.expression.getText() !== 'api') return;
      const [options, handler] = n.arguments;
      const pathProp = ts.isObjectLiteralExpression(options)
        ? options.properties.find((p) => ts.isPropertyAssignment(p) && p.name.getText() === 'path')
        : undefined;
      const routePath =
        pathProp && ts.isPropertyAssignment(pathProp) && ts.isStringLiteral(pathProp.initializer) ? pathProp.initializer.text : '';
      const paramType = handler && ts.isArrowFunction(handler) ? handler.parameters[0]?.type : undefined;
      const decl = paramType && ts.isTypeReferenceNode(paramType) ? resolved(paramType) : undefined;
      for (const [, name] of routePath.matchAll(/:(\w+)/g)) {
        checked++;
        const member =
          decl && ts.isInterfaceDeclaration(decl)
            ? decl.members.find((m): m is ts.PropertySignature => ts.isPropertySignature(m) && m.name.getText() === name)
            : undefined;
        if (!allowed(member?.type))
          found.push(`${rel(file.fileName)}: path parameter ${name} is ${member?.type?.getText() ?? 'undeclared'}`);
      }
    });
  }
  return { checked, found };
}

/** The Encore layer as it was before these rules held (copied from the code, to show each rule catches it). */
const BEFORE = {
  db: `export const database = new SQLDatabase('fees', { migrations: '../migrations' });`,
  encoreGlue: `export async function identify(authorization: string | undefined, client: string): Promise<AuthData> {
  const { db } = await encoreDeps(SQLDatabase.named('fees'));
  return authenticate(db, authorization, client);
}`,
  api: `const deps = () => encoreDeps(SQLDatabase.named('fees'));`,
  worker: `export const WORKFLOWS_PATH = path.join(__dirname, 'workflows.ts');`,
  pdf: `const FONT = readFileSync(require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf'));`,
  pathParam: `import { api } from "encore.dev/api";
import type { MatchesRegexp } from "encore.dev/validate";
type Id = string & MatchesRegexp<'^[A-Za-z0-9_.:-]{1,64}$'>;
interface GetBillRequest { billId: Id; }
interface Bill { bill_id: string; }
export const get = api({ expose: true, method: 'GET', path: '/bills/:billId' }, async (req: GetBillRequest): Promise<Bill> => ({ bill_id: req.billId }));`,
};

describe("the Encore layer follows Encore's parser rules", () => {
  const sources = serviceFiles.map((f) => parse(f));

  it('finds the services and their files', () => {
    expect(SERVICES.sort()).toEqual(['bills', 'customers', 'invoices', 'taxes', 'temporal', 'usage', 'webhooks']);
    expect(serviceFiles.map(rel)).toEqual(
      expect.arrayContaining([
        'bills/api.ts',
        'bills/db.ts',
        'bills/gateway.ts',
        'bills/requests.ts',
        'customers/api.ts',
        'customers/requests.ts',
        'invoices/api.ts',
        'invoices/requests.ts',
        'taxes/api.ts',
        'taxes/requests.ts',
        'webhooks/api.ts',
        'webhooks/requests.ts',
      ]),
    );
  });

  it('rule 1: the migrations path stays inside its service and reaches the migrations', () => {
    expect(sources.flatMap(migrationPathViolations)).toEqual([]);
    expect(migrationPathViolations(parse(path.join(root, 'bills', 'db.ts'), BEFORE.db))).toEqual([
      'bills/db.ts: migrations path ../migrations leaves the service',
    ]);
    // The path Encore reads is the project's migrations folder itself (a committed symlink).
    expect(realpathSync(path.join(root, 'bills', 'migrations'))).toBe(realpathSync(path.join(root, 'migrations')));
  });

  it('rule 2: every database handle is bound to a top-level const', () => {
    const loaded = loadedModules().map((f) => parse(f));
    expect(loaded.flatMap(bindingViolations)).toEqual([]);
    expect(bindingViolations(parse(path.join(root, 'core', 'encore.ts'), BEFORE.encoreGlue))).toHaveLength(1);
    expect(bindingViolations(parse(path.join(root, 'invoices', 'api.ts'), BEFORE.api))).toHaveLength(1);
  });

  it('rule 3: no __dirname, __filename or require in any module the Encore layer loads', () => {
    const loaded = loadedModules();
    // The worker's composition root and the invoice PDF are among them (through temporal/encore.service.ts).
    expect(loaded.map(rel)).toEqual(expect.arrayContaining(['temporal/worker.ts', 'core/db.ts', 'invoices/invoice-pdf.ts']));
    expect(loaded.map((f) => parse(f)).flatMap(commonJsViolations)).toEqual([]);
    expect(commonJsViolations(parse(path.join(root, 'temporal', 'worker.ts'), BEFORE.worker))).toEqual(['temporal/worker.ts:1: __dirname']);
    expect(commonJsViolations(parse(path.join(root, 'invoices', 'invoice-pdf.ts'), BEFORE.pdf))).toEqual([
      'invoices/invoice-pdf.ts:1: require',
    ]);
  });

  it('the rest holds: one gateway and auth handler, services default-exported, Header from encore.dev/api', () => {
    expect(layoutViolations(sources)).toEqual([]);
    const replacing = (file: string, text: string) => [
      ...sources.filter((f) => !f.fileName.endsWith(file)),
      parse(path.join(root, file), text),
    ];
    expect(layoutViolations(replacing('bills/encore.service.ts', `const s = new Service('bills');\nexport default s;`))).toEqual([
      'bills/encore.service.ts: must default-export one new Service(...)',
    ]);
    const gateway = readFileSync(path.join(root, 'bills', 'gateway.ts'), 'utf8');
    expect(
      layoutViolations(replacing('bills/gateway.ts', `${gateway}\nexport const second = new Gateway({ authHandler: auth });`)),
    ).toEqual(['2 gateways']);
    expect(
      layoutViolations(replacing('bills/gateway.ts', gateway.replace('export const auth = authHandler', 'export default authHandler'))),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/authHandler.* is not bound to a const/)]));
    expect(layoutViolations(replacing('bills/gateway.ts', gateway.replace(', type Header', '')))).toEqual([
      'bills/gateway.ts: Header<...> is not imported from encore.dev/api',
    ]);
  });

  it('rule 4: endpoint request and response types are interfaces without a top-level index signature', () => {
    const ours = endpointTypeViolations(serviceFiles);
    expect(ours.found).toEqual([]);
    expect(ours.checked).toBeGreaterThanOrEqual(10);
    const bad = path.join(root, 'tests', 'unit', 'fixtures', 'encore-bad-api.ts');
    expect(endpointTypeViolations([bad]).found).toEqual([
      'tests/unit/fixtures/encore-bad-api.ts: request AliasRequest is not an interface',
      'tests/unit/fixtures/encore-bad-api.ts: response Indexed has a top-level index signature',
      'tests/unit/fixtures/encore-bad-api.ts: response is not declared as Promise<Interface>',
    ]);
  });

  it('rule 5: path parameters are strings, validated in the intersection, never through a named alias', () => {
    const apiFiles = serviceFiles.filter((f) => f.endsWith('api.ts'));
    const options = {
      strict: true,
      skipLibCheck: true,
      noEmit: true,
      module: ts.ModuleKind.Preserve,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
    };
    const ours = pathParamViolations(ts.createProgram(apiFiles, options), apiFiles);
    expect(ours.found).toEqual([]);
    expect(ours.checked).toBeGreaterThanOrEqual(20);
    // Before: the id's alias as the parameter's type. Read from a file that is not on disk (it would import encore.dev).
    const before = path.join(root, 'bills', 'before-api.ts');
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, version) =>
      name === before ? ts.createSourceFile(name, BEFORE.pathParam, ts.ScriptTarget.ES2022, true) : getSourceFile(name, version);
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => name === before || fileExists(name);
    expect(pathParamViolations(ts.createProgram([before], options, host), [before]).found).toEqual([
      'bills/before-api.ts: path parameter billId is Id',
    ]);
  });
});
