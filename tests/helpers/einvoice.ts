/**
 * Validates UBL e-invoices as a receiver would: against the UBL 2.1 schema (xmllint) and the
 * EN 16931 business rules (CEN's schematron compiled to XSLT 2.0, run by Saxon-HE on Java). For
 * the tests only: the service renders e-invoices and never validates them. Needs Debian's
 * libxml2-utils and libsaxonhe-java and a Java runtime; the standards' files are vendored in
 * tests/fixtures/einvoice (its README says where they come from).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { create } from 'xmlbuilder2';
import { testTempDir } from './tmp';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'einvoice');
const SCHEMAS = {
  Invoice: path.join(FIXTURES, 'ubl-2.1', 'maindoc', 'UBL-Invoice-2.1.xsd'),
  CreditNote: path.join(FIXTURES, 'ubl-2.1', 'maindoc', 'UBL-CreditNote-2.1.xsd'),
};
const EN16931_XSLT = path.join(FIXTURES, 'en16931-1.3.16', 'EN16931-UBL-validation.xslt');
const XMLLINT = '/usr/bin/xmllint';
const JAVA = '/usr/bin/java';
const SAXON_JAR = '/usr/share/java/Saxon-HE.jar';
const SVRL = 'http://purl.oclc.org/dsdl/svrl';

/** A rule the document breaks: `flag` is `fatal` (the document is not EN 16931) or `warning`. */
export interface RuleFailure {
  id: string;
  flag: string;
  text: string;
}

export interface UblValidation {
  schemaErrors: string[];
  ruleFailures: RuleFailure[];
}

/** One document: its schema errors and the EN 16931 rules it fails. */
export async function validateUbl(xml: string): Promise<UblValidation> {
  const [result] = await validateUblDocuments([xml]);
  return result;
}

/**
 * Several documents at once, in the same order: one xmllint run per document type and one Java
 * run for all (Saxon's directory mode), as Java's start and the stylesheet's compilation take
 * most of the ~1.5 s a run costs. A document that is not well-formed XML fails the whole call.
 */
export async function validateUblDocuments(xmls: string[]): Promise<UblValidation[]> {
  const dir = testTempDir('einvoice-');
  try {
    const [input, output] = [path.join(dir, 'in'), path.join(dir, 'out')];
    mkdirSync(input);
    mkdirSync(output);
    const files = xmls.map((xml, i) => path.join(input, `doc-${i}.xml`));
    xmls.forEach((xml, i) => writeFileSync(files[i], xml));
    const [schemaErrors] = await Promise.all([schemaErrorsOf(files, xmls), runRules(input, output)]);
    return files.map((file, i) => ({
      schemaErrors: schemaErrors[i],
      ruleFailures: failedRules(readFileSync(path.join(output, path.basename(file)), 'utf8')),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command run to its end; a non-zero exit is an outcome, not an error (no shell in between). */
function run(file: string, args: string[]): Promise<Finished> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      if (typeof err.code === 'number' && !err.killed) return resolve({ code: err.code, stdout, stderr });
      reject(
        new Error(`${path.basename(file)}: ${err.message} (what the e-invoice tests need: tests/fixtures/einvoice/README.md)\n${stderr}`),
      );
    });
  });
}

/** The document element's local name, past the prolog and comments. */
function rootName(xml: string): string | undefined {
  const body = xml.replace(/<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>/g, '');
  return /<(?:[\w.-]+:)?([\w.-]+)/.exec(body)?.[1];
}

async function schemaErrorsOf(files: string[], xmls: string[]): Promise<string[][]> {
  const errors = files.map((): string[] => []);
  const byType = new Map<keyof typeof SCHEMAS, number[]>();
  xmls.forEach((xml, i) => {
    const root = rootName(xml);
    if (root === 'Invoice' || root === 'CreditNote') byType.set(root, [...(byType.get(root) ?? []), i]);
    else errors[i].push(`the document element is ${root ?? 'missing'}, not a UBL Invoice or CreditNote`);
  });
  for (const [type, indexes] of byType) {
    const result = await run(XMLLINT, ['--noout', '--nonet', '--schema', SCHEMAS[type], ...indexes.map((i) => files[i])]);
    // 0: all valid, 3: some invalid, 1: some not well-formed; anything else is the schema's fault.
    if (![0, 1, 3].includes(result.code)) throw new Error(`xmllint exited with ${result.code}:\n${result.stderr}`);
    const lines = result.stderr.split('\n');
    for (const i of indexes) {
      const file = files[i];
      if (lines.includes(`${file} validates`)) continue;
      errors[i].push(...lines.filter((l) => l.startsWith(`${file}:`)).map((l) => l.slice(file.length + 1)));
      // Never an empty list for a document xmllint did not pass.
      if (errors[i].length === 0) errors[i].push(`xmllint did not validate it:\n${result.stderr}`);
    }
  }
  return errors;
}

/** Saxon, the EN 16931 stylesheet over every file of `input`: an SVRL report of each in `output`. */
async function runRules(input: string, output: string): Promise<void> {
  const result = await run(JAVA, ['-cp', SAXON_JAR, 'net.sf.saxon.Transform', `-s:${input}`, `-o:${output}`, `-xsl:${EN16931_XSLT}`]);
  if (result.code !== 0) throw new Error(`Saxon exited with ${result.code}:\n${result.stderr}`);
}

/** The little of the DOM that xmlbuilder2 parses into which tests read (the project has no DOM types). */
export interface XmlElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  getElementsByTagNameNS(namespace: string, localName: string): Iterable<XmlElement>;
}

/** The elements named `namespace`:`localName` anywhere in `xml` (or under `within`), in document order. */
export function xmlElements(within: string | XmlElement, namespace: string, localName: string): XmlElement[] {
  const root = typeof within === 'string' ? (create(within).root().node as unknown as XmlElement) : within;
  return [...root.getElementsByTagNameNS(namespace, localName)];
}

/** The failed assertions of an SVRL report, each with its rule ID, flag and message. */
function failedRules(svrl: string): RuleFailure[] {
  const report = create(svrl).root().node as unknown as XmlElement;
  const failures = [...xmlElements(report, SVRL, 'failed-assert'), ...xmlElements(report, SVRL, 'successful-report')];
  const found = failures.map((f) => ({
    id: f.getAttribute('id') ?? '',
    flag: f.getAttribute('flag') ?? '',
    text: (xmlElements(f, SVRL, 'text')[0]?.textContent ?? '').replace(/\s+/g, ' ').trim(),
  }));
  // A document the rules do not recognize (another root or namespace) fires none and fails none:
  // that is not a pass.
  if (xmlElements(report, SVRL, 'fired-rule').length === 0) {
    found.push({ id: 'NO-RULE-FIRED', flag: 'fatal', text: 'No EN 16931 rule applied: not a UBL Invoice or CreditNote' });
  }
  return found;
}
