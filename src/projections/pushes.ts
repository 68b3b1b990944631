import { sql, type Transaction } from 'kysely';
import type { EventData } from '../domain/events/catalogue.ts';
import type { PushAcknowledged, PushRejected, PushRequested } from '../domain/push/events.ts';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';

/** Every instruction pushed back to a platform and what the platform answered. */
export const pushesProjector: Projector = {
  name: 'pushes',
  version: 1,
  handles: ['PushRequested', 'PushAcknowledged', 'PushRejected'],
  tables: ['pushes'],

  async createTables(trx) {
    await sql`
      CREATE TABLE pushes (
        push_id text PRIMARY KEY,
        connection_id text NOT NULL,
        platform text NOT NULL,
        kind text NOT NULL,
        instruction jsonb NOT NULL,
        status text NOT NULL,
        platform_reference text,
        code text,
        message text,
        retryable boolean,
        requested_by text NOT NULL,
        requested_at timestamptz NOT NULL,
        answered_at timestamptz
      )`.execute(trx);
    await sql`CREATE INDEX pushes_connection ON pushes (connection_id, requested_at)`.execute(trx);
  },

  async apply(trx: Transaction<unknown>, events: readonly RecordedEvent[]) {
    for (const event of events) {
      const at = event.recordedAt.toISOString();
      switch (event.type) {
        case 'PushRequested': {
          const data = event.data as EventData<typeof PushRequested>;
          await sql`
            INSERT INTO pushes (push_id, connection_id, platform, kind, instruction, status, requested_by, requested_at)
            VALUES (${data.pushId}, ${data.connectionId}, ${data.platform}, ${data.instruction.kind}, ${JSON.stringify(data.instruction)}::jsonb, 'requested', ${data.requestedBy}, ${at})`.execute(trx);
          break;
        }
        case 'PushAcknowledged': {
          const data = event.data as EventData<typeof PushAcknowledged>;
          await sql`
            UPDATE pushes SET status = 'acknowledged', platform_reference = ${data.platformReference}, code = NULL, message = NULL, retryable = NULL, answered_at = ${at}
             WHERE push_id = ${data.pushId}`.execute(trx);
          break;
        }
        case 'PushRejected': {
          const data = event.data as EventData<typeof PushRejected>;
          await sql`
            UPDATE pushes SET status = 'rejected', code = ${data.code}, message = ${data.message}, retryable = ${data.retryable}, answered_at = ${at}
             WHERE push_id = ${data.pushId}`.execute(trx);
          break;
        }
      }
    }
  },
};
