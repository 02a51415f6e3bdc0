/**
 * Reads the Encore declarations with the TypeScript compiler: every `api()` / `api.raw()` of each
 * service's `api.ts`, its request and response types, and JSON Schemas of those types made by
 * ts-json-schema-generator, with Encore's validation types (`encore.dev/validate`) as keywords.
 * Build time only (scripts/build-api.ts): the running server reads the output.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import {
  createFormatter,
  createParser,
  DEFAULT_CONFIG,
  SchemaGenerator,
  type BaseType,
  type CompletedConfig,
  type NodeParser,
  type SubNodeParser,
} from 'ts-json-schema-generator';
import type { Schema } from '../../host/api-artifacts';
import { EncoreValidationParser } from './encore-validate';

export type Declaration = ts.InterfaceDeclaration | ts.TypeAliasDeclaration;

/** One `api()` / `api.raw()` declaration of an Encore service. */
export interface Endpoint {
  service: string;
  name: string;
  method: string;
  path: string;
  doc: string;
  request?: Declaration;
  /** The `T` of the handler's `Promise<T>`; absent for raw endpoints. */
  response?: Declaration;
  /** What a raw endpoint answers: the content-types it writes, or its JSDoc's `@contentType` list. */
  rawContentTypes?: string[];
}

export interface Declarations {
  program: ts.Program;
  checker: ts.TypeChecker;
  endpoints: Endpoint[];
  /** core/errors.ts's ErrorBody: the error answer of every endpoint. */
  errorBody: Declaration;
  /** The repository files read: the API files and every file a schema came from. */
  sources: Set<string>;
}

export const ERROR_SCHEMA = 'ErrorBody';

export function readDeclarations(root: string): Declarations {
  const apiFiles = readdirSync(root)
    .filter((d) => existsSync(path.join(root, d, 'encore.service.ts')) && existsSync(path.join(root, d, 'api.ts')))
    .map((d) => path.join(root, d, 'api.ts'));
  const errorsFile = path.join(root, 'core', 'errors.ts');
  const program = createProgram(root, [...apiFiles, errorsFile]);
  const checker = program.getTypeChecker();
  const endpoints = apiFiles.flatMap((f) => readEndpoints(program.getSourceFile(f)!, checker));
  const errorBody = findDeclaration(program.getSourceFile(errorsFile)!, ERROR_SCHEMA);
  return { program, checker, endpoints, errorBody, sources: new Set([...apiFiles, errorsFile]) };
}

/**
 * A program over the API files and what they import from this repository. Package imports
 * (Temporal, pg, ...) are left unresolved: the API types do not use them, and following them
 * would parse over a thousand more files. Encore's `Header` and validation types are the exceptions.
 */
function createProgram(root: string, files: string[]): ts.Program {
  const { config, error } = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const { options } = ts.convertCompilerOptionsFromJson(config.compilerOptions, root);
  Object.assign(options, { noEmit: true, types: [] });
  const host = ts.createCompilerHost(options);
  host.resolveModuleNameLiterals = (literals, containingFile, redirectedReference, opts) =>
    literals.map(({ text }) => {
      const own = text.startsWith('.') && !containingFile.includes('/node_modules/');
      if (!own && text !== 'encore.dev/api' && text !== 'encore.dev/validate') return { resolvedModule: undefined };
      return ts.resolveModuleName(text, containingFile, opts, host, undefined, redirectedReference);
    });
  return ts.createProgram(files, options, host);
}

function readEndpoints(source: ts.SourceFile, checker: ts.TypeChecker): Endpoint[] {
  const service = path.basename(path.dirname(source.fileName));
  const endpoints: Endpoint[] = [];
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const decl of statement.declarationList.declarations) {
      const call = decl.initializer;
      const kind = call && ts.isCallExpression(call) ? call.expression.getText(source) : undefined;
      if (!call || !ts.isCallExpression(call) || (kind !== 'api' && kind !== 'api.raw')) continue;
      const [options, handler] = call.arguments;
      const where = `${source.fileName}: ${decl.name.getText(source)}`;
      if (!ts.isObjectLiteralExpression(options)) throw new Error(`${where}: api() options must be a literal`);
      if (!handler || !(ts.isArrowFunction(handler) || ts.isFunctionExpression(handler)))
        throw new Error(`${where}: the handler must be a function`);
      const paramType = handler.parameters[0]?.type;
      const returnType = handler.type;
      const request = kind === 'api' && paramType ? declarationOf(paramType, checker) : undefined;
      const promised = returnType && ts.isTypeReferenceNode(returnType) ? returnType.typeArguments?.[0] : undefined;
      const doc = docOf(decl) ?? (request && docOf(request));
      if (!doc) throw new Error(`${where}: document the endpoint with a JSDoc comment`);
      endpoints.push({
        service,
        name: decl.name.getText(source),
        method: stringProperty(options, 'method') ?? '',
        path: stringProperty(options, 'path') ?? '',
        doc,
        request,
        response: promised ? declarationOf(promised, checker) : undefined,
        rawContentTypes: kind === 'api.raw' ? contentTypesOf(decl, handler) : undefined,
      });
    }
  }
  return endpoints;
}

