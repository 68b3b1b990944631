import { sql, type Transaction } from 'kysely';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';
import { foldSourceEvents } from './source-record-fold.ts';

/**
 * A read model of one data type's source records as the platforms last reported them: the record
 * itself plus columns generated from it. Portfolio views join it with portfolio_connections.
 */
function sourceDetailProjector(options: { name: string; dataType: string; table: string; columns: string; indexes: readonly string[] }): Projector {
  const table = options.table;
  return {
    name: options.name,
    version: 1,
    handles: ['SourceRecordObserved', 'SourceRecordChanged', 'SourceRecordRemoved'],
    tables: [table],

    async createTables(trx) {
      await sql`
        CREATE TABLE ${sql.table(table)} (
          connection_id text NOT NULL,
          record_id text NOT NULL,
          record jsonb NOT NULL,
          revision integer NOT NULL,
          updated_at timestamptz NOT NULL,
          ${sql.raw(options.columns)},
          PRIMARY KEY (connection_id, record_id)
        )`.execute(trx);
      for (const index of options.indexes) await sql.raw(index).execute(trx);
    },

    async apply(trx: Transaction<unknown>, events: readonly RecordedEvent[]) {
      const mine = events.filter((event) => (event.data as { dataType: string }).dataType === options.dataType);
      if (mine.length === 0) return;
      const whole: Record<string, unknown>[] = [];
      const changed: Record<string, unknown>[] = [];
      const removed: Record<string, unknown>[] = [];
      for (const f of foldSourceEvents(mine).values()) {
        const row = { connection_id: f.connectionId, record_id: f.recordId, revision: f.revision, updated_at: f.at.toISOString() };
        if (f.removed && !f.whole) removed.push(row);
        else if (f.whole) whole.push({ ...row, record: f.whole });
        else changed.push({ ...row, changes: f.changes });
      }
      if (whole.length > 0) {
        await sql`
          INSERT INTO ${sql.table(table)} (connection_id, record_id, record, revision, updated_at)
          SELECT connection_id, record_id, record, revision, updated_at
            FROM jsonb_to_recordset(${JSON.stringify(whole)}::jsonb) AS x(connection_id text, record_id text, record jsonb, revision integer, updated_at timestamptz)
          ON CONFLICT (connection_id, record_id) DO UPDATE SET record = excluded.record, revision = excluded.revision, updated_at = excluded.updated_at`.execute(trx);
      }
      if (changed.length > 0) {
        // A null in a change means the field is gone: strip it after merging.
        await sql`
          UPDATE ${sql.table(table)} t SET record = jsonb_strip_nulls(t.record || x.changes), revision = x.revision, updated_at = x.updated_at
            FROM jsonb_to_recordset(${JSON.stringify(changed)}::jsonb) AS x(connection_id text, record_id text, changes jsonb, revision integer, updated_at timestamptz)
           WHERE t.connection_id = x.connection_id AND t.record_id = x.record_id`.execute(trx);
      }
      if (removed.length > 0) {
        await sql`
          DELETE FROM ${sql.table(table)} t USING jsonb_to_recordset(${JSON.stringify(removed)}::jsonb) AS x(connection_id text, record_id text)
           WHERE t.connection_id = x.connection_id AND t.record_id = x.record_id`.execute(trx);
      }
    },
  };
}

const text = (field: string) => `(record->>'${field}')`;

/** Returns per account and period (DAILY … INCEPTION) as each platform reports them. */
export const performanceMetricsProjector = sourceDetailProjector({
  name: 'performance_metrics',
  dataType: 'performance',
  table: 'performance_metrics',
  columns: [
    `platform_account_id text GENERATED ALWAYS AS ${text('platformAccountId')} STORED`,
    `period text GENERATED ALWAYS AS ${text('period')} STORED`,
    `start_date text GENERATED ALWAYS AS ${text('startDate')} STORED`,
    `end_date text GENERATED ALWAYS AS ${text('endDate')} STORED`,
    `return_rate numeric GENERATED ALWAYS AS (${text('returnRate')}::numeric) STORED`,
    `beginning_value numeric GENERATED ALWAYS AS (${text('beginningValue')}::numeric) STORED`,
    `ending_value numeric GENERATED ALWAYS AS (${text('endingValue')}::numeric) STORED`,
    `net_flows numeric GENERATED ALWAYS AS (${text('netFlows')}::numeric) STORED`,
    `currency text GENERATED ALWAYS AS ${text('currency')} STORED`,
  ].join(',\n'),
  indexes: ['CREATE INDEX performance_metrics_period ON performance_metrics (connection_id, period, end_date)'],
});

/** Tax lots (FIFO, LIFO, average cost; short or long term) as each platform reports them. */
export const taxLotsProjector = sourceDetailProjector({
  name: 'tax_lots',
  dataType: 'tax_lots',
  table: 'tax_lots',
  columns: [
    `platform_account_id text GENERATED ALWAYS AS ${text('platformAccountId')} STORED`,
    `holding_record_id text GENERATED ALWAYS AS ${text('holdingRecordId')} STORED`,
    `ticker text GENERATED ALWAYS AS (record->'security'->>'ticker') STORED`,
    `cusip text GENERATED ALWAYS AS (record->'security'->>'cusip') STORED`,
    `isin text GENERATED ALWAYS AS (record->'security'->>'isin') STORED`,
    `acquired_on text GENERATED ALWAYS AS ${text('acquiredOn')} STORED`,
    `quantity numeric GENERATED ALWAYS AS (${text('quantity')}::numeric) STORED`,
    `cost_basis numeric GENERATED ALWAYS AS (${text('costBasis')}::numeric) STORED`,
    `method text GENERATED ALWAYS AS ${text('method')} STORED`,
    `term text GENERATED ALWAYS AS ${text('term')} STORED`,
    `currency text GENERATED ALWAYS AS ${text('currency')} STORED`,
  ].join(',\n'),
  indexes: ['CREATE INDEX tax_lots_holding ON tax_lots (connection_id, holding_record_id)'],
});
