/**
 * Prints the OpenAPI document the service serves at /openapi.json, for tools that read it from a
 * file: `npm run lint:api` lints it with Redocly's recommended rules.
 *
 *   tsx host/openapi-print.ts [FILE]     (stdout when FILE is absent)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildOpenApiDocument } from './openapi';
import { routes } from './routes';

const text = `${JSON.stringify(buildOpenApiDocument(routes, path.resolve(__dirname, '..')), null, 2)}\n`;
const file = process.argv[2];
if (file) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
} else {
  process.stdout.write(text);
}
