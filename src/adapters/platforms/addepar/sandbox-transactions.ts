import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { SandboxContext, SandboxTransaction, SandboxWorld, TransactionFilter } from '../sandbox-kit/index.ts';
import { API_ROOT, JOB_RESULT_TTL_MS } from './defaults.ts';
import { ApiError, attributesOf, num, requireScope, type Caller } from './sandbox-http.ts';
import { ownedAccount } from './sandbox.ts';
import { ASSET_CLASS_LABELS, SECURITY_MODEL_TYPES, TRANSACTION_COLUMNS, TRANSACTION_EXPORT_JOB, TRANSACTION_STATUSES, TRANSACTION_TYPES } from './wire.ts';

/**
 * Transactions: `POST /v1/transactions/query` (not paginated; refused above MAX_QUERY_ROWS, as
 * the real API's 60-second request limit would) and exports through `POST /v1/jobs` whose TSV
 * result is streamed from a signed, short-lived URL that `GET /v1/jobs/:id/download` redirects
 * to (303); 410 once the job's results have expired.
 *
 * Incremental reads: each transaction carries `modified_at`, the sandbox's clock for changes
 * (the world's change counter as milliseconds after its as-of date), and queries take
 * `modified_after`; every answer names `data_as_of`, the instant to ask from next time.
 */

export const MAX_QUERY_ROWS = 20_000;
const DOWNLOAD_URL_TTL_MS = 10 * 60_000;
/** How fast the sandbox "runs" an export: queued and in progress for a time that grows with its size. */
const JOB_BASE_MS = 20;
const JOB_ROWS_PER_MS = 10_000;

interface Job {
  readonly id: string;
  readonly ownerId: string;
  readonly accountId: string;
  readonly filter: TransactionFilter;
  readonly parameters: Record<string, unknown>;
  readonly createdAt: number;
  readonly durationMs: number;
  readonly dataAsOf: string;
  canceled: boolean;
  expired: boolean;
}

/** The world's change counter as instants: the sandbox's clock for modified_at and data_as_of. */
export class ChangeClock {
  private readonly origin: number;
  // Most records of an account share the change that created it: the last instant is kept.
  private lastSeq = Number.NaN;
  private lastInstant = '';
  constructor(world: SandboxWorld) {
    this.origin = Date.parse(`${world.asOf}T00:00:00Z`);
  }
  instant(changeSeq: number): string {
    if (changeSeq !== this.lastSeq) {
      this.lastInstant = new Date(this.origin + changeSeq).toISOString();
      this.lastSeq = changeSeq;
    }
    return this.lastInstant;
  }
  changeSeq(instant: string): number {
    const ms = Date.parse(instant);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(instant) || Number.isNaN(ms)) throw new ApiError(400, 'modified_after must be an ISO 8601 instant', { pointer: '/data/attributes/modified_after' });
    return Math.max(-1, ms - this.origin);
  }
}

function transactionValues(transaction: SandboxTransaction, clock: ChangeClock): Record<(typeof TRANSACTION_COLUMNS)[number], string | undefined> {
  const security = transaction.security;
  return {
    id: transaction.id,
    owner_id: transaction.accountId,
    type: TRANSACTION_TYPES[transaction.type],
    status: TRANSACTION_STATUSES[transaction.status],
    trade_date: transaction.tradeDate,
    settle_date: transaction.settleDate,
    security_name: security?.name,
    ticker_symbol: security?.ticker,
    cusip: security?.cusip,
    isin: security?.isin,
    asset_class: security === undefined ? undefined : ASSET_CLASS_LABELS[security.assetClass],
    security_model_type: security === undefined ? undefined : SECURITY_MODEL_TYPES[security.securityType],
    units: transaction.quantity,
    price: transaction.price,
    amount: transaction.amount,
    currency: transaction.currency,
    description: transaction.description,
    modified_at: clock.instant(transaction.modifiedSeq),
  };
}

const NUMERIC = new Set(['units', 'price', 'amount']);

function transactionResource(transaction: SandboxTransaction, clock: ChangeClock) {
  const attributes: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(transactionValues(transaction, clock))) {
    if (column === 'id' || column === 'owner_id') continue;
    attributes[column] = value === undefined ? null : NUMERIC.has(column) ? num(value) : value;
  }
  return { id: transaction.id, type: 'transactions', attributes, relationships: { owner: { data: { type: 'entities', id: transaction.accountId } } } };
}

/** TSV allows neither tabs nor line breaks inside a value. */
const tsvValue = (value: string | undefined): string => (value === undefined ? '' : value.replace(/[\t\r\n]/g, ' '));

/**
 * One export line, in TRANSACTION_COLUMNS order, written directly (exports run to hundreds of
 * thousands of rows). Only free text can hold a tab or a line break: ids, codes, dates and
 * decimals cannot.
 */
