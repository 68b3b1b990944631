import { sql, type Transaction } from 'kysely';

/** Every table the consolidation projector owns: the read models and what it needs to compute them. */
export const CONSOLIDATION_TABLES = [
  'portfolios',
  'connections',
  'portfolio_connections',
  'source_holdings',
  'holdings',
  'holding_sources',
  'holding_errors',
  'consolidation_fx_rates',
  'consolidation_sync_operations',
  'consolidation_conflicts',
] as const;

export async function createConsolidationTables(trx: Transaction<unknown>): Promise<void> {
  await sql`
    CREATE TABLE portfolios (
      portfolio_id text PRIMARY KEY,
      owner_id text NOT NULL,
      name text NOT NULL,
      base_currency text NOT NULL,
      tolerances jsonb,
      total_value numeric NOT NULL DEFAULT 0,
      holdings_count integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL
    )`.execute(trx);
  await sql`CREATE INDEX portfolios_owner ON portfolios (owner_id)`.execute(trx);
  await sql`
    CREATE TABLE connections (
      connection_id text PRIMARY KEY,
      owner_id text NOT NULL,
      platform text NOT NULL,
      platform_account_id text,
      status text NOT NULL,
      display_name text NOT NULL,
      settings jsonb NOT NULL,
      credential_version integer,
      last_error jsonb,
      running_operation_id text,
      last_sync_operation_id text,
      last_sync_at timestamptz,
      last_sync_status text,
      last_holdings_sync_at timestamptz,
      next_sync_at timestamptz,
      error_count integer NOT NULL DEFAULT 0,
      sync_count integer NOT NULL DEFAULT 0,
      success_count integer NOT NULL DEFAULT 0,
      holdings_count integer NOT NULL DEFAULT 0,
      transactions_count integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL
    )`.execute(trx);
  await sql`
    CREATE TABLE portfolio_connections (
      portfolio_id text NOT NULL,
      connection_id text NOT NULL,
      weight numeric NOT NULL,
      include_in_totals boolean NOT NULL,
      linked_at timestamptz NOT NULL,
      platform text,
      display_name text,
      status text,
      last_sync_at timestamptz,
      last_sync_status text,
      next_sync_at timestamptz,
      error_count integer NOT NULL DEFAULT 0,
      success_rate numeric,
      holdings_count integer NOT NULL DEFAULT 0,
      transactions_count integer NOT NULL DEFAULT 0,
      value numeric NOT NULL DEFAULT 0,
      PRIMARY KEY (portfolio_id, connection_id)
    )`.execute(trx);
  await sql`CREATE INDEX portfolio_connections_connection ON portfolio_connections (connection_id)`.execute(trx);
  await sql`
    CREATE TABLE source_holdings (
      connection_id text NOT NULL,
      record_id text NOT NULL,
      group_key text NOT NULL,
      security_key text,
      platform_account_id text,
      ticker text,
      name text,
      asset_class text,
      quantity numeric,
      price numeric,
      market_value numeric,
      currency text,
      as_of date,
      record jsonb NOT NULL,
      revision integer NOT NULL,
      observed_at timestamptz NOT NULL,
      PRIMARY KEY (connection_id, record_id)
    )`.execute(trx);
  await sql`CREATE INDEX source_holdings_group ON source_holdings (group_key, connection_id)`.execute(trx);
  await sql`
    CREATE TABLE holdings (
      portfolio_id text NOT NULL,
      security_key text NOT NULL,
      name text NOT NULL,
      ticker text,
      asset_class text NOT NULL,
      quantity numeric NOT NULL,
      value numeric NOT NULL,
      percent_of_portfolio numeric NOT NULL DEFAULT 0,
      source_count integer NOT NULL,
      settled boolean NOT NULL,
      updated_at timestamptz NOT NULL,
      PRIMARY KEY (portfolio_id, security_key)
    )`.execute(trx);
  await sql`
    CREATE TABLE holding_sources (
      portfolio_id text NOT NULL,
      security_key text NOT NULL,
      connection_id text NOT NULL,
      record_id text NOT NULL,
      quantity numeric NOT NULL,
      value numeric NOT NULL,
      last_synced_at timestamptz NOT NULL,
      confidence numeric NOT NULL,
      PRIMARY KEY (portfolio_id, security_key, connection_id, record_id)
    )`.execute(trx);
  await sql`CREATE INDEX holding_sources_connection ON holding_sources (connection_id, portfolio_id)`.execute(trx);
  await sql`
    CREATE TABLE holding_errors (
      portfolio_id text NOT NULL,
      group_key text NOT NULL,
      connection_id text NOT NULL,
      record_id text NOT NULL,
      code text NOT NULL,
      message text NOT NULL,
      PRIMARY KEY (portfolio_id, connection_id, record_id)
    )`.execute(trx);
  await sql`CREATE INDEX holding_errors_group ON holding_errors (portfolio_id, group_key)`.execute(trx);
  await sql`
    CREATE TABLE consolidation_fx_rates (
      currency text NOT NULL,
      quote text NOT NULL,
      as_of date NOT NULL,
      rate numeric NOT NULL,
      PRIMARY KEY (currency, quote, as_of)
    )`.execute(trx);
  await sql`
    CREATE TABLE consolidation_sync_operations (
      operation_id text PRIMARY KEY,
      connection_id text NOT NULL,
      data_types text[] NOT NULL
    )`.execute(trx);
  await sql`
    CREATE TABLE consolidation_conflicts (
      conflict_id text PRIMARY KEY,
      portfolio_id text NOT NULL,
      security_key text NOT NULL,
      field text NOT NULL,
      settled_quantity numeric,
      settled_position bigint
    )`.execute(trx);
  await sql`CREATE INDEX consolidation_conflicts_security ON consolidation_conflicts (portfolio_id, security_key)`.execute(trx);
}
