import { sql, type Transaction } from 'kysely';
import { consolidateHoldings, type PortfolioLink, type SourceHolding } from '../domain/consolidation/consolidate.ts';
import { FxRateTable } from '../domain/consolidation/fx.ts';
import { securityKey } from '../domain/consolidation/security-identity.ts';
import type { FxRateEntry } from '../domain/fx/events.ts';
import { applyChanges, type WireRecord } from '../domain/ingestion/source-records.ts';
import { Dec } from '../domain/money/decimal.ts';
import { minorUnits } from '../domain/money/minor-units.ts';
import { HoldingRecordSchema } from '../domain/platforms/records.ts';
import type { RecordedEvent } from '../ports/event-store.ts';
import { CONSOLIDATION_TABLES, createConsolidationTables } from './consolidation-tables.ts';
import type { Projector } from './projector.ts';

type Trx = Transaction<unknown>;
type Data = Record<string, any>;

/** Minutes between holdings syncs when the connection does not say (the platforms' 4-hour schedule). */
const DEFAULT_SYNC_MINUTES = 240;

/** What one batch changed: securities to consolidate again, portfolios whose totals move, connections whose counts move. */
interface Batch {
  /** Per portfolio, each security to consolidate again and the time of the latest event that touched it. */
  readonly touched: Map<string, Map<string, Date>>;
  /** Portfolios whose totals to recompute, with the time of the latest event that moved them. */
  readonly finish: Map<string, Date>;
  readonly connectionStats: Set<string>;
  readonly pendingHoldings: RecordedEvent[];
  /** Per connection, transactions observed minus removed and not yet counted. */
  readonly transactionDeltas: Map<string, number>;
}

/**
 * Portfolios, connections and their links, source holdings and the holdings consolidated from
 * them: one projector, because consolidation reads all of it (links and weights, connection
 * filters, FX rates, source holdings, settled conflicts) and a projector reads only its own tables.
 * Each batch consolidates again only the securities its events touched; a portfolio's total and
 * percentages are recomputed once its running syncs have finished, not for every batch of one.
 */
export const consolidationProjector: Projector = {
  name: 'consolidation',
  version: 1,
  handles: [
    'PortfolioCreated',
    'PortfolioRenamed',
    'PortfolioConnectionLinked',
    'PortfolioConnectionUnlinked',
    'PortfolioTolerancesChanged',
    'ConnectionInitiated',
    'ConnectionAuthorized',
    'ConnectionSettingsChanged',
    'ConnectionCredentialsRenewed',
    'ConnectionErrorRecorded',
    'ConnectionDisconnected',
    'SyncRequested',
    'SyncStarted',
    'SyncCompleted',
    'SyncFailed',
    'SourceRecordObserved',
    'SourceRecordChanged',
    'SourceRecordRemoved',
    'FxRatesRecorded',
    'ConflictDetected',
    'ConflictVersionObserved',
    'ConflictResolved',
    'ConflictIgnored',
  ],
  tables: CONSOLIDATION_TABLES,
  createTables: createConsolidationTables,

  async apply(trx: Trx, events: readonly RecordedEvent[]) {
    const batch: Batch = { touched: new Map(), finish: new Map(), connectionStats: new Set(), pendingHoldings: [], transactionDeltas: new Map() };
    for (const event of events) {
      const data = event.data as Data;
      if (event.type.startsWith('SourceRecord')) {
        if (data.dataType === 'holdings') batch.pendingHoldings.push(event);
        else if (data.dataType === 'transactions') countTransactions(batch, event);
        continue;
      }
      // Source holdings and counts first: what follows (a link, a filter, a disconnection) must see them.
      await flushSources(trx, batch);
      await applyOther(trx, batch, event, data);
    }
    await flushSources(trx, batch);
    for (const [portfolioId, keys] of batch.touched) {
      await consolidate(trx, portfolioId, keys);
      for (const at of keys.values()) finish(batch, portfolioId, at);
    }
    await refreshConnectionStats(trx, batch.connectionStats);
    for (const [portfolioId, at] of batch.finish) await finishPortfolio(trx, portfolioId, at);
  },
};

