import { setTimeout as delay } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import { conflictDecider, conflictStreamId } from '../domain/conflicts/conflict.ts';
import { DEFAULT_TOLERANCES, detectConflicts, type ConflictTolerances, type Observation } from '../domain/conflicts/detection.ts';
import type { ResolutionInput, ResolutionStrategy } from '../domain/conflicts/resolution.ts';
import { DomainRuleViolation } from '../domain/decider.ts';
import type { EventMetadata } from '../domain/events/metadata.ts';
import { deterministicEventId } from '../domain/ingestion/source-records.ts';
import { Dec } from '../domain/money/decimal.ts';
import type { EventStore, LogCursor, RecordedEvent } from '../ports/event-store.ts';
import { handleCommand, type CommandResult } from './command-handler.ts';

export interface ConflictServices {
  readonly store: EventStore;
  /** Reads the consolidation read models (holding_sources, portfolios, connections, portfolio_connections). */
  readonly db: Kysely<unknown>;
}

/** The resolver named on automatic resolutions. */
export const AUTOMATIC_RESOLVER = 'conflict-detector';

/**
 * When the two connections of a conflict are set to different strategies, the more cautious one
 * applies: a person's review first, then the ledger's own value, then keeping every version.
 */
const STRATEGY_PRECEDENCE: readonly ResolutionStrategy[] = ['MANUAL_REVIEW', 'CLEARWAY_WINS', 'VERSION_CONTROL', 'MERGE', 'TIMESTAMP', 'PLATFORM_WINS'];

export interface DetectionReport {
  readonly detected: number;
  readonly versionsObserved: number;
  readonly resolved: number;
  readonly pending: number;
}

/** The conflict id of one disagreement: the same pair of sources on the same security and question is always the same conflict. */
export function conflictIdOf(portfolioId: string, securityKey: string, conflictType: string, connectionA: string, connectionB: string): string {
  return deterministicEventId('conflict', portfolioId, securityKey, conflictType, connectionA, connectionB);
}

/**
 * Compares the sources of one portfolio security by security, records what disagrees (new
 * conflicts, or new versions of known ones) and settles each open conflict by its connections'
 * strategy; MANUAL_REVIEW leaves it pending for a person. Running it again changes nothing.
 */