function tsvLine(transaction: SandboxTransaction, clock: ChangeClock): string {
  const security = transaction.security;
  const securityColumns =
    security === undefined
      ? '\t\t\t\t\t'
      : `${tsvValue(security.name)}\t${security.ticker}\t${security.cusip}\t${security.isin}\t${ASSET_CLASS_LABELS[security.assetClass]}\t${SECURITY_MODEL_TYPES[security.securityType]}`;
  return `${transaction.id}\t${transaction.accountId}\t${TRANSACTION_TYPES[transaction.type]}\t${TRANSACTION_STATUSES[transaction.status]}\t${transaction.tradeDate}\t${transaction.settleDate}\t${securityColumns}\t${transaction.quantity ?? ''}\t${transaction.price ?? ''}\t${transaction.amount}\t${transaction.currency}\t${tsvValue(transaction.description)}\t${clock.instant(transaction.modifiedSeq)}\n`;
}

function* tsvChunks(transactions: Iterable<SandboxTransaction>, clock: ChangeClock): Generator<string> {
  yield `${TRANSACTION_COLUMNS.join('\t')}\n`;
  let chunk = '';
  let rows = 0;
  for (const transaction of transactions) {
    chunk += tsvLine(transaction, clock);
    if (++rows === 1000) {
      yield chunk;
      chunk = '';
      rows = 0;
    }
  }
  if (chunk !== '') yield chunk;
}

function dateParameter(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) throw new ApiError(400, `${name} must be a date written YYYY-MM-DD`, { pointer: `/data/attributes/${name}` });
  return value;
}

/** The account and filter a transaction query or export names. */
function transactionQuery(world: SandboxWorld, clock: ChangeClock, caller: Caller, parameters: Record<string, unknown>): { accountId: string; filter: TransactionFilter } {
  if (parameters['portfolio_type'] !== 'ENTITY') throw new ApiError(400, 'portfolio_type must be ENTITY', { pointer: '/data/attributes/portfolio_type' });
  const ids = Array.isArray(parameters['portfolio_id']) ? parameters['portfolio_id'] : [parameters['portfolio_id']];
  if (ids.length !== 1 || typeof ids[0] !== 'string') throw new ApiError(400, 'portfolio_id must name one entity', { pointer: '/data/attributes/portfolio_id' });
  const account = ownedAccount(world, caller, ids[0], '/data/attributes/portfolio_id');
  const from = dateParameter(parameters['start_date'], 'start_date');
  const to = dateParameter(parameters['end_date'], 'end_date');
  if (from !== undefined && to !== undefined && from > to) throw new ApiError(400, 'start_date must not be after end_date', { pointer: '/data/attributes/start_date' });
  const modifiedAfter = parameters['modified_after'];
  if (modifiedAfter !== undefined && typeof modifiedAfter !== 'string') throw new ApiError(400, 'modified_after must be an ISO 8601 instant', { pointer: '/data/attributes/modified_after' });
  return {
    accountId: account.id,
    filter: {
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(modifiedAfter === undefined ? {} : { modifiedAfter: clock.changeSeq(modifiedAfter) }),
    },
  };
}

/** What the control API needs from the jobs: tests see an expired job without waiting 24 hours. */
export interface JobControl {
  expireJob(id: string): boolean;
}

