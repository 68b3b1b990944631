import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

const INT8_OID = 20;

/** Positions and versions stay far below 2^53, so int8 is read as a JS number; NUMERIC stays a string. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface DatabaseHandle {
  readonly pool: pg.Pool;
  readonly db: Kysely<unknown>;
  readonly connectionString: string;
  close(): Promise<void>;
}

export function connect(connectionString: string, options: { maxConnections?: number } = {}): DatabaseHandle {
  const pool = new pg.Pool({ connectionString, max: options.maxConnections ?? 10, types });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => {});
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  return {
    pool,
    db,
    connectionString,
    // Kysely's destroy ends the pool it was given.
    close: () => db.destroy(),
  };
}

/** A client outside the pool, for LISTEN and session-level advisory locks. */
export function dedicatedClient(connectionString: string): pg.Client {
  return new pg.Client({ connectionString, types });
}
