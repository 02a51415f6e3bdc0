/**
 * API key management:
 *   npm run keys -- create --scopes bills:read,bills:write [--name "billing service"]
 *   npm run keys -- list
 *   npm run keys -- revoke <key id>
 * Uses DATABASE_URL, or the embedded Postgres of `npm start` / `npm run infra` (which must be
 * running). The key is printed once, by `create`; only its hash is stored.
 */
import { parseArgs } from 'node:util';
import { config as loadDotEnv } from 'dotenv';
import { SCOPES, insertApiKey, listApiKeys, parseScopes, revokeApiKey } from '../core/auth';
import { ConfigError, embeddedDatabaseUrl, loadConfig } from '../core/config';
import { createPool, migrate } from '../core/db';

const USAGE = `usage:
  npm run keys -- create --scopes SCOPE[,SCOPE...] [--name NAME]
  scopes: ${SCOPES.join(', ')}
  npm run keys -- list
  npm run keys -- revoke KEY_ID`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { scopes: { type: 'string' }, name: { type: 'string' } },
  });
  const [command, ...rest] = positionals;
  loadDotEnv({ quiet: true });
  const config = loadConfig();
  const db = createPool(config.databaseUrl ?? embeddedDatabaseUrl(config), 2);
  try {
    await migrate(db);
    switch (command) {
      case 'create': {
        const scopes = parseScopes(values.scopes ?? '');
        const { key, key_id } = await insertApiKey(db, values.name ?? '', scopes);
        console.log(`Created key ${key_id} with scopes ${scopes.join(', ')}. Store it now; it is not shown again:\n\n${key}\n`);
        return 0;
      }
      case 'list': {
        const keys = await listApiKeys(db);
        if (keys.length === 0) console.log('no API keys');
        for (const k of keys) {
          const state = k.revoked_at ? `revoked ${k.revoked_at.toISOString()}` : 'active';
          const used = k.last_used_at ? `last used ${k.last_used_at.toISOString()}` : 'never used';
          console.log(`${k.key_id}  ${state.padEnd(32)} ${k.scopes.join(',').padEnd(30)} ${used}  ${k.name}`);
        }
        return 0;
      }
      case 'revoke': {
        if (rest.length !== 1) break;
        const revoked = await revokeApiKey(db, rest[0]);
        console.log(revoked ? `revoked ${rest[0]} (API processes stop accepting it within AUTH_CACHE_MS)` : `no active key ${rest[0]}`);
        return revoked ? 0 : 1;
      }
    }
    console.error(USAGE);
    return 2;
  } finally {
    await db.end();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError ? err.message : `keys: ${(err as Error).message}`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
