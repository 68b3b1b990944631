import { sql, type Transaction } from 'kysely';
import type { RecordedEvent } from '../ports/event-store.ts';
import type { Projector } from './projector.ts';

type Data = Record<string, any>;

/** The conflict center: every conflict with all its versions, its status and how (and by whom) it was settled. */
export const portfolioConflictsProjector: Projector = {
  name: 'portfolio_conflicts',
  version: 1,
  handles: ['ConflictDetected', 'ConflictVersionObserved', 'ConflictResolved', 'ConflictIgnored'],
  tables: ['portfolio_conflicts'],

  async createTables(trx) {
    await sql`
      CREATE TABLE portfolio_conflicts (
        conflict_id text PRIMARY KEY,
        portfolio_id text NOT NULL,
        security_key text NOT NULL,
        conflict_type text NOT NULL,
        field text NOT NULL,
        status text NOT NULL,
        versions jsonb NOT NULL,
        strategy text,
        resolved_value numeric,
        chosen_version integer,
        resolved_by text,
        automatic boolean,
        resolutions integer NOT NULL DEFAULT 0,
        ignored_by text,
        ignore_reason text,
        detected_at timestamptz NOT NULL,
        resolved_at timestamptz,
        updated_at timestamptz NOT NULL
      )`.execute(trx);
    await sql`CREATE INDEX portfolio_conflicts_portfolio ON portfolio_conflicts (portfolio_id, status, detected_at DESC)`.execute(trx);
    await sql`CREATE INDEX portfolio_conflicts_status ON portfolio_conflicts (status, detected_at DESC)`.execute(trx);
  },

  async apply(trx: Transaction<unknown>, events: readonly RecordedEvent[]) {
    for (const event of events) {
      const d = event.data as Data;
      const at = event.recordedAt;
      switch (event.type) {
        case 'ConflictDetected':
          await sql`
            INSERT INTO portfolio_conflicts (conflict_id, portfolio_id, security_key, conflict_type, field, status, versions, detected_at, updated_at)
            VALUES (${d.conflictId}, ${d.portfolioId}, ${d.securityKey}, ${d.conflictType}, ${d.field}, 'open', ${JSON.stringify(d.versions)}::jsonb, ${at}, ${at})
            ON CONFLICT DO NOTHING`.execute(trx);
          break;
        case 'ConflictVersionObserved':
          // A new value reopens a settled conflict (an ignored one stays ignored), as the conflict decider rules.
          await sql`
            UPDATE portfolio_conflicts SET versions = versions || jsonb_build_array(${JSON.stringify(d.version)}::jsonb),
                   status = CASE WHEN status = 'ignored' THEN 'ignored' ELSE 'open' END, updated_at = ${at}
             WHERE conflict_id = ${d.conflictId}`.execute(trx);
          break;
        case 'ConflictResolved':
          await sql`
            UPDATE portfolio_conflicts SET status = 'resolved', strategy = ${d.strategy}, resolved_value = ${d.value}::numeric,
                   chosen_version = ${d.chosenVersion ?? null}::integer, resolved_by = ${d.resolvedBy}, automatic = ${d.automatic},
                   resolutions = resolutions + 1, resolved_at = ${at}, updated_at = ${at}
             WHERE conflict_id = ${d.conflictId}`.execute(trx);
          break;
        case 'ConflictIgnored':
          await sql`
            UPDATE portfolio_conflicts SET status = 'ignored', ignored_by = ${d.ignoredBy}, ignore_reason = ${d.reason ?? null}, updated_at = ${at}
             WHERE conflict_id = ${d.conflictId}`.execute(trx);
          break;
      }
    }
  },
};
