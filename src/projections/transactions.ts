import { hash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import { securityKey } from '../domain/consolidation/security-identity.ts';
import { canonicalJson } from '../domain/events/hash-chain.ts';
import type { WireRecord } from '../domain/ingestion/source-records.ts';
import { Dec } from '../domain/money/decimal.ts';
import { TransactionRecordSchema } from '../domain/platforms/records.ts';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';
import { foldSourceEvents } from './source-record-fold.ts';

type Trx = Transaction<unknown>;
type Data = Record<string, any>;

/**
 * What makes two sources' records one transaction: type, trade date, security, quantity, amount
 * and currency. Within one source, records alike in all of these are still distinct (two equal
 * buys on one day): the n-th of them in one source meets the n-th in another.
 */
export function dedupKey(record: WireRecord): string {
  const parsed = TransactionRecordSchema.safeParse(record);
  if (!parsed.success) return `INVALID:${canonicalJson(record)}`;
  const t = parsed.data;
  const parts = [t.type, t.tradeDate, t.security ? (securityKey(t.security) ?? '') : '', t.quantity ? new Dec(t.quantity).toFixed() : '', new Dec(t.amount).toFixed(), t.currency];
  return hash('sha256', parts.join('|'), 'hex').slice(0, 32);
}

/** Transactions of each portfolio, de-duplicated across its sources, each with the sources that reported it. */
export const transactionsProjector: Projector = {
  name: 'transactions',
  version: 1,
  handles: ['SourceRecordObserved', 'SourceRecordChanged', 'SourceRecordRemoved', 'PortfolioConnectionLinked', 'PortfolioConnectionUnlinked', 'ConnectionDisconnected'],
  tables: ['source_transactions', 'transactions', 'transaction_links'],

  async createTables(trx) {
    await sql`
      CREATE TABLE source_transactions (
        connection_id text NOT NULL,
        record_id text NOT NULL,
        dedup_key text NOT NULL,
        record jsonb NOT NULL,
        revision integer NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (connection_id, record_id)
      )`.execute(trx);
    await sql`CREATE INDEX source_transactions_key ON source_transactions (dedup_key)`.execute(trx);
    await sql`
      CREATE TABLE transactions (
        portfolio_id text NOT NULL,
        transaction_id text NOT NULL,
        dedup_key text NOT NULL,
        type text NOT NULL,
        status text,
        trade_date text,
        settle_date text,
        ticker text,
        security_name text,
        quantity numeric,
        price numeric,
        amount numeric,
        currency text,
        description text,
        source_count integer NOT NULL,
        sources jsonb NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (portfolio_id, transaction_id)
      )`.execute(trx);
    await sql`CREATE INDEX transactions_key ON transactions (portfolio_id, dedup_key)`.execute(trx);
    await sql`CREATE INDEX transactions_date ON transactions (portfolio_id, trade_date DESC)`.execute(trx);
    await sql`CREATE TABLE transaction_links (portfolio_id text NOT NULL, connection_id text NOT NULL, PRIMARY KEY (portfolio_id, connection_id))`.execute(trx);
    await sql`CREATE INDEX transaction_links_connection ON transaction_links (connection_id)`.execute(trx);
  },

  async apply(trx: Trx, events: readonly RecordedEvent[]) {
    const touched = new Map<string, Map<string, Date>>();
    const touch = (portfolioId: string, key: string, at: Date) => {
      let keys = touched.get(portfolioId);
      if (!keys) touched.set(portfolioId, (keys = new Map()));
      if (!keys.has(key) || keys.get(key)! < at) keys.set(key, at);
    };
    let pending: RecordedEvent[] = [];
    const flush = async () => {
      if (pending.length > 0) await applySources(trx, pending, touch);
      pending = [];
    };
    for (const event of events) {
      const data = event.data as Data;
      if (event.type.startsWith('SourceRecord')) {
        if (data.dataType === 'transactions') pending.push(event);
        continue;
      }
      await flush();
      const scope = event.type === 'ConnectionDisconnected' ? null : (data.portfolioId as string);
      if (event.type === 'ConnectionDisconnected' && data.keepData) continue;
      const keys = await sql<{ portfolio_id: string; dedup_key: string }>`
        SELECT l.portfolio_id, s.dedup_key FROM transaction_links l JOIN source_transactions s ON s.connection_id = l.connection_id
         WHERE l.connection_id = ${data.connectionId} AND (${scope}::text IS NULL OR l.portfolio_id = ${scope})`.execute(trx);
      for (const row of keys.rows) touch(row.portfolio_id, row.dedup_key, event.recordedAt);
      if (event.type === 'PortfolioConnectionLinked') {
        await sql`INSERT INTO transaction_links VALUES (${data.portfolioId}, ${data.connectionId}) ON CONFLICT DO NOTHING`.execute(trx);
        const added = await sql<{ dedup_key: string }>`SELECT DISTINCT dedup_key FROM source_transactions WHERE connection_id = ${data.connectionId}`.execute(trx);
        for (const row of added.rows) touch(data.portfolioId, row.dedup_key, event.recordedAt);
      } else if (event.type === 'PortfolioConnectionUnlinked') {
        await sql`DELETE FROM transaction_links WHERE portfolio_id = ${data.portfolioId} AND connection_id = ${data.connectionId}`.execute(trx);
      } else {
        await sql`DELETE FROM source_transactions WHERE connection_id = ${data.connectionId}`.execute(trx);
      }
    }
    await flush();
    for (const [portfolioId, keys] of touched) await regroup(trx, portfolioId, keys);
  },
};

async function applySources(trx: Trx, events: readonly RecordedEvent[], touch: (portfolioId: string, key: string, at: Date) => void): Promise<void> {
  const folded = [...foldSourceEvents(events).values()];
  const ids = folded.map((f) => ({ connection_id: f.connectionId, record_id: f.recordId }));
  const stored = await sql<{ connection_id: string; record_id: string; dedup_key: string; record: WireRecord }>`
    SELECT s.connection_id, s.record_id, s.dedup_key, s.record
      FROM jsonb_to_recordset(${JSON.stringify(ids)}::jsonb) AS x(connection_id text, record_id text)
      JOIN source_transactions s ON s.connection_id = x.connection_id AND s.record_id = x.record_id`.execute(trx);
  const before = new Map(stored.rows.map((r) => [`${r.connection_id}\u0000${r.record_id}`, r]));
  const links = await sql<{ portfolio_id: string; connection_id: string }>`
    SELECT portfolio_id, connection_id FROM transaction_links WHERE connection_id = ANY(${[...new Set(folded.map((f) => f.connectionId))]})`.execute(trx);
  const portfoliosOf = (connectionId: string) => links.rows.filter((l) => l.connection_id === connectionId).map((l) => l.portfolio_id);
  const upserts: Record<string, unknown>[] = [];
  const removed: Record<string, unknown>[] = [];
  for (const f of folded) {
    const old = before.get(`${f.connectionId}\u0000${f.recordId}`);
    let record: WireRecord | null = f.whole;
    if (!record && !f.removed && old) {
      const next: Record<string, unknown> = { ...old.record };
      for (const [field, value] of Object.entries(f.changes)) {
        if (value === null) delete next[field];
        else next[field] = value;
      }
      record = next;
    }
    const key = record ? dedupKey(record) : null;
    for (const portfolioId of portfoliosOf(f.connectionId)) {
      if (old) touch(portfolioId, old.dedup_key, f.at);
      if (key) touch(portfolioId, key, f.at);
    }
    if (record) upserts.push({ connection_id: f.connectionId, record_id: f.recordId, dedup_key: key, record, revision: f.revision, updated_at: f.at.toISOString() });
    else if (old) removed.push({ connection_id: f.connectionId, record_id: f.recordId });
  }
  if (upserts.length > 0) {
    await sql`
      INSERT INTO source_transactions (connection_id, record_id, dedup_key, record, revision, updated_at)
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(upserts)}::jsonb)
        AS x(connection_id text, record_id text, dedup_key text, record jsonb, revision integer, updated_at timestamptz)
      ON CONFLICT (connection_id, record_id) DO UPDATE SET dedup_key = excluded.dedup_key, record = excluded.record, revision = excluded.revision, updated_at = excluded.updated_at`.execute(trx);
  }
  if (removed.length > 0) {
    await sql`
      DELETE FROM source_transactions s USING jsonb_to_recordset(${JSON.stringify(removed)}::jsonb) AS x(connection_id text, record_id text)
       WHERE s.connection_id = x.connection_id AND s.record_id = x.record_id`.execute(trx);
  }
}

/** Rebuilds a portfolio's transactions for the given keys: the n-th record of a key in each source is one transaction. */
async function regroup(trx: Trx, portfolioId: string, keys: ReadonlyMap<string, Date>): Promise<void> {
  const keyList = [...keys.keys()];
  await sql`DELETE FROM transactions WHERE portfolio_id = ${portfolioId} AND dedup_key = ANY(${keyList})`.execute(trx);
  const sources = await sql<{ connection_id: string; record_id: string; dedup_key: string; record: Data }>`
    SELECT s.connection_id, s.record_id, s.dedup_key, s.record FROM source_transactions s
      JOIN transaction_links l ON l.connection_id = s.connection_id AND l.portfolio_id = ${portfolioId}
     WHERE s.dedup_key = ANY(${keyList})
     ORDER BY s.dedup_key, s.connection_id, s.record_id`.execute(trx);
  const groups = new Map<string, Data[][]>();
  const ordinal = new Map<string, number>();
  for (const row of sources.rows) {
    const n = ordinal.get(`${row.dedup_key}\u0000${row.connection_id}`) ?? 0;
    ordinal.set(`${row.dedup_key}\u0000${row.connection_id}`, n + 1);
    const list = groups.get(row.dedup_key) ?? [];
    (list[n] ??= []).push({ connectionId: row.connection_id, recordId: row.record_id, record: row.record });
    groups.set(row.dedup_key, list);
  }
  const rows: Record<string, unknown>[] = [];
  for (const [key, list] of groups) {
    list.forEach((members, n) => {
      const r = members[0]!.record;
      rows.push({
        portfolio_id: portfolioId,
        transaction_id: `${key}:${n + 1}`,
        dedup_key: key,
        type: r.type,
        status: r.status ?? null,
        trade_date: r.tradeDate ?? null,
        settle_date: r.settleDate ?? null,
        ticker: r.security?.ticker ?? null,
        security_name: r.security?.name ?? null,
        quantity: r.quantity ?? null,
        price: r.price ?? null,
        amount: r.amount ?? null,
        currency: r.currency ?? null,
        description: r.description ?? null,
        source_count: members.length,
        sources: members.map((m) => ({ connectionId: m.connectionId, recordId: m.recordId, status: m.record.status })),
        updated_at: keys.get(key)!.toISOString(),
      });
    });
  }
  if (rows.length > 0) {
    await sql`
      INSERT INTO transactions (portfolio_id, transaction_id, dedup_key, type, status, trade_date, settle_date, ticker, security_name, quantity, price, amount, currency, description, source_count, sources, updated_at)
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(portfolio_id text, transaction_id text, dedup_key text, type text, status text,
        trade_date text, settle_date text, ticker text, security_name text, quantity numeric, price numeric, amount numeric, currency text, description text,
        source_count integer, sources jsonb, updated_at timestamptz)`.execute(trx);
  }
}