function stringProperty(obj: ts.ObjectLiteralExpression, name: string): string | undefined {
  for (const p of obj.properties) {
    if (ts.isPropertyAssignment(p) && p.name.getText() === name && ts.isStringLiteral(p.initializer)) return p.initializer.text;
  }
  return undefined;
}

/** The interface or type alias a type reference names, following imports. */
function declarationOf(type: ts.TypeNode, checker: ts.TypeChecker): Declaration {
  if (!ts.isTypeReferenceNode(type)) throw new Error(`${type.getText()}: API types must be named types`);
  let symbol = checker.getSymbolAtLocation(type.typeName);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const decl = symbol?.declarations?.find((d) => ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d));
  if (!decl) throw new Error(`${type.getText()}: no interface or type declaration found`);
  return decl as Declaration;
}

function findDeclaration(source: ts.SourceFile, name: string): Declaration {
  const decl = source.statements.find((s) => (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) && s.name.text === name);
  if (!decl) throw new Error(`${source.fileName}: ${name} not found`);
  return decl as Declaration;
}

function docOf(node: ts.Node): string | undefined {
  const jsDoc = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc).at(-1);
  return ts.getTextOfJSDocComment(jsDoc?.comment)?.trim() || undefined;
}

/**
 * What a raw endpoint answers: the literal content-types its handler writes (`'content-type':
 * 'application/pdf'`) and those its JSDoc lists (`@contentType application/pdf application/xml`,
 * for a handler that writes a file's own type).
 */
function contentTypesOf(decl: ts.Node, handler: ts.Node): string[] {
  const tagged = ts
    .getJSDocTags(decl)
    .filter((tag) => tag.tagName.text === 'contentType')
    .flatMap((tag) => (ts.getTextOfJSDocComment(tag.comment) ?? '').split(/[\s,]+/).filter(Boolean));
  const types = [...new Set([...contentTypesWritten(handler), ...tagged])];
  return types.length > 0 ? types : ['application/octet-stream'];
}

function contentTypesWritten(handler: ts.Node): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (
      ts.isPropertyAssignment(node) &&
      ts.isStringLiteral(node.initializer) &&
      (ts.isStringLiteral(node.name) || ts.isIdentifier(node.name)) &&
      node.name.text.toLowerCase() === 'content-type'
    ) {
      found.push(node.initializer.text);
    }
    node.forEachChild(visit);
  };
  visit(handler);
  return found;
}

export interface HeaderField {
  property: string;
  header: string;
  optional: boolean;
  doc?: string;
}

/** The `Header<'Name'>` fields of a request interface, by property name. */
export function headerFieldsOf(decl: Declaration): Map<string, HeaderField> {
  const fields = new Map<string, HeaderField>();
  const members = ts.isInterfaceDeclaration(decl) ? decl.members : ts.isTypeLiteralNode(decl.type) ? decl.type.members : [];
  for (const member of members) {
    if (!ts.isPropertySignature(member)) continue;
    const type = member.type;
    if (!type || !ts.isTypeReferenceNode(type) || type.typeName.getText() !== 'Header') continue;
    const arg = type.typeArguments?.[0];
    if (!arg || !ts.isLiteralTypeNode(arg) || !ts.isStringLiteral(arg.literal)) continue;
    const property = member.name.getText();
    fields.set(property, { property, header: arg.literal.text, optional: member.questionToken !== undefined, doc: docOf(member) });
  }
  return fields;
}

/**
 * Whether a request refuses fields it does not declare: its interface, or one it extends, says
 * `@additionalProperties false` (otherwise unknown fields are ignored, as Encore ignores them).
 */
export function refusesUnknownFields(decl: Declaration, checker: ts.TypeChecker): boolean {
  const tagged = ts
    .getJSDocTags(decl)
    .some((t) => t.tagName.text === 'additionalProperties' && ts.getTextOfJSDocComment(t.comment)?.trim() === 'false');
  if (tagged || !ts.isInterfaceDeclaration(decl)) return tagged;
  return (decl.heritageClauses ?? []).some((clause) =>
    clause.types.some((base) => {
      let symbol = checker.getSymbolAtLocation(base.expression);
      if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
      const baseDecl = symbol?.declarations?.find(ts.isInterfaceDeclaration);
      return baseDecl !== undefined && refusesUnknownFields(baseDecl, checker);
    }),
  );
}

