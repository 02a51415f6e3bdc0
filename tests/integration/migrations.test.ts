import { createPool, listMigrations, migrate } from '../../core/db';
import { createDatabase, dropDatabase } from '../helpers/databases';

describe('migrations', () => {
  const name = `fees_migrate_${process.pid}_${Date.now()}`;
  let url: string;

  beforeAll(async () => {
    url = await createDatabase(name);
  });
  afterAll(() => dropDatabase(name));

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
