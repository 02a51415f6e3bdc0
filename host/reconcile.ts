/**
 * Reconciliation from the command line: exit code 0 when every bill agrees, 1 when one differs.
 *   npm run reconcile -- [--bill BILL_ID] [--json]
 * Uses DATABASE_URL and TEMPORAL_ADDRESS, or the embedded servers of `npm start` / `npm run infra`
 * (which must be running). The admin endpoint GET /admin/reconcile runs the same check.
 */
import { parseArgs } from 'node:util';
import { config as loadDotEnv } from 'dotenv';
import { reconcile, type ReconcileReport } from '../bills/reconcile';
import { embeddedDatabaseUrl, loadConfig } from '../core/config';
import { createPool } from '../core/db';
import { connectClient } from '../core/temporal';

export function describe(report: ReconcileReport): string {
  const lines = [
    `${report.ok ? 'OK' : 'DIFFERENCES'}: ${report.bills_checked} bills (${report.open_bills_checked_live} open, checked live), ` +
      `${report.line_items_checked} line items, ${report.differences.length} differences, ${report.duration_ms} ms ` +
      `(database ${report.database_ms} ms, live queries ${report.live_ms} ms)`,
  ];
  for (const d of report.differences) {
    lines.push(
      `  ${d.bill_id} (${d.status}): ${d.kind}  line_items=${JSON.stringify(d.line_items)} stored=${JSON.stringify(d.stored)}` +
        (d.live ? ` live=${JSON.stringify(d.live)}` : ''),
    );
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { bill: { type: 'string' }, json: { type: 'boolean', default: false } } });
  loadDotEnv({ quiet: true });
  const config = loadConfig();
  const db = createPool(config.databaseUrl ?? embeddedDatabaseUrl(config), 4);
  const temporal = await connectClient(config, config.temporal.address ?? `127.0.0.1:${config.temporal.devServerPort}`);
  try {
    const report = await reconcile({ db, temporal, config }, { billIds: values.bill ? [values.bill] : undefined });
    console.log(values.json ? JSON.stringify(report, null, 2) : describe(report));
    return report.ok ? 0 : 1;
  } finally {
    await temporal.connection.close();
    await db.end();
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    },
  );
}