export function registerTransactions(api: FastifyInstance, context: SandboxContext): JobControl {
  const { world } = context;
  const clock = new ChangeClock(world);
  const jobs = new Map<string, Job>();
  const downloads = new Map<string, { jobId: string; expiresAt: number }>();

  api.post('/v1/transactions/query', async (request) => {
    const caller = requireScope(request, 'TRANSACTIONS');
    const attributes = attributesOf(request.body, 'transaction_query');
    const { accountId, filter } = transactionQuery(world, clock, caller, attributes);
    const dataAsOf = clock.instant(world.changeSeq());
    const count = world.transactionsCount(accountId, filter);
    if (count > MAX_QUERY_ROWS) {
      throw new ApiError(400, `the query matches ${count} transactions, more than ${MAX_QUERY_ROWS} can be answered at once; export them with a ${TRANSACTION_EXPORT_JOB} job`, { code: 'RESULT_TOO_LARGE' });
    }
    const data = [];
    for (const transaction of world.transactions(accountId, filter)) data.push(transactionResource(transaction, clock));
    return { data, meta: { data_as_of: dataAsOf, count: data.length } };
  });

  const jobOf = (request: FastifyRequest): Job => {
    const caller = requireScope(request, 'TRANSACTIONS');
    const job = jobs.get((request.params as { id: string }).id);
    if (job === undefined || job.ownerId !== caller.ownerId) throw new ApiError(404, `no job ${(request.params as { id: string }).id}`);
    return job;
  };

  const statusOf = (job: Job, now: number): { status: string; percent: number } => {
    if (job.canceled) return { status: 'Canceled', percent: 0 };
    if (job.expired || now - job.createdAt >= JOB_RESULT_TTL_MS) return { status: 'Timed Out', percent: 1 };
    const elapsed = now - job.createdAt;
    if (elapsed >= job.durationMs) return { status: 'Completed', percent: 1 };
    if (elapsed < job.durationMs * 0.25) return { status: 'Queued', percent: 0 };
    return { status: 'In Progress', percent: Math.round((elapsed / job.durationMs) * 100) / 100 };
  };

  const jobDocument = (job: Job) => {
    const now = Date.now();
    const { status, percent } = statusOf(job, now);
    const done = status === 'Completed' || status === 'Timed Out';
    return {
      data: {
        id: job.id,
        type: 'jobs',
        attributes: {
          job_type: TRANSACTION_EXPORT_JOB,
          status,
          percent_complete: percent,
          started_at: new Date(job.createdAt).toISOString(),
          completed_at: done ? new Date(job.createdAt + job.durationMs).toISOString() : null,
          errors: null,
          parameters: job.parameters,
        },
        links: { self: `/v1/jobs/${job.id}`, ...(status === 'Completed' ? { download: `/v1/jobs/${job.id}/download` } : {}) },
      },
      meta: { data_as_of: job.dataAsOf },
    };
  };

  api.post('/v1/jobs', async (request, reply) => {
    const caller = requireScope(request, 'TRANSACTIONS');
    const attributes = attributesOf(request.body, 'jobs');
    if (attributes['job_type'] !== TRANSACTION_EXPORT_JOB) throw new ApiError(400, `job_type must be ${TRANSACTION_EXPORT_JOB} (the sandbox runs transaction exports only)`, { pointer: '/data/attributes/job_type' });
    const parameters = attributes['parameters'];
    if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) throw new ApiError(400, 'parameters must be an object', { pointer: '/data/attributes/parameters' });
    const given = parameters as Record<string, unknown>;
    if ((given['output_type'] ?? 'TSV') !== 'TSV') throw new ApiError(400, 'output_type must be TSV for a transaction export', { pointer: '/data/attributes/parameters/output_type' });
    const { accountId, filter } = transactionQuery(world, clock, caller, given);
    const rows = world.transactionsCount(accountId, filter);
    const job: Job = {
      id: String(jobs.size + 70_001),
      ownerId: caller.ownerId,
      accountId,
      filter,
      parameters: { ...given, output_type: 'TSV' },
      createdAt: Date.now(),
      durationMs: JOB_BASE_MS + Math.ceil(rows / JOB_ROWS_PER_MS),
      dataAsOf: clock.instant(world.changeSeq()),
      canceled: false,
      expired: false,
    };
    jobs.set(job.id, job);
    return reply.code(202).header('location', `${API_ROOT}/v1/jobs/${job.id}`).send(jobDocument(job));
  });

  api.get('/v1/jobs/:id', async (request) => jobDocument(jobOf(request)));

  api.delete('/v1/jobs/:id', async (request, reply) => {
    jobOf(request).canceled = true;
    return reply.code(204).send();
  });

  api.get('/v1/jobs/:id/download', async (request, reply) => {
    const job = jobOf(request);
    const { status } = statusOf(job, Date.now());
    if (status === 'Timed Out') throw new ApiError(410, `the results of job ${job.id} have expired; submit the job again`);
    if (status === 'Canceled') throw new ApiError(410, `job ${job.id} was canceled`);
    if (status !== 'Completed') throw new ApiError(409, `job ${job.id} is ${status}; download it once it is Completed`);
    const token = randomBytes(18).toString('base64url');
    downloads.set(token, { jobId: job.id, expiresAt: Date.now() + DOWNLOAD_URL_TTL_MS });
    return reply.code(303).header('location', `${API_ROOT}/files/job-results/${token}`).send();
  });

  // The signed URL stands in for Addepar's result storage: the token is the authorization.
  api.get('/files/job-results/:token', async (request, reply) => {
    const entry = downloads.get((request.params as { token: string }).token);
    if (entry === undefined || entry.expiresAt <= Date.now()) throw new ApiError(404, 'no such download (the link may have expired)');
    const job = jobs.get(entry.jobId)!;
    if (statusOf(job, Date.now()).status !== 'Completed') throw new ApiError(410, `the results of job ${job.id} have expired`);
    return reply.type('text/tab-separated-values; charset=utf-8').send(Readable.from(tsvChunks(world.transactions(job.accountId, job.filter), clock)));
  });

  return {
    expireJob: (id) => {
      const job = jobs.get(id);
      if (job === undefined) return false;
      job.expired = true;
      return true;
    },
  };
}
