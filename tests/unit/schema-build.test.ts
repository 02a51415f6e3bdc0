/**
 * The build's reading of Encore's validation types (scripts/api/encore-validate.ts): each becomes
 * the JSON Schema keyword that means the same, and what Encore's parser refuses (a rule on a type
 * it does not apply to, a type argument that is not a literal) fails the build. The declarations
 * are read from files that exist only in memory: on disk they would import encore.dev outside the
 * Encore layer.
 */
import path from 'node:path';
import ts from 'typescript';
import type { Schema } from '../../host/api-artifacts';
import { generateSchemas, type Declaration } from '../../scripts/api/declarations';

const root = path.resolve(__dirname, '..', '..');
const options: ts.CompilerOptions = {
  strict: true,
  skipLibCheck: true,
  noEmit: true,
  module: ts.ModuleKind.Preserve,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
};

// The library files every program reads, parsed once for all of them.
const parsed = new Map<string, ts.SourceFile | undefined>();

/** The schemas of the interfaces a source declares, as the request side of the build makes them. */
function schemasOf(source: string): Record<string, Schema> {
  const file = path.join(root, 'bills', 'in-memory-requests.ts');
  const text = `import type { IsEmail, IsURL, MatchesRegexp, Max, MaxLen, Min, MinLen, StartsWith } from "encore.dev/validate";\n${source}`;
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version) => {
    if (name === file) return ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, true);
    if (!parsed.has(name)) parsed.set(name, getSourceFile(name, version));
    return parsed.get(name);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const roots = program.getSourceFile(file)!.statements.filter(ts.isInterfaceDeclaration) as Declaration[];
  return generateSchemas({ program, checker: program.getTypeChecker(), sources: new Set() }, roots, 'request');
}

const fieldOf = (source: string): Schema => {
  const { Request } = schemasOf(`export interface Request { field: ${source}; }`);
  return (Request.properties as Record<string, Schema>).field;
};

describe("Encore's validation types as JSON Schema", () => {
  it.each([
    ['number & Min<1> & Max<9>', { type: 'number', minimum: 1, maximum: 9 }],
    ['number & Min<-5>', { type: 'number', minimum: -5 }],
    ['string & MinLen<1> & MaxLen<5>', { type: 'string', minLength: 1, maxLength: 5 }],
    ['string[] & MinLen<1> & MaxLen<3>', { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 }],
    ["string & MatchesRegexp<'^a+$'>", { type: 'string', pattern: '^a+$' }],
    ["string & StartsWith<'a.b'>", { type: 'string', pattern: '^a\\.b' }],
    ['string & IsEmail', { type: 'string', format: 'email' }],
    ['string & IsURL', { type: 'string', format: 'uri' }],
    ['(string & MaxLen<3>) | null', { anyOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }] }],
    // Two rules of a kind: the stricter holds, as Encore merges them (validation.rs merge_and).
    ['number & Min<1> & Min<3> & Max<9> & Max<7>', { type: 'number', minimum: 3, maximum: 7 }],
  ])('%s', (declared, schema) => {
    expect(fieldOf(declared)).toEqual(schema);
  });

  it('takes a validation alias inside an intersection inline, with its @errorMessage as x-reason', () => {
    const { Request } = schemasOf(`
      /** @errorMessage must be an a */
      export type APattern = MatchesRegexp<'^a$'>;
      export interface Request { id: string & APattern }`);
    expect((Request.properties as Record<string, Schema>).id).toEqual({ type: 'string', pattern: '^a$', 'x-reason': 'must be an a' });
  });

  it('reads @asType integer, @errorMessage (for all keywords or one) and @additionalProperties false', () => {
    const schemas = schemasOf(`
      /**
       * @asType integer
       * @errorMessage must be a count
       */
      export type Count = number & Min<0>;
      /** @errorMessage { "pattern": "must not be blank" } */
      export type Text = string & MatchesRegexp<'\\\\S'>;
      /** @additionalProperties false */
      export interface Request { count: Count; text: Text }`);
    expect(schemas.Count).toMatchObject({ type: 'integer', minimum: 0, 'x-reason': 'must be a count' });
    expect(schemas.Text).toMatchObject({ type: 'string', pattern: '\\S', 'x-reason': { pattern: 'must not be blank' } });
    expect(schemas.Request).toMatchObject({ additionalProperties: false, required: ['count', 'text'] });
  });

  it('leaves unknown fields allowed unless a request says otherwise', () => {
    expect(schemasOf('export interface Request { a?: string }').Request).not.toHaveProperty('additionalProperties');
  });

  it.each([
    ['number & MinLen<1>', /MinLen<1> cannot be applied to number/],
    ['string & Min<1>', /Min<1> cannot be applied to string/],
    ['boolean & MaxLen<1>', /cannot be applied/],
    ['string & MaxLen<number>', /must be a number literal/],
    ["string & MatchesRegexp<'('>", /Invalid regular expression/],
    ["string & MatchesRegexp<'^a'> & MatchesRegexp<'b$'>", /two pattern rules/],
    ['MinLen<1> & MaxLen<2>', /exactly one type to apply to/],
  ])('fails the build, as Encore would refuse it: %s', (declared, error) => {
    expect(() => fieldOf(declared)).toThrow(error);
  });
});