// Times come from events, never the clock, so that a rebuild writes the same rows.
function touch(batch: Batch, portfolioId: string, key: string, at: Date): void {
  let keys = batch.touched.get(portfolioId);
  if (!keys) batch.touched.set(portfolioId, (keys = new Map()));
  const held = keys.get(key);
  if (!held || held < at) keys.set(key, at);
}

function finish(batch: Batch, portfolioId: string, at: Date): void {
  const held = batch.finish.get(portfolioId);
  if (!held || held < at) batch.finish.set(portfolioId, at);
}

/** Every security a connection contributes, or contributed, to each portfolio it is linked to (or to one). */
async function touchConnection(trx: Trx, batch: Batch, at: Date, connectionId: string, portfolioId?: string): Promise<void> {
  const rows = await sql<{ portfolio_id: string; group_key: string }>`
    SELECT pc.portfolio_id, sh.group_key FROM portfolio_connections pc JOIN source_holdings sh ON sh.connection_id = pc.connection_id
     WHERE pc.connection_id = ${connectionId} AND (${portfolioId ?? null}::text IS NULL OR pc.portfolio_id = ${portfolioId ?? null})
    UNION
    SELECT portfolio_id, security_key FROM holding_sources
     WHERE connection_id = ${connectionId} AND (${portfolioId ?? null}::text IS NULL OR portfolio_id = ${portfolioId ?? null})
    UNION
    SELECT portfolio_id, group_key FROM holding_errors
     WHERE connection_id = ${connectionId} AND (${portfolioId ?? null}::text IS NULL OR portfolio_id = ${portfolioId ?? null})`.execute(trx);
  for (const row of rows.rows) touch(batch, row.portfolio_id, row.group_key, at);
  if (portfolioId) finish(batch, portfolioId, at);
}

async function linkedPortfolios(trx: Trx, connectionIds: readonly string[]): Promise<Map<string, string[]>> {
  const rows = await sql<{ portfolio_id: string; connection_id: string }>`
    SELECT portfolio_id, connection_id FROM portfolio_connections WHERE connection_id = ANY(${connectionIds})`.execute(trx);
  const byConnection = new Map<string, string[]>();
  for (const row of rows.rows) byConnection.set(row.connection_id, [...(byConnection.get(row.connection_id) ?? []), row.portfolio_id]);
  return byConnection;
}

interface SourceRow {
  record: WireRecord;
  groupKey: string;
  revision: number;
  observedAt: Date;
}

