/**
 * Encore's validation types (`encore.dev/validate`) as JSON Schema keywords, for
 * ts-json-schema-generator: `number & Min<1> & Max<9>` becomes `{ type: number, minimum: 1,
 * maximum: 9 }`. The rules are read as Encore's parser reads them (encoredev/encore v1.58.2,
 * tsparser/src/parser/types/type_resolve.rs `parse_validation`: a literal type argument each;
 * tsparser/src/parser/types/validation.rs `supports_type`: MinLen/MaxLen on strings and arrays,
 * Min/Max on numbers, the others on strings), so what Encore refuses fails the build here too.
 * Only intersections (`&`) are supported: we declare no `|` of validations.
 */
import ts from 'typescript';
import {
  AnnotatedType,
  ArrayType,
  type BaseType,
  type Context,
  derefType,
  NumberType,
  StringType,
  type Annotations,
  type NodeParser,
  type SubNodeParser,
} from 'ts-json-schema-generator';

const VALIDATE_MODULE = /[\\/]node_modules[\\/]encore\.dev[\\/]validate[\\/]/;

/** The name of the `encore.dev/validate` type a type node refers to, or undefined. */
export function validationName(node: ts.TypeNode, checker: ts.TypeChecker): string | undefined {
  if (!ts.isTypeReferenceNode(node)) return undefined;
  let symbol = checker.getSymbolAtLocation(node.typeName);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const file = symbol?.declarations?.[0]?.getSourceFile().fileName;
  return file && VALIDATE_MODULE.test(file) ? symbol!.name : undefined;
}

/** `A & (B & C)` as [A, B, C]. */
function members(node: ts.TypeNode): ts.TypeNode[] {
  if (ts.isParenthesizedTypeNode(node)) return members(node.type);
  if (ts.isIntersectionTypeNode(node)) return node.types.flatMap(members);
  return [node];
}

/**
 * The alias a type reference names when its body is validation types only (`type IdPattern =
 * MatchesRegexp<...>`): Encore resolves it inside an intersection (typ.rs `intersect`, a Named
 * operand), so `string & IdPattern` is a validated string to it, even as a path parameter.
 */
function validationAlias(node: ts.TypeNode, checker: ts.TypeChecker): ts.TypeAliasDeclaration | undefined {
  if (!ts.isTypeReferenceNode(node) || validationName(node, checker)) return undefined;
  let symbol = checker.getSymbolAtLocation(node.typeName);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const decl = symbol?.declarations?.find(ts.isTypeAliasDeclaration);
  return decl && members(decl.type).every((m) => validationName(m, checker) || validationAlias(m, checker)) ? decl : undefined;
}

/** The validation types of an intersection member: itself, or what a validation alias stands for. */
function rulesIn(node: ts.TypeNode, checker: ts.TypeChecker): ts.TypeReferenceNode[] {
  if (validationName(node, checker)) return [node as ts.TypeReferenceNode];
  const alias = validationAlias(node, checker);
  return alias ? members(alias.type).flatMap((m) => rulesIn(m, checker)) : [];
}

/** The `@errorMessage` of the validation aliases an intersection uses, which are inlined, not referenced. */
function aliasErrorMessage(nodes: ts.TypeNode[], checker: ts.TypeChecker): Annotations {
  for (const node of nodes) {
    const alias = validationAlias(node, checker);
    const tag = alias && ts.getJSDocTags(alias).find((t) => t.tagName.text === 'errorMessage');
    const text = tag && ts.getTextOfJSDocComment(tag.comment)?.trim();
    if (text) return { errorMessage: text.startsWith('{') ? (JSON.parse(text) as unknown) : text };
  }
  return {};
}

function literalArgument(node: ts.TypeReferenceNode, kind: 'number' | 'string'): number | string {
  const arg = node.typeArguments?.[0];
  const where = `${node.getText()} (${node.getSourceFile().fileName})`;
  if (!arg || !ts.isLiteralTypeNode(arg)) throw new Error(`${where}: the type argument must be a ${kind} literal`);
  const lit = arg.literal;
  if (kind === 'string' && ts.isStringLiteral(lit)) return lit.text;
  if (kind === 'number' && ts.isNumericLiteral(lit)) return Number(lit.text);
  if (
    kind === 'number' &&
    ts.isPrefixUnaryExpression(lit) &&
    lit.operator === ts.SyntaxKind.MinusToken &&
    ts.isNumericLiteral(lit.operand)
  ) {
    return -Number(lit.operand.text);
  }
  throw new Error(`${where}: the type argument must be a ${kind} literal`);
}

