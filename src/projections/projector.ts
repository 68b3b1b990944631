import type { Transaction } from 'kysely';
import type { RecordedEvent } from '../ports/event-store.ts';

/**
 * A projector turns events into the read-model tables it owns, and touches no other table.
 * The engine calls apply() inside a transaction that also writes the projector's checkpoint, so
 * each event's effect lands exactly once. Table names are unqualified: the engine points the
 * transaction's search_path at the live tables, or at fresh ones during a rebuild.
 */
// `any` by default so projectors with different table types share one list.
export interface Projector<TTables = any> {
  /** Lower-case letters, digits and underscores; names the checkpoint and lock. */
  readonly name: string;
  /** Bump when the tables or what apply() writes change: the worker then rebuilds on start. */
  readonly version: number;
  /** The event types apply() receives; 'all' for every event. */
  readonly handles: readonly string[] | 'all';
  /** Every table the projector owns (created by createTables). */
  readonly tables: readonly string[];
  createTables(trx: Transaction<unknown>): Promise<void>;
  /** Applies events in log order. Must be deterministic: a rebuild must produce the same rows. */
  apply(trx: Transaction<TTables>, events: readonly RecordedEvent[]): Promise<void>;
}

export const PROJECTOR_NAME = /^[a-z][a-z0-9_]{0,40}$/;