/** Applies a run of holdings observations to source_holdings in two statements, noting the securities they touch. */
async function flushHoldings(trx: Trx, batch: Batch): Promise<void> {
  const events = batch.pendingHoldings.splice(0);
  if (events.length === 0) return;
  const id = (data: Data) => `${data.connectionId}\u0000${data.recordId}`;
  const ids = new Map<string, { connection_id: string; record_id: string }>();
  for (const event of events) {
    const data = event.data as Data;
    ids.set(id(data), { connection_id: data.connectionId, record_id: data.recordId });
  }
  const stored = await sql<{ connection_id: string; record_id: string; record: WireRecord; group_key: string; revision: number; observed_at: Date }>`
    SELECT sh.connection_id, sh.record_id, sh.record, sh.group_key, sh.revision, sh.observed_at
      FROM jsonb_to_recordset(${JSON.stringify([...ids.values()])}::jsonb) AS x(connection_id text, record_id text)
      JOIN source_holdings sh ON sh.connection_id = x.connection_id AND sh.record_id = x.record_id`.execute(trx);
  const before = new Map<string, SourceRow>(
    stored.rows.map((r) => [`${r.connection_id}\u0000${r.record_id}`, { record: r.record, groupKey: r.group_key, revision: r.revision, observedAt: r.observed_at }]),
  );
  const after = new Map<string, SourceRow | null>(before);
  const lastAt = new Map<string, Date>();
  for (const event of events) {
    const data = event.data as Data;
    const key = id(data);
    lastAt.set(key, event.recordedAt);
    if (event.type === 'SourceRecordObserved') {
      after.set(key, { record: data.record as WireRecord, groupKey: groupKeyOf(data.connectionId, data.recordId, data.record), revision: data.revision, observedAt: event.recordedAt });
    } else if (event.type === 'SourceRecordChanged') {
      const previous = after.get(key);
      // A change to a record never observed cannot be applied; the log's order makes this unreachable.
      if (!previous) continue;
      const record = applyChanges(previous.record, data.changes as WireRecord);
      after.set(key, { record, groupKey: groupKeyOf(data.connectionId, data.recordId, record), revision: data.revision, observedAt: event.recordedAt });
    } else {
      after.set(key, null);
    }
  }
  const links = await linkedPortfolios(trx, [...new Set([...ids.values()].map((i) => i.connection_id))]);
  const removed: { connection_id: string; record_id: string }[] = [];
  const upserts: Record<string, unknown>[] = [];
  for (const [key, row] of after) {
    const { connection_id, record_id } = ids.get(key)!;
    batch.connectionStats.add(connection_id);
    const old = before.get(key);
    for (const portfolioId of links.get(connection_id) ?? []) {
      if (old) touch(batch, portfolioId, old.groupKey, lastAt.get(key)!);
      if (row) touch(batch, portfolioId, row.groupKey, lastAt.get(key)!);
    }
    if (!row) {
      if (old) removed.push({ connection_id, record_id });
      continue;
    }
    const r = row.record as Data;
    upserts.push({
      connection_id,
      record_id,
      group_key: row.groupKey,
      security_key: row.groupKey.startsWith('UNRESOLVED:') ? null : row.groupKey,
      platform_account_id: r.platformAccountId ?? null,
      ticker: r.security?.ticker ?? null,
      name: r.security?.name ?? null,
      asset_class: r.security?.assetClass ?? null,
      quantity: r.quantity ?? null,
      price: r.price ?? null,
      market_value: r.marketValue ?? null,
      currency: r.currency ?? null,
      as_of: r.asOf ?? null,
      record: row.record,
      revision: row.revision,
      observed_at: row.observedAt.toISOString(),
    });
  }
  if (removed.length > 0) {
    await sql`
      DELETE FROM source_holdings sh USING jsonb_to_recordset(${JSON.stringify(removed)}::jsonb) AS x(connection_id text, record_id text)
       WHERE sh.connection_id = x.connection_id AND sh.record_id = x.record_id`.execute(trx);
  }
  if (upserts.length > 0) {
    await sql`
      INSERT INTO source_holdings (connection_id, record_id, group_key, security_key, platform_account_id, ticker, name, asset_class, quantity, price, market_value, currency, as_of, record, revision, observed_at)
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(upserts)}::jsonb) AS x(connection_id text, record_id text, group_key text, security_key text,
        platform_account_id text, ticker text, name text, asset_class text, quantity numeric, price numeric, market_value numeric, currency text, as_of date,
        record jsonb, revision integer, observed_at timestamptz)
      ON CONFLICT (connection_id, record_id) DO UPDATE SET group_key = excluded.group_key, security_key = excluded.security_key,
        platform_account_id = excluded.platform_account_id, ticker = excluded.ticker, name = excluded.name, asset_class = excluded.asset_class,
        quantity = excluded.quantity, price = excluded.price, market_value = excluded.market_value, currency = excluded.currency, as_of = excluded.as_of,
        record = excluded.record, revision = excluded.revision, observed_at = excluded.observed_at`.execute(trx);
  }
}

/**
 * The canonical security a source record consolidates under; a record without a resolvable
 * identifier (or that no longer parses) is a group of its own, which consolidation reports as an error.
 */
function groupKeyOf(connectionId: string, recordId: string, record: unknown): string {
  const parsed = HoldingRecordSchema.safeParse(record);
  const key = parsed.success ? securityKey(parsed.data.security) : null;
  return key ?? `UNRESOLVED:${connectionId}:${recordId}`;
}

function countTransactions(batch: Batch, event: RecordedEvent): void {
  const delta = event.type === 'SourceRecordObserved' ? 1 : event.type === 'SourceRecordRemoved' ? -1 : 0;
  if (delta === 0) return;
  const connectionId = (event.data as Data).connectionId as string;
  batch.transactionDeltas.set(connectionId, (batch.transactionDeltas.get(connectionId) ?? 0) + delta);
  batch.connectionStats.add(connectionId);
}

