import { sql, type Transaction } from 'kysely';
import { streamCategory } from '../domain/streams.ts';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';

export interface StreamCatalogueTables {
  stream_catalogue: {
    stream_id: string;
    category: string;
    version: number;
    last_event_type: string;
    first_event_at: Date;
    last_event_at: Date;
  };
}

/** One row per stream: its category, current version and the times of its first and last events. */
export const streamCatalogueProjector: Projector<StreamCatalogueTables> = {
  name: 'stream_catalogue',
  version: 1,
  handles: 'all',
  tables: ['stream_catalogue'],

  async createTables(trx) {
    await sql`
      CREATE TABLE stream_catalogue (
        stream_id text PRIMARY KEY,
        category text NOT NULL,
        version bigint NOT NULL,
        last_event_type text NOT NULL,
        first_event_at timestamptz NOT NULL,
        last_event_at timestamptz NOT NULL
      )`.execute(trx);
    await sql`CREATE INDEX stream_catalogue_category ON stream_catalogue (category, last_event_at)`.execute(trx);
  },

  async apply(trx: Transaction<StreamCatalogueTables>, events: readonly RecordedEvent[]) {
    // One row per stream per batch: the batch's first and last events of that stream.
    const touched = new Map<string, { first: RecordedEvent; last: RecordedEvent }>();
    for (const event of events) {
      const seen = touched.get(event.streamId);
      if (!seen) touched.set(event.streamId, { first: event, last: event });
      else if (event.streamVersion > seen.last.streamVersion) seen.last = event;
    }
    await trx
      .insertInto('stream_catalogue')
      .values(
        [...touched.values()].map(({ first, last }) => ({
          stream_id: last.streamId,
          category: streamCategory(last.streamId),
          version: last.streamVersion,
          last_event_type: last.type,
          first_event_at: first.recordedAt,
          last_event_at: last.recordedAt,
        })),
      )
      .onConflict((oc) =>
        oc.column('stream_id').doUpdateSet({
          version: sql`excluded.version`,
          last_event_type: sql`excluded.last_event_type`,
          last_event_at: sql`excluded.last_event_at`,
        }),
      )
      .execute();
  },
};
