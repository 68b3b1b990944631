import { sql, type Transaction } from 'kysely';
import type { FxRateEntry } from '../domain/fx/events.ts';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';

/** The dated FX rates the ledger keeps, one row per pair and date: the latest recording stands. */
export const fxRatesProjector: Projector = {
  name: 'fx_rates',
  version: 1,
  handles: ['FxRatesRecorded'],
  tables: ['fx_rates'],

  async createTables(trx) {
    await sql`
      CREATE TABLE fx_rates (
        currency text NOT NULL,
        quote text NOT NULL,
        as_of date NOT NULL,
        rate numeric NOT NULL,
        source text NOT NULL,
        recorded_at timestamptz NOT NULL,
        PRIMARY KEY (currency, quote, as_of)
      )`.execute(trx);
  },

  async apply(trx: Transaction<unknown>, events: readonly RecordedEvent[]) {
    // Later recordings in the batch replace earlier ones of the same pair and date.
    const rows = new Map<string, { currency: string; quote: string; as_of: string; rate: string; source: string; recorded_at: string }>();
    for (const event of events) {
      const data = event.data as { rates: FxRateEntry[]; source: string };
      for (const r of data.rates) {
        rows.set(`${r.currency}/${r.quote}/${r.asOf}`, { currency: r.currency, quote: r.quote, as_of: r.asOf, rate: r.rate, source: data.source, recorded_at: event.recordedAt.toISOString() });
      }
    }
    await sql`
      INSERT INTO fx_rates (currency, quote, as_of, rate, source, recorded_at)
      SELECT currency, quote, as_of, rate, source, recorded_at
        FROM jsonb_to_recordset(${JSON.stringify([...rows.values()])}::jsonb)
          AS x(currency text, quote text, as_of date, rate numeric, source text, recorded_at timestamptz)
      ON CONFLICT (currency, quote, as_of) DO UPDATE SET rate = excluded.rate, source = excluded.source, recorded_at = excluded.recorded_at`.execute(trx);
  },
};