/** The source events collected since the last other event: holdings into source_holdings, transaction counts in one statement. */
async function flushSources(trx: Trx, batch: Batch): Promise<void> {
  await flushHoldings(trx, batch);
  if (batch.transactionDeltas.size === 0) return;
  const deltas = [...batch.transactionDeltas];
  batch.transactionDeltas.clear();
  await sql`
    UPDATE connections c SET transactions_count = c.transactions_count + d.delta
      FROM unnest(${deltas.map(([id]) => id)}::text[], ${deltas.map(([, delta]) => delta)}::int[]) AS d(connection_id, delta)
     WHERE c.connection_id = d.connection_id`.execute(trx);
}

async function applyOther(trx: Trx, batch: Batch, event: RecordedEvent, data: Data): Promise<void> {
  const at = event.recordedAt;
  switch (event.type) {
    case 'PortfolioCreated':
      await sql`
        INSERT INTO portfolios (portfolio_id, owner_id, name, base_currency, created_at, updated_at)
        VALUES (${data.portfolioId}, ${data.ownerId}, ${data.name}, ${data.baseCurrency}, ${at}, ${at}) ON CONFLICT DO NOTHING`.execute(trx);
      return;
    case 'PortfolioRenamed':
      await sql`UPDATE portfolios SET name = ${data.name}, updated_at = ${at} WHERE portfolio_id = ${data.portfolioId}`.execute(trx);
      return;
    case 'PortfolioTolerancesChanged':
      await sql`UPDATE portfolios SET tolerances = ${JSON.stringify(data.tolerances)}::jsonb, updated_at = ${at} WHERE portfolio_id = ${data.portfolioId}`.execute(trx);
      return;
    case 'PortfolioConnectionLinked':
      await sql`
        INSERT INTO portfolio_connections (portfolio_id, connection_id, weight, include_in_totals, linked_at)
        VALUES (${data.portfolioId}, ${data.connectionId}, ${data.weight}, ${data.includeInTotals}, ${at})
        ON CONFLICT (portfolio_id, connection_id) DO UPDATE SET weight = excluded.weight, include_in_totals = excluded.include_in_totals`.execute(trx);
      batch.connectionStats.add(data.connectionId);
      await touchConnection(trx, batch, at, data.connectionId, data.portfolioId);
      return;
    case 'PortfolioConnectionUnlinked':
      await touchConnection(trx, batch, at, data.connectionId, data.portfolioId);
      await sql`DELETE FROM portfolio_connections WHERE portfolio_id = ${data.portfolioId} AND connection_id = ${data.connectionId}`.execute(trx);
      return;
    case 'ConnectionInitiated':
      await sql`
        INSERT INTO connections (connection_id, owner_id, platform, platform_account_id, status, display_name, settings, next_sync_at, created_at, updated_at)
        VALUES (${data.connectionId}, ${data.ownerId}, ${data.platform}, ${data.platformAccountId ?? null}, 'pending', ${data.settings.displayName},
                ${JSON.stringify(data.settings)}::jsonb, NULL, ${at}, ${at})
        ON CONFLICT DO NOTHING`.execute(trx);
      return;
    case 'ConnectionAuthorized':
    case 'ConnectionCredentialsRenewed':
      await sql`
        UPDATE connections SET status = 'active', credential_version = ${data.credentialVersion}, last_error = NULL, updated_at = ${at}
         WHERE connection_id = ${data.connectionId}`.execute(trx);
      batch.connectionStats.add(data.connectionId);
      return;
    case 'ConnectionSettingsChanged':
      await sql`
        UPDATE connections SET settings = settings || ${JSON.stringify(data.changes)}::jsonb,
               display_name = coalesce(${data.changes.displayName ?? null}, display_name), updated_at = ${at}
         WHERE connection_id = ${data.connectionId}`.execute(trx);
      batch.connectionStats.add(data.connectionId);
      // A filter decides what consolidates: everything the connection holds is consolidated again.
      if (data.changes.dataFilters !== undefined) await touchConnection(trx, batch, at, data.connectionId);
      return;
    case 'ConnectionErrorRecorded':
      await sql`
        UPDATE connections SET last_error = ${JSON.stringify(data.error)}::jsonb,
               status = CASE WHEN ${data.error.code} = 'AUTH_REVOKED' AND status <> 'disconnected' THEN 'error' ELSE status END, updated_at = ${at}
         WHERE connection_id = ${data.connectionId}`.execute(trx);
      batch.connectionStats.add(data.connectionId);
      return;
    case 'ConnectionDisconnected':
      await sql`UPDATE connections SET status = 'disconnected', running_operation_id = NULL, updated_at = ${at} WHERE connection_id = ${data.connectionId}`.execute(trx);
      batch.connectionStats.add(data.connectionId);
      if (!data.keepData) {
        // The caller asked for the connection's data to leave the read models (the log keeps it).
        await touchConnection(trx, batch, at, data.connectionId);
        await sql`DELETE FROM source_holdings WHERE connection_id = ${data.connectionId}`.execute(trx);
        await sql`UPDATE connections SET holdings_count = 0, transactions_count = 0 WHERE connection_id = ${data.connectionId}`.execute(trx);
      }
      return;
    case 'SyncRequested':
      await sql`
        INSERT INTO consolidation_sync_operations (operation_id, connection_id, data_types) VALUES (${data.operationId}, ${data.connectionId}, ${data.dataTypes})
        ON CONFLICT DO NOTHING`.execute(trx);
      return;
    case 'SyncStarted':
      await sql`
        UPDATE connections c SET running_operation_id = o.operation_id, updated_at = ${at}
          FROM consolidation_sync_operations o WHERE o.operation_id = ${data.operationId} AND c.connection_id = o.connection_id`.execute(trx);
      return;
    case 'SyncCompleted':
    case 'SyncFailed':
      await finishSync(trx, batch, event, data);
      return;
    case 'FxRatesRecorded': {
      const rates = data.rates as FxRateEntry[];
      await sql`
        INSERT INTO consolidation_fx_rates (currency, quote, as_of, rate)
        SELECT DISTINCT ON (currency, quote, "asOf") currency, quote, "asOf", rate
          FROM jsonb_to_recordset(${JSON.stringify(rates.map((r, i) => ({ ...r, i })))}::jsonb) AS x(currency text, quote text, "asOf" date, rate numeric, i integer)
         ORDER BY currency, quote, "asOf", i DESC
        ON CONFLICT (currency, quote, as_of) DO UPDATE SET rate = excluded.rate`.execute(trx);
      const currencies = [...new Set(rates.flatMap((r) => [r.currency, r.quote]))];
      const rows = await sql<{ portfolio_id: string; group_key: string }>`
        SELECT DISTINCT pc.portfolio_id, sh.group_key FROM source_holdings sh JOIN portfolio_connections pc ON pc.connection_id = sh.connection_id
         WHERE sh.currency = ANY(${currencies})`.execute(trx);
      for (const row of rows.rows) touch(batch, row.portfolio_id, row.group_key, at);
      return;
    }
    case 'ConflictDetected':
      await sql`
        INSERT INTO consolidation_conflicts (conflict_id, portfolio_id, security_key, field)
        VALUES (${data.conflictId}, ${data.portfolioId}, ${data.securityKey}, ${data.field}) ON CONFLICT DO NOTHING`.execute(trx);
      return;
    case 'ConflictResolved':
    case 'ConflictVersionObserved':
    case 'ConflictIgnored': {
      // Only a resolved quantity settles what a security amounts to; a new version or an ignore unsettles it.
      const settled = event.type === 'ConflictResolved' ? (data.value as string) : null;
      const row = await sql<{ portfolio_id: string; security_key: string }>`
        UPDATE consolidation_conflicts SET settled_quantity = CASE WHEN field = 'quantity' THEN ${settled}::numeric END,
               settled_position = CASE WHEN field = 'quantity' AND ${settled}::numeric IS NOT NULL THEN ${event.globalPosition}::bigint END
         WHERE conflict_id = ${data.conflictId} AND field = 'quantity'
        RETURNING portfolio_id, security_key`.execute(trx);
      for (const r of row.rows) touch(batch, r.portfolio_id, r.security_key, at);
      return;
    }
  }
}

