import { sql, type Kysely } from 'kysely';

/** Read-side queries over the portfolio read models, for the CLI and the query API. */

export interface PortfolioView {
  readonly portfolio: { portfolio_id: string; name: string; owner_id: string; base_currency: string; total_value: string; holdings_count: number };
  readonly connections: Record<string, unknown>[];
  readonly holdings: (Record<string, unknown> & { security_key: string; sources: Record<string, unknown>[] })[];
  readonly conflicts: Record<string, unknown>[];
  readonly operations: Record<string, unknown>[];
  readonly errors: Record<string, unknown>[];
}

export async function portfolioView(db: Kysely<unknown>, portfolioId: string, options: { operations?: number } = {}): Promise<PortfolioView | null> {
  const portfolio = (await sql<PortfolioView['portfolio']>`
    SELECT portfolio_id, name, owner_id, base_currency, total_value::text, holdings_count FROM portfolios WHERE portfolio_id = ${portfolioId}`.execute(db)).rows[0];
  if (!portfolio) return null;
  const connections = (await sql<Record<string, unknown>>`
    SELECT connection_id, platform, display_name, status, weight::text, include_in_totals, last_sync_at, last_sync_status, next_sync_at, error_count,
           success_rate::text, holdings_count, transactions_count, value::text
      FROM portfolio_connections WHERE portfolio_id = ${portfolioId} ORDER BY connection_id`.execute(db)).rows;
  const holdings = (await sql<Record<string, unknown> & { security_key: string }>`
    SELECT security_key, name, ticker, asset_class, quantity::text, value::text, percent_of_portfolio::text AS percent, source_count, settled
      FROM holdings WHERE portfolio_id = ${portfolioId} ORDER BY value DESC, security_key`.execute(db)).rows;
  const sources = (await sql<Record<string, unknown> & { security_key: string }>`
    SELECT security_key, connection_id, record_id, quantity::text, value::text, last_synced_at, confidence::text
      FROM holding_sources WHERE portfolio_id = ${portfolioId} ORDER BY security_key, connection_id, record_id`.execute(db)).rows;
  const bySecurity = new Map<string, Record<string, unknown>[]>();
  for (const { security_key: key, ...source } of sources) bySecurity.set(key, [...(bySecurity.get(key) ?? []), source]);
  const conflicts = (await sql<Record<string, unknown>>`
    SELECT conflict_id, security_key, conflict_type, field, status, strategy, resolved_value::text, chosen_version, resolved_by, automatic,
           jsonb_array_length(versions) AS versions, detected_at
      FROM portfolio_conflicts WHERE portfolio_id = ${portfolioId}
     ORDER BY (status = 'open') DESC, detected_at DESC, conflict_id`.execute(db)).rows;
  const operations = (await sql<Record<string, unknown>>`
    SELECT o.operation_id, o.connection_id, o.data_types, o.trigger, o.status, o.processed, o.inserted, o.updated, o.skipped, o.failed,
           o.requested_at, o.finished_at, o.duration_ms
      FROM sync_operations o WHERE o.connection_id IN (SELECT connection_id FROM portfolio_connections WHERE portfolio_id = ${portfolioId})
     ORDER BY o.requested_at DESC LIMIT ${options.operations ?? 10}`.execute(db)).rows;
  const errors = (await sql<Record<string, unknown>>`
    SELECT connection_id, record_id, code, message FROM holding_errors WHERE portfolio_id = ${portfolioId} ORDER BY connection_id, record_id`.execute(db)).rows;
  return {
    portfolio,
    connections,
    holdings: holdings.map((h) => ({ ...h, sources: bySecurity.get(h.security_key) ?? [] })),
    conflicts,
    operations,
    errors,
  };
}

export type ConflictStatusFilter = 'open' | 'resolved' | 'ignored' | 'all';

export async function conflictList(db: Kysely<unknown>, filter: { status?: ConflictStatusFilter; portfolioId?: string; limit?: number } = {}): Promise<Record<string, unknown>[]> {
  const status = filter.status ?? 'open';
  return (await sql<Record<string, unknown>>`
    SELECT conflict_id, portfolio_id, security_key, conflict_type, field, status, versions, strategy, resolved_value::text, chosen_version,
           resolved_by, automatic, detected_at
      FROM portfolio_conflicts
     WHERE (${status} = 'all' OR status = ${status}) AND (${filter.portfolioId ?? null}::text IS NULL OR portfolio_id = ${filter.portfolioId ?? null})
     ORDER BY detected_at DESC, conflict_id LIMIT ${filter.limit ?? 100}`.execute(db)).rows;
}

/** The conflict a unique prefix of its id names (ids are long; people type the first few characters). */
export async function conflictIdByPrefix(db: Kysely<unknown>, prefix: string): Promise<string> {
  const rows = (await sql<{ conflict_id: string }>`
    SELECT conflict_id FROM portfolio_conflicts WHERE starts_with(conflict_id, ${prefix.toUpperCase()}) ORDER BY conflict_id LIMIT 2`.execute(db)).rows;
  if (rows.length === 0) throw new Error(`no conflict id starts with ${prefix}`);
  if (rows.length > 1) throw new Error(`${prefix} names more than one conflict: give more characters`);
  return rows[0]!.conflict_id;
}

export async function fxRateList(db: Kysely<unknown>, filter: { currency?: string } = {}): Promise<Record<string, unknown>[]> {
  return (await sql<Record<string, unknown>>`
    SELECT currency, quote, as_of::text, rate::text, source, recorded_at FROM fx_rates
     WHERE ${filter.currency ?? null}::text IS NULL OR currency = ${filter.currency ?? null} OR quote = ${filter.currency ?? null}
     ORDER BY currency, quote, as_of DESC`.execute(db)).rows;
}