export async function detectPortfolioConflicts(services: ConflictServices, portfolioId: string, metadata: EventMetadata = {}): Promise<DetectionReport> {
  const portfolio = (await sql<{ tolerances: { quantity: string; value: string; windowMinutes: number } | null }>`
    SELECT tolerances FROM portfolios WHERE portfolio_id = ${portfolioId}`.execute(services.db)).rows[0];
  if (!portfolio) throw new DomainRuleViolation('PORTFOLIO_NOT_FOUND', `portfolio ${portfolioId} is not in the read models`);
  const tolerances: ConflictTolerances = portfolio.tolerances
    ? { quantity: new Dec(portfolio.tolerances.quantity), value: new Dec(portfolio.tolerances.value), windowMs: portfolio.tolerances.windowMinutes * 60_000 }
    : DEFAULT_TOLERANCES;
  // One observation per source and security: a source holding a security in two accounts reports their sum.
  const rows = await sql<{ security_key: string; connection_id: string; quantity: string; value: string; observed_at: Date; strategy: ResolutionStrategy | null }>`
    SELECT hs.security_key, hs.connection_id, sum(hs.quantity)::text AS quantity, sum(hs.value)::text AS value, max(hs.last_synced_at) AS observed_at,
           c.settings->>'conflictStrategy' AS strategy
      FROM holding_sources hs LEFT JOIN connections c ON c.connection_id = hs.connection_id
     WHERE hs.portfolio_id = ${portfolioId}
       AND hs.security_key IN (SELECT security_key FROM holdings WHERE portfolio_id = ${portfolioId} AND source_count > 1)
     GROUP BY hs.security_key, hs.connection_id, c.settings->>'conflictStrategy'
     ORDER BY hs.security_key, hs.connection_id`.execute(services.db);
  const bySecurity = new Map<string, Observation[]>();
  const strategyOf = new Map<string, ResolutionStrategy>();
  for (const row of rows.rows) {
    strategyOf.set(row.connection_id, row.strategy ?? 'TIMESTAMP');
    const list = bySecurity.get(row.security_key) ?? [];
    list.push({ connectionId: row.connection_id, quantity: new Dec(row.quantity), value: new Dec(row.value), observedAt: row.observed_at.getTime() });
    bySecurity.set(row.security_key, list);
  }
  const report = { detected: 0, versionsObserved: 0, resolved: 0, pending: 0 };
  const options = { metadata: { actor: AUTOMATIC_RESOLVER, ...metadata } };
  for (const [securityKey, observations] of bySecurity) {
    for (const conflict of detectConflicts(observations, tolerances)) {
      const [a, b] = conflict.observations;
      const conflictId = conflictIdOf(portfolioId, securityKey, conflict.type, a.connectionId, b.connectionId);
      const streamId = conflictStreamId(conflictId);
      const valueOf = (o: Observation) => (conflict.field === 'quantity' ? o.quantity : o.value).toFixed();
      const versions = [a, b].map((o, i) => ({ version: i + 1, connectionId: o.connectionId, value: valueOf(o), observedAt: new Date(o.observedAt).toISOString() }));
      const detected = await handleCommand(
        services.store,
        conflictDecider,
        streamId,
        { kind: 'DetectConflict', conflictId, portfolioId, securityKey, conflictType: conflict.type, field: conflict.field, versions },
        options,
      );
      if (detected.events.length > 0) report.detected++;
      else {
        for (const o of [a, b]) {
          const observed = await handleCommand(
            services.store,
            conflictDecider,
            streamId,
            { kind: 'ObserveConflictVersion', conflictId, connectionId: o.connectionId, value: valueOf(o), observedAt: new Date(o.observedAt).toISOString() },
            options,
          );
          report.versionsObserved += observed.events.length;
        }
      }
      const strategy = STRATEGY_PRECEDENCE.find((s) => s === strategyOf.get(a.connectionId) || s === strategyOf.get(b.connectionId)) ?? 'TIMESTAMP';
      const outcome = await settleAutomatically(services.store, conflictId, strategy, options);
      if (outcome === 'resolved') report.resolved++;
      if (outcome === 'pending') report.pending++;
    }
  }
  return report;
}

/** Resolves an open conflict by strategy; VERSION_CONTROL keeps every version and takes the newest until a person picks another. */
async function settleAutomatically(store: EventStore, conflictId: string, strategy: ResolutionStrategy, options: { metadata: EventMetadata }): Promise<'resolved' | 'pending' | 'settled'> {
  const history = await store.readStream(conflictStreamId(conflictId));
  const state = history.reduce((s, e) => conflictDecider.evolve(s, { type: e.type, data: e.data } as never), conflictDecider.initialState());
  if (state.status !== 'open') return 'settled';
  if (strategy === 'MANUAL_REVIEW') return 'pending';
  const resolution: ResolutionInput = strategy === 'VERSION_CONTROL' ? { strategy, version: state.versions.length } : { strategy };
  const result = await handleCommand(store, conflictDecider, conflictStreamId(conflictId), { kind: 'ResolveConflict', conflictId, resolution, resolvedBy: AUTOMATIC_RESOLVER, automatic: true }, options);
  return result.events.length > 0 ? 'resolved' : 'pending';
}

/**
 * Detection after a completed sync: waits until the consolidation read model holds the sync's
 * completion, then compares the sources of every portfolio the synced connection belongs to.
 */