async function finishSync(trx: Trx, batch: Batch, event: RecordedEvent, data: Data): Promise<void> {
  const at = event.recordedAt;
  const op = await sql<{ connection_id: string; data_types: string[]; frequency: number | null; auto_sync: boolean | null }>`
    SELECT o.connection_id, o.data_types, (c.settings->>'syncFrequencyMinutes')::int AS frequency, (c.settings->>'autoSync')::boolean AS auto_sync
      FROM consolidation_sync_operations o LEFT JOIN connections c ON c.connection_id = o.connection_id
     WHERE o.operation_id = ${data.operationId}`.execute(trx);
  const operation = op.rows[0];
  if (!operation) return;
  const failed = event.type === 'SyncFailed';
  const counts = data.counts as { failed: number };
  const nextScheduled = operation.auto_sync === false ? null : new Date(at.getTime() + (operation.frequency ?? DEFAULT_SYNC_MINUTES) * 60_000);
  const next = failed && data.retryAt ? new Date(data.retryAt as string) : nextScheduled;
  const holdings = !failed && operation.data_types.includes('holdings');
  await sql`
    UPDATE connections SET
      running_operation_id = NULL,
      last_sync_operation_id = ${data.operationId},
      last_sync_at = ${at},
      last_sync_status = ${failed ? 'failed' : (data.outcome as string)},
      last_holdings_sync_at = CASE WHEN ${holdings} THEN ${at}::timestamptz ELSE last_holdings_sync_at END,
      next_sync_at = ${next},
      error_count = ${counts.failed + (failed ? 1 : 0)},
      sync_count = sync_count + 1,
      success_count = success_count + ${failed ? 0 : 1},
      updated_at = ${at}
     WHERE connection_id = ${operation.connection_id}`.execute(trx);
  if (holdings) {
    // Unchanged records append nothing, yet this sync saw them: their sources were synced now.
    await sql`UPDATE holding_sources SET last_synced_at = ${at} WHERE connection_id = ${operation.connection_id} AND last_synced_at < ${at}`.execute(trx);
  }
  batch.connectionStats.add(operation.connection_id);
  for (const portfolioId of (await linkedPortfolios(trx, [operation.connection_id])).get(operation.connection_id) ?? []) finish(batch, portfolioId, at);
}