type Base = 'string' | 'number' | 'array';

function baseOf(type: BaseType): Base | undefined {
  const t = derefType(type);
  if (t instanceof StringType) return 'string';
  if (t instanceof NumberType) return 'number';
  if (t instanceof ArrayType) return 'array';
  return undefined;
}

/** The JSON Schema keywords of one validation type on a base type. */
function keywordsOf(name: string, node: ts.TypeReferenceNode, base: Base | undefined): Annotations {
  const on = (...bases: Base[]) => {
    if (!base || !bases.includes(base)) {
      throw new Error(
        `${node.getText()} cannot be applied to ${base ?? 'this type'} (${node.getSourceFile().fileName}): Encore refuses it`,
      );
    }
  };
  const length = base === 'array' ? 'Items' : 'Length';
  switch (name) {
    case 'Min':
      on('number');
      return { minimum: literalArgument(node, 'number') };
    case 'Max':
      on('number');
      return { maximum: literalArgument(node, 'number') };
    case 'MinLen':
      on('string', 'array');
      return { [`min${length}`]: literalArgument(node, 'number') };
    case 'MaxLen':
      on('string', 'array');
      return { [`max${length}`]: literalArgument(node, 'number') };
    case 'MatchesRegexp': {
      on('string');
      const pattern = literalArgument(node, 'string') as string;
      new RegExp(pattern, 'u'); // throws on a pattern ajv could not compile either
      return { pattern };
    }
    case 'StartsWith':
      on('string');
      return { pattern: `^${escapeRegExp(literalArgument(node, 'string') as string)}` };
    case 'EndsWith':
      on('string');
      return { pattern: `${escapeRegExp(literalArgument(node, 'string') as string)}$` };
    case 'IsEmail':
      on('string');
      return { format: 'email' };
    case 'IsURL':
      on('string');
      return { format: 'uri' };
    default:
      throw new Error(`${node.getText()}: encore.dev/validate type ${name} is not supported by the schema build`);
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * An intersection with at least one `encore.dev/validate` type: the other members give the type,
 * the validation types its keywords. Two rules of one kind keep the stricter, as Encore's
 * `merge_and` does; two patterns cannot be merged and fail the build.
 */
export class EncoreValidationParser implements SubNodeParser {
  constructor(
    private checker: ts.TypeChecker,
    private child: NodeParser,
  ) {}

  supportsNode(node: ts.Node): boolean {
    return ts.isIntersectionTypeNode(node) && members(node).some((m) => rulesIn(m, this.checker).length > 0);
  }

  createType(node: ts.IntersectionTypeNode, context: Context): BaseType {
    const all = members(node);
    const ruled = all.filter((m) => rulesIn(m, this.checker).length > 0);
    const rules = ruled.flatMap((m) => rulesIn(m, this.checker));
    const others = all.filter((m) => !ruled.includes(m));
    if (others.length !== 1) {
      throw new Error(`${node.getText()} (${node.getSourceFile().fileName}): validation types need exactly one type to apply to`);
    }
    const type = this.child.createType(others[0], context);
    const base = baseOf(type);
    const keywords: Annotations = aliasErrorMessage(ruled, this.checker);
    for (const rule of rules) {
      for (const [keyword, value] of Object.entries(keywordsOf(validationName(rule, this.checker)!, rule, base))) {
        keywords[keyword] = merged(keyword, keywords[keyword], value, node);
      }
    }
    return new AnnotatedType(type, keywords, false);
  }
}

function merged(keyword: string, before: unknown, value: unknown, node: ts.Node): unknown {
  if (before === undefined) return value;
  if (keyword.startsWith('min')) return Math.max(before as number, value as number);
  if (keyword.startsWith('max')) return Math.min(before as number, value as number);
  throw new Error(`${node.getText()} (${node.getSourceFile().fileName}): two ${keyword} rules on one type`);
}