/**
 * JSON schemas of the given declarations and everything they use, by type name, their references
 * written `#/$defs/<Name>`. Request types leave fields they do not declare allowed (a declaration
 * says `@additionalProperties false` to refuse them); response types allow none, so that an answer
 * carrying more than its type says fails the contract check. JSDoc gives descriptions, and two
 * tags: `@asType integer`, and `@errorMessage` (the `reason` of a refusal, written `x-reason`;
 * see host/request-validation.ts).
 */
export function generateSchemas(
  decls: Pick<Declarations, 'program' | 'checker' | 'sources'>,
  roots: Declaration[],
  side: 'request' | 'response',
): Record<string, Schema> {
  const config: CompletedConfig = {
    ...DEFAULT_CONFIG,
    skipTypeCheck: true,
    encodeRefs: false,
    sortProps: false,
    additionalProperties: side === 'request',
    extraTags: ['errorMessage', 'additionalProperties'],
  };
  const parser = createParser(decls.program, config, (chain) => {
    chain.addNodeParser(new SourceRecorder(decls.sources));
    // The augmentor is handed the chain itself, which parses the validated types' other members.
    chain.addNodeParser(new EncoreValidationParser(decls.checker, chain as unknown as NodeParser));
  });
  const generator = new SchemaGenerator(decls.program, parser, createFormatter(config), config);
  const { definitions = {} } = withCause(() => generator.createSchemaFromNodes(roots));
  const names = new Map(Object.keys(definitions).map((name) => [name, componentName(name)]));
  if (new Set(names.values()).size !== names.size) throw new Error(`schema names collide: ${[...names.keys()].join(', ')}`);
  return Object.fromEntries(
    Object.entries(definitions).map(([name, schema]) => [names.get(name)!, withReasonKeyword(rewriteRefs(schema, names) as Schema)]),
  );
}

/** The keyword `@errorMessage` becomes: an OpenAPI extension, which readers of the document may ignore. */
export const REASON_KEYWORD = 'x-reason';

/** Subschemas by keyword: `properties`-like keywords hold a map of them, the others one or a list. */
const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SUBSCHEMAS = ['items', 'additionalProperties', 'anyOf', 'allOf', 'oneOf', 'not', 'prefixItems', 'contains', 'if', 'then', 'else'];

/** `errorMessage` renamed to REASON_KEYWORD at every level of a schema (and only where it is a keyword, not a property's name). */
function withReasonKeyword(schema: Schema): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'errorMessage') out[REASON_KEYWORD] = value;
    else if (SCHEMA_MAPS.includes(key) && value && typeof value === 'object')
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withReasonKeyword(v as Schema)]));
    else if (SUBSCHEMAS.includes(key) && Array.isArray(value)) out[key] = value.map((v) => withReasonKeyword(v as Schema));
    else if (SUBSCHEMAS.includes(key) && value && typeof value === 'object') out[key] = withReasonKeyword(value as Schema);
    else out[key] = value;
  }
  return out;
}

/** The generator wraps our errors (a validation type Encore refuses) in one of its own: the build says ours. */
function withCause<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw cause instanceof Error ? cause : err;
  }
}

/** Not a parser: notes the file of every node the generator reads, so the build knows its sources. */
class SourceRecorder implements SubNodeParser {
  constructor(private files: Set<string>) {}

  supportsNode(node: ts.Node): boolean {
    const file = node.getSourceFile() as ts.SourceFile | undefined;
    if (file && !file.fileName.includes('/node_modules/')) this.files.add(file.fileName);
    return false;
  }

  createType(): BaseType {
    throw new Error('SourceRecorder parses nothing');
  }
}

/** OpenAPI component names allow only [A-Za-z0-9._-]; generic instantiations like `Header<"X">` do not. */
const componentName = (name: string) => name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_|_$/g, '');

function rewriteRefs(value: unknown, names: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, names));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/definitions/')) {
        const name = v.slice('#/definitions/'.length);
        return [k, `#/$defs/${names.get(name) ?? componentName(name)}`];
      }
      return [k, rewriteRefs(v, names)];
    }),
  );
}

/** `value` with every `#/$defs/` reference pointing under `prefix` instead. */
export function withRefPrefix<T>(value: T, prefix: string): T {
  if (Array.isArray(value)) return value.map((v) => withRefPrefix(v, prefix)) as T;
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/') ? prefix + v.slice('#/$defs/'.length) : withRefPrefix(v, prefix),
    ]),
  ) as T;
}

/** Every `$ref` target under `value`. */
export function refsIn(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => refsIn(v, found));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') found.add(v);
      else refsIn(v, found);
    }
  }
  return found;
}

/** package.json's version and description, for the document's info. */
export function packageInfo(root: string): { version: string; description: string; license: string } {
  return JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string; description: string; license: string };
}