export async function detectConflictsAfterSync(services: ConflictServices, completed: RecordedEvent, options: { timeoutMs?: number } = {}): Promise<DetectionReport> {
  await waitForProjector(services.db, 'consolidation', { transactionId: completed.transactionId, position: completed.globalPosition }, options.timeoutMs ?? 60_000);
  const operationId = (completed.data as { operationId: string }).operationId;
  const portfolios = await sql<{ portfolio_id: string }>`
    SELECT DISTINCT pc.portfolio_id FROM portfolio_connections pc JOIN connections c ON c.connection_id = pc.connection_id
     WHERE c.connection_id = (SELECT connection_id FROM consolidation_sync_operations WHERE operation_id = ${operationId})
     ORDER BY 1`.execute(services.db);
  const total = { detected: 0, versionsObserved: 0, resolved: 0, pending: 0 };
  for (const { portfolio_id } of portfolios.rows) {
    const report = await detectPortfolioConflicts(services, portfolio_id, { causationId: completed.id, correlationId: operationId });
    for (const key of Object.keys(total) as (keyof DetectionReport)[]) total[key] += report[key];
  }
  return total;
}

async function waitForProjector(db: Kysely<unknown>, projector: string, cursor: LogCursor, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await sql<{ reached: boolean }>`
      SELECT (transaction_id, position) >= (${cursor.transactionId}::xid8, ${cursor.position}::bigint) AS reached
        FROM projection_checkpoints WHERE projector = ${projector}`.execute(db);
    if (row.rows[0]?.reached) return;
    if (Date.now() > deadline) throw new Error(`the ${projector} read model did not reach the sync's completion within ${timeoutMs} ms`);
    await delay(100);
  }
}

/**
 * Follows the log and detects conflicts after every completed sync, from the head of the log at
 * start. Each portfolio is compared once at start too, so a completion missed while the process
 * was down is caught up; detection is idempotent, so comparing again appends nothing.
 */
export async function runConflictDetection(services: ConflictServices, signal: AbortSignal, onError: (error: unknown) => void): Promise<void> {
  const start = await services.store.head();
  try {
    const portfolios = await sql<{ portfolio_id: string }>`SELECT portfolio_id FROM portfolios ORDER BY 1`.execute(services.db);
    for (const { portfolio_id } of portfolios.rows) await detectPortfolioConflicts(services, portfolio_id).catch(onError);
  } catch (error) {
    // On a fresh database the read models do not exist yet (undefined_table): nothing to catch up on.
    if ((error as { code?: string }).code !== '42P01') onError(error);
  }
  for await (const event of services.store.subscribe({ after: start, signal })) {
    if (event.type !== 'SyncCompleted') continue;
    await detectConflictsAfterSync(services, event).catch(onError);
  }
}

/** A person settles a conflict: any strategy but MANUAL_REVIEW; MERGE may carry the value, VERSION_CONTROL names the version. */
export function resolveConflictByPerson(
  store: EventStore,
  input: { conflictId: string; strategy: ResolutionStrategy; value?: string; version?: number; resolvedBy: string },
  metadata?: EventMetadata,
): Promise<CommandResult<unknown>> {
  let resolution: ResolutionInput;
  if (input.strategy === 'VERSION_CONTROL') {
    if (input.version === undefined) throw new DomainRuleViolation('CONFLICT_VERSION_REQUIRED', 'VERSION_CONTROL needs the version to choose');
    resolution = { strategy: 'VERSION_CONTROL', version: input.version };
  } else if (input.strategy === 'MERGE') {
    resolution = input.value === undefined ? { strategy: 'MERGE' } : { strategy: 'MERGE', mergedValue: new Dec(input.value) };
  } else {
    if (input.value !== undefined) throw new DomainRuleViolation('CONFLICT_VALUE_NOT_ALLOWED', `${input.strategy} takes no value; use MERGE to set one`);
    resolution = { strategy: input.strategy };
  }
  return handleCommand(
    store,
    conflictDecider,
    conflictStreamId(input.conflictId),
    { kind: 'ResolveConflict', conflictId: input.conflictId, resolution, resolvedBy: input.resolvedBy, automatic: false },
    { metadata: { actor: input.resolvedBy, ...metadata } },
  );
}

export function ignoreConflict(store: EventStore, input: { conflictId: string; ignoredBy: string; reason?: string }, metadata?: EventMetadata): Promise<CommandResult<unknown>> {
  return handleCommand(
    store,
    conflictDecider,
    conflictStreamId(input.conflictId),
    { kind: 'IgnoreConflict', ...input },
    { metadata: { actor: input.ignoredBy, ...metadata } },
  );
}