/** Consolidates the given securities of one portfolio again from its linked sources, replacing their rows. */
async function consolidate(trx: Trx, portfolioId: string, keys: ReadonlyMap<string, Date>): Promise<void> {
  const keyList = [...keys.keys()];
  const portfolio = (await sql<{ base_currency: string }>`SELECT base_currency FROM portfolios WHERE portfolio_id = ${portfolioId}`.execute(trx)).rows[0];
  await sql`DELETE FROM holdings WHERE portfolio_id = ${portfolioId} AND security_key = ANY(${keyList})`.execute(trx);
  await sql`DELETE FROM holding_sources WHERE portfolio_id = ${portfolioId} AND security_key = ANY(${keyList})`.execute(trx);
  await sql`DELETE FROM holding_errors WHERE portfolio_id = ${portfolioId} AND group_key = ANY(${keyList})`.execute(trx);
  if (!portfolio) return;
  const base = portfolio.base_currency;
  const linkRows = await sql<{ connection_id: string; weight: string; include_in_totals: boolean; filters: PortfolioLink['filters'] | null }>`
    SELECT pc.connection_id, pc.weight, pc.include_in_totals, c.settings->'dataFilters' AS filters
      FROM portfolio_connections pc LEFT JOIN connections c ON c.connection_id = pc.connection_id
     WHERE pc.portfolio_id = ${portfolioId}`.execute(trx);
  const links: PortfolioLink[] = linkRows.rows.map((l) => ({ connectionId: l.connection_id, weight: new Dec(l.weight), includeInTotals: l.include_in_totals, filters: l.filters ?? {} }));
  if (links.length === 0) return;
  const sourceRows = await sql<{ connection_id: string; record_id: string; group_key: string; record: unknown; observed_at: Date; last_holdings_sync_at: Date | null }>`
    SELECT sh.connection_id, sh.record_id, sh.group_key, sh.record, sh.observed_at, c.last_holdings_sync_at
      FROM source_holdings sh LEFT JOIN connections c ON c.connection_id = sh.connection_id
     WHERE sh.group_key = ANY(${keyList}) AND sh.connection_id = ANY(${links.map((l) => l.connectionId)})
     ORDER BY sh.connection_id, sh.record_id`.execute(trx);
  const sources: SourceHolding[] = [];
  const errors: Record<string, unknown>[] = [];
  const origin = new Map<string, { connectionId: string; groupKey: string }>();
  for (const row of sourceRows.rows) {
    const parsed = HoldingRecordSchema.safeParse(row.record);
    if (!parsed.success) {
      errors.push({ group_key: row.group_key, connection_id: row.connection_id, record_id: row.record_id, code: 'RECORD_INVALID', message: parsed.error.issues[0]?.message ?? 'invalid holding' });
      continue;
    }
    const synced = Math.max(row.observed_at.getTime(), row.last_holdings_sync_at?.getTime() ?? 0);
    sources.push({ connectionId: row.connection_id, holding: parsed.data, lastSyncedAt: synced });
    origin.set(`${row.connection_id}\u0000${parsed.data.platformRecordId}`, { connectionId: row.connection_id, groupKey: row.group_key });
  }
  const currencies = [...new Set([base, ...sources.map((s) => s.holding.currency)])];
  const fxRows = await sql<{ currency: string; quote: string; as_of: string; rate: string }>`
    SELECT currency, quote, as_of::text, rate::text FROM consolidation_fx_rates WHERE currency = ANY(${currencies}) AND quote = ANY(${currencies})`.execute(trx);
  const fx = new FxRateTable(fxRows.rows.map((r) => ({ currency: r.currency, quote: r.quote, asOf: r.as_of, rate: new Dec(r.rate) })));
  const settledRows = await sql<{ security_key: string; settled_quantity: string }>`
    SELECT DISTINCT ON (security_key) security_key, settled_quantity::text FROM consolidation_conflicts
     WHERE portfolio_id = ${portfolioId} AND security_key = ANY(${keyList}) AND settled_quantity IS NOT NULL
     ORDER BY security_key, settled_position DESC`.execute(trx);
  const settled = new Map(settledRows.rows.map((r) => [r.security_key, new Dec(r.settled_quantity)]));
  const result = consolidateHoldings(sources, links, base, fx, settled);
  // Values keep the base currency's minor unit in their text: "1394.70", as the total will.
  const cents = minorUnits(base);
  const byRecord = new Map(sources.map((s) => [s.holding.platformRecordId, s.connectionId]));
  for (const error of result.errors) {
    const connectionId = byRecord.get(error.recordId)!;
    const where = origin.get(`${connectionId}\u0000${error.recordId}`)!;
    errors.push({ group_key: where.groupKey, connection_id: connectionId, record_id: error.recordId, code: error.code, message: error.message });
  }
  const holdingRows = result.holdings.map((h) => ({
    portfolio_id: portfolioId,
    security_key: h.securityKey,
    name: h.name,
    ticker: h.ticker ?? null,
    asset_class: h.assetClass,
    quantity: h.quantity.toFixed(),
    value: h.value.toFixed(cents),
    source_count: h.sources.length,
    settled: settled.has(h.securityKey),
    updated_at: keys.get(h.securityKey)!.toISOString(),
  }));
  const sourceBreakdown = result.holdings.flatMap((h) =>
    h.sources.map((s) => ({
      portfolio_id: portfolioId,
      security_key: h.securityKey,
      connection_id: s.connectionId,
      record_id: s.platformRecordId,
      quantity: s.quantity.toFixed(),
      value: s.value.toFixed(cents),
      last_synced_at: new Date(s.lastSyncedAt).toISOString(),
      confidence: s.confidence.toFixed(),
    })),
  );
  if (holdingRows.length > 0) {
    await sql`
      INSERT INTO holdings (portfolio_id, security_key, name, ticker, asset_class, quantity, value, source_count, settled, updated_at)
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(holdingRows)}::jsonb) AS x(portfolio_id text, security_key text, name text, ticker text,
        asset_class text, quantity numeric, value numeric, source_count integer, settled boolean, updated_at timestamptz)`.execute(trx);
    await sql`
      INSERT INTO holding_sources (portfolio_id, security_key, connection_id, record_id, quantity, value, last_synced_at, confidence)
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(sourceBreakdown)}::jsonb) AS x(portfolio_id text, security_key text, connection_id text,
        record_id text, quantity numeric, value numeric, last_synced_at timestamptz, confidence numeric)`.execute(trx);
  }
  if (errors.length > 0) {
    await sql`
      INSERT INTO holding_errors (portfolio_id, group_key, connection_id, record_id, code, message)
      SELECT ${portfolioId}, group_key, connection_id, record_id, code, message
        FROM jsonb_to_recordset(${JSON.stringify(errors)}::jsonb) AS x(group_key text, connection_id text, record_id text, code text, message text)
      ON CONFLICT (portfolio_id, connection_id, record_id) DO UPDATE SET group_key = excluded.group_key, code = excluded.code, message = excluded.message`.execute(trx);
  }
}

