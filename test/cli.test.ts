import { spawn } from 'node:child_process';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/adapters/postgres/event-store.ts';
import { ledgerCatalogue } from '../src/domain/ledger-catalogue.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { eventually } from './support/eventually.ts';
import { ledgerCli } from './support/processes.ts';

let database: TestDatabase;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  database = await createTestDatabase();
  env = { DATABASE_URL: database.connectionString };
  const store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue });
  const created = (id: string, name: string) => ({ type: 'PortfolioCreated', data: { portfolioId: id, ownerId: 'user-1', name, baseCurrency: 'USD' }, metadata: { actor: 'user-1', source: 'cli-test' } });
  const renamed = (id: string, name: string) => ({ type: 'PortfolioRenamed', data: { portfolioId: id, name } });
  await store.append('portfolio-a', [created('a', 'Retirement'), renamed('a', 'Retirement 2050')], { expectedVersion: 'no_stream' });
  await store.append('portfolio-b', [created('b', 'College'), renamed('b', 'College fund'), renamed('b', 'College fund (joint)')], { expectedVersion: 'no_stream' });
});
afterAll(async () => database?.drop());

describe('ledger CLI', () => {
  it('migrate reports an up-to-date database', async () => {
    const result = await ledgerCli(['migrate'], env);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain('database is up to date');
  });

  it('read prints a stream in order, and backwards with a limit', async () => {
    const forwards = await ledgerCli(['read', 'portfolio-b'], env);
    expect(forwards.code).toBe(0);
    const lines = forwards.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/portfolio-b@1 {2}PortfolioCreated {2}user-1@cli-test/);
    expect(lines[2]).toContain('College fund (joint)');

    const backwards = await ledgerCli(['read', 'portfolio-b', '--backwards', '--limit', '1', '--json'], env);
    const [last] = backwards.stdout.trim().split('\n').map((line) => JSON.parse(line) as { streamVersion: number; data: { name: string } });
    expect(last).toMatchObject({ streamVersion: 3, data: { name: 'College fund (joint)' } });
  });

  it('rebuild, projections and streams show the read models', async () => {
    const rebuild = await ledgerCli(['rebuild', 'stream_catalogue'], env);
    expect(rebuild.code).toBe(0);
    expect(rebuild.stdout).toContain('rebuilt stream_catalogue from 5 events');

    const streams = await ledgerCli(['streams', '--category', 'portfolio'], env);
    expect(streams.stdout).toMatch(/portfolio-a.*portfolio.*2.*PortfolioRenamed/);
    expect(streams.stdout).toMatch(/portfolio-b.*portfolio.*3/);

    const projections = await ledgerCli(['projections'], env);
    expect(projections.stdout).toMatch(/stream_catalogue.*│ 5 +│ 0 +│/);
    // audit_log has not been created or run by anyone here: it is the whole log behind.
    expect(projections.stdout).toMatch(/audit_log/);
  });

  it('tail follows the log live and stops on Ctrl-C', async () => {
    const tail = spawn(process.execPath, ['bin/ledger.js', 'tail'], { env: { ...process.env, LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    tail.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    tail.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => tail.once('exit', resolve));
    await eventually(async () => stderr.includes('following the log after'));
    const store = new PostgresEventStore(database.pool, { catalogue: ledgerCatalogue });
    await store.append('portfolio-live', [{ type: 'PortfolioCreated', data: { portfolioId: 'live', ownerId: 'user-2', name: 'Live', baseCurrency: 'GBP' } }]);
    await eventually(async () => stdout.includes('portfolio-live@1  PortfolioCreated'));
    // Only what came after the start: the earlier streams are not replayed.
    expect(stdout).not.toContain('portfolio-a');
    tail.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('errors are one clear line with a non-zero exit, not a stack trace', async () => {
    const badStream = await ledgerCli(['read', 'no such stream'], env);
    expect(badStream.code).toBe(1);
    expect(badStream.stderr.trim()).toBe('ledger: streamId: may hold only letters, digits and _ . : @ - and must start with a letter or digit');
    const unknown = await ledgerCli(['rebuild', 'ledger_balances'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toMatch(/^ledger: unknown projector "ledger_balances" \(known: audit_log, stream_catalogue(, [a-z_]+)*\)$/);
    const badEnv = await ledgerCli(['projections'], { ...env, PORT: 'eighty' });
    expect(badEnv.code).toBe(1);
    expect(badEnv.stderr).toContain('env.PORT');
    expect(badEnv.stderr).not.toMatch(/\n\s+at /);
  });

  it('verify passes on an intact log and names the first broken link after tampering', async () => {
    const intact = await ledgerCli(['verify'], env);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain('verified 6 events in 3 streams: all chains intact');

    await sql`UPDATE events SET data = jsonb_set(data, '{name}', '"Offshore"') WHERE stream_id = 'portfolio-b' AND stream_version = 2`.execute(database.db);
    const tampered = await ledgerCli(['verify'], env);
    expect(tampered.code).not.toBe(0);
    expect(tampered.stdout).toContain('BROKEN portfolio-b version 2: hash does not match');
    expect(tampered.stdout).not.toContain('portfolio-a');

    await sql`DELETE FROM events WHERE stream_id = 'portfolio-a' AND stream_version = 2`.execute(database.db);
    const truncated = await ledgerCli(['verify'], env);
    expect(truncated.code).not.toBe(0);
    expect(truncated.stdout).toContain('BROKEN portfolio-a version 2: stream is recorded at version 2 but its events end at 1');
  });
});
