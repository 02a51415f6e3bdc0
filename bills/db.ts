import { SQLDatabase } from 'encore.dev/storage/sqldb';

/** Under `encore run` Encore provisions this database and applies migrations/ to it. */
export const database = new SQLDatabase('fees', { migrations: './migrations' });
