import pg from 'pg';
import { createPool, listMigrations, migrate } from '../../core/db';
import { ADMIN_URL } from '../helpers/global-setup';

describe('migrations', () => {
  const name = `fees_migrate_${process.pid}_${Date.now()}`;
  let url: string;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(ADMIN_URL);
    u.pathname = `/${name}`;
    url = u.toString();
  });

  afterAll(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  it('applies each migration once even when processes start together, recorded as golang-migrate does', async () => {
    const pools = [createPool(url, 2), createPool(url, 2), createPool(url, 2)];
    try {
      const applied = await Promise.all(pools.map((p) => migrate(p)));
      const latest = (await listMigrations()).at(-1)!.version;
      expect(applied.flat()).toEqual((await listMigrations()).map((m) => m.version));
      const { rows } = await pools[0].query('SELECT version::int, dirty FROM schema_migrations');
      expect(rows).toEqual([{ version: latest, dirty: false }]);
      expect(await migrate(pools[0])).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});
