// A projection worker for the exactly-once test: it pauses in the middle of every batch (after
// half the rows are written inside the transaction) so that the test can SIGKILL it there.
import { connect } from '../../src/adapters/postgres/database.ts';
import { PostgresEventStore } from '../../src/adapters/postgres/event-store.ts';
import { ProjectionEngine } from '../../src/adapters/postgres/projection-engine.ts';
import { auditLogProjector } from '../../src/projections/audit-log.ts';
import type { Projector } from '../../src/projections/projector.ts';
import { testCatalogue } from './events.ts';

const database = connect(process.argv[2]!);
const store = new PostgresEventStore(database.pool, { catalogue: testCatalogue });
const slowAuditLog: Projector = {
  ...auditLogProjector,
  async apply(trx, events) {
    const half = Math.floor(events.length / 2);
    await auditLogProjector.apply(trx, events.slice(0, half));
    process.stdout.write('mid-batch\n');
    await new Promise((resolve) => setTimeout(resolve, 150));
    await auditLogProjector.apply(trx, events.slice(half));
  },
};
const engine = new ProjectionEngine(database.db, store, [slowAuditLog], { batchSize: 100 });
await engine.ensure(slowAuditLog);
await engine.catchUp(slowAuditLog);
process.stdout.write('caught-up\n');
await database.close();
