import { ulid } from 'ulid';
import { Dec } from '../../src/domain/money/decimal.ts';
import { contentHash, deterministicEventId } from '../../src/domain/ingestion/source-records.ts';
import { sourceStreamId } from '../../src/domain/ingestion/events.ts';
import type { EventStore } from '../../src/ports/event-store.ts';

/** The events a sync appends, written directly: read models and conflicts are tested without a platform. */
export interface HoldingInput {
  readonly recordId: string;
  readonly ticker?: string;
  readonly cusip?: string;
  readonly isin?: string;
  readonly name?: string;
  readonly assetClass?: string;
  readonly quantity: string;
  readonly price: string;
  readonly currency?: string;
  readonly asOf?: string;
}

export function holdingWire(h: HoldingInput, account = 'acct-1'): Record<string, unknown> {
  const security: Record<string, unknown> = { name: h.name ?? h.ticker ?? 'Security', assetClass: h.assetClass ?? 'equity', securityType: 'stock' };
  if (h.ticker) security.ticker = h.ticker;
  if (h.cusip) security.cusip = h.cusip;
  if (h.isin) security.isin = h.isin;
  const quantity = h.quantity;
  const marketValue = new Dec(h.quantity).times(h.price).toFixed();
  return { platformRecordId: h.recordId, platformAccountId: account, security, quantity, price: h.price, marketValue, currency: h.currency ?? 'USD', asOf: h.asOf ?? '2025-06-30' };
}

/** A sync of holdings: requested, started, each record observed (or changed / removed), completed. */
export async function syncHoldings(
  store: EventStore,
  connectionId: string,
  changes: { observed?: Record<string, unknown>[]; changed?: { recordId: string; revision: number; changes: Record<string, unknown> }[]; removed?: { recordId: string; revision: number }[] },
  options: { failed?: number; errors?: { recordId: string; code: string; message: string }[] } = {},
): Promise<string> {
  const operationId = ulid();
  const op = `sync-${operationId}`;
  await store.append(op, [
    { type: 'SyncRequested', data: { operationId, connectionId, dataTypes: ['holdings'], force: false, trigger: 'manual', requestedBy: 'tester', attempt: 0 } },
    { type: 'SyncStarted', data: { operationId } },
  ]);
  const base = { connectionId, platform: 'orion', dataType: 'holdings', operationId };
  const events = [
    ...(changes.observed ?? []).map((record) => {
      const hash = contentHash(record);
      return { id: deterministicEventId(connectionId, 'holdings', String(record.platformRecordId), '1', hash), type: 'SourceRecordObserved', data: { ...base, recordId: record.platformRecordId, revision: 1, record, contentHash: hash } };
    }),
    ...(changes.changed ?? []).map((c) => ({ type: 'SourceRecordChanged', data: { ...base, recordId: c.recordId, revision: c.revision, changes: c.changes, contentHash: contentHash(c.changes) } })),
    ...(changes.removed ?? []).map((r) => ({ type: 'SourceRecordRemoved', data: { ...base, recordId: r.recordId, revision: r.revision } })),
  ];
  if (events.length > 0) await store.append(sourceStreamId(connectionId, 'holdings'), events);
  const failed = options.failed ?? 0;
  const processed = events.length + failed;
  const tail = [];
  if (options.errors?.length) {
    tail.push({ type: 'SyncErrorsRecorded', data: { operationId, dataType: 'holdings', errors: options.errors.map((e) => ({ ...e, severity: 'error', retryable: false })) } });
  }
  tail.push({
    type: 'SyncCompleted',
    data: { operationId, outcome: failed > 0 ? 'partial' : 'completed', counts: { processed, inserted: changes.observed?.length ?? 0, updated: changes.changed?.length ?? 0, skipped: changes.removed?.length ?? 0, failed } },
  });
  await store.append(op, tail);
  return operationId;
}

/** Source records of any data type appended as a sync would (without the operation's events). */
export async function appendSourceRecords(
  store: EventStore,
  connectionId: string,
  dataType: string,
  observed: Record<string, unknown>[],
  changed: { recordId: string; revision: number; changes: Record<string, unknown> }[] = [],
  recordId?: string,
): Promise<void> {
  const base = { connectionId, platform: 'orion', dataType, operationId: 'op-direct' };
  const events = [
    ...observed.map((record) => {
      const wire = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
      return { type: 'SourceRecordObserved', data: { ...base, recordId: recordId ?? String(wire.platformRecordId), revision: 1, record: wire, contentHash: contentHash(wire) } };
    }),
    ...changed.map((c) => ({ type: 'SourceRecordChanged', data: { ...base, recordId: c.recordId, revision: c.revision, changes: c.changes, contentHash: contentHash(c.changes) } })),
  ];
  await store.append(sourceStreamId(connectionId, dataType), events);
}