/** Counts and sync facts of connections, copied onto their portfolio links. */
async function refreshConnectionStats(trx: Trx, connectionIds: ReadonlySet<string>): Promise<void> {
  if (connectionIds.size === 0) return;
  const ids = [...connectionIds];
  await sql`
    UPDATE connections c SET holdings_count = (SELECT count(*) FROM source_holdings sh WHERE sh.connection_id = c.connection_id)
     WHERE c.connection_id = ANY(${ids})`.execute(trx);
  await sql`
    UPDATE portfolio_connections pc SET platform = c.platform, display_name = c.display_name, status = c.status, last_sync_at = c.last_sync_at,
           last_sync_status = c.last_sync_status, next_sync_at = c.next_sync_at, error_count = c.error_count,
           success_rate = CASE WHEN c.sync_count = 0 THEN NULL ELSE round(c.success_count::numeric / c.sync_count, 4) END,
           holdings_count = c.holdings_count, transactions_count = c.transactions_count
      FROM connections c WHERE c.connection_id = pc.connection_id AND c.connection_id = ANY(${ids})`.execute(trx);
}

/**
 * A portfolio's total (the sum of its holdings' values, so exactly the parts shown), each
 * holding's percent of it (4 places, half to even as the domain rounds) and each link's value.
 * Deferred while a linked connection's sync runs: its completion finishes the portfolio.
 */
