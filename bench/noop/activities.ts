/** The one effect of the floor's write variants: one row, idempotent on its id. */
import pg from 'pg';

let pool: pg.Pool | undefined;

export function useDatabase(url: string): void {
  pool = new pg.Pool({ connectionString: url, max: 10 });
}

export async function closeDatabase(): Promise<void> {
  await pool?.end();
}

export async function writeRow(id: string): Promise<void> {
  await pool!.query({
    name: 'bench_floor_row',
    text: 'INSERT INTO bench_floor_rows (id) VALUES ($1) ON CONFLICT (id) DO NOTHING',
    values: [id],
  });
}