async function finishPortfolio(trx: Trx, portfolioId: string, at: Date): Promise<void> {
  const running = await sql<{ running: boolean }>`
    SELECT EXISTS (SELECT 1 FROM portfolio_connections pc JOIN connections c ON c.connection_id = pc.connection_id
                    WHERE pc.portfolio_id = ${portfolioId} AND c.running_operation_id IS NOT NULL) AS running`.execute(trx);
  if (running.rows[0]?.running) return;
  await sql`
    UPDATE portfolios p SET total_value = t.total, holdings_count = t.n, updated_at = ${at}
      FROM (SELECT coalesce(sum(value), 0) AS total, count(*)::int AS n FROM holdings WHERE portfolio_id = ${portfolioId}) t
     WHERE p.portfolio_id = ${portfolioId}`.execute(trx);
  await sql`
    UPDATE holdings h SET percent_of_portfolio = s.percent
      FROM (SELECT security_key,
                   CASE WHEN t.total = 0 THEN 0
                        WHEN abs(x * 10000 - trunc(x * 10000)) = 0.5 AND mod(trunc(x * 10000), 2) = 0 THEN trunc(x, 4)
                        ELSE round(x, 4) END AS percent
              FROM holdings
              CROSS JOIN (SELECT total_value AS total FROM portfolios WHERE portfolio_id = ${portfolioId}) t
              CROSS JOIN LATERAL (SELECT CASE WHEN t.total = 0 THEN 0 ELSE (value * 100)::numeric(1000, 30) / t.total END AS x) q
             WHERE portfolio_id = ${portfolioId}) s
     WHERE h.portfolio_id = ${portfolioId} AND h.security_key = s.security_key AND h.percent_of_portfolio IS DISTINCT FROM s.percent`.execute(trx);
  await sql`
    UPDATE portfolio_connections pc SET value = coalesce((SELECT sum(value) FROM holding_sources hs
                                                           WHERE hs.portfolio_id = pc.portfolio_id AND hs.connection_id = pc.connection_id), 0)
     WHERE pc.portfolio_id = ${portfolioId}`.execute(trx);
}
