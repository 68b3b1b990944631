import type { FastifyInstance } from 'fastify';
import { Dec } from '../../../domain/money/decimal.ts';
import type { SandboxWorld } from '../sandbox-kit/index.ts';
import { ApiError, attributesOf, num, requireScope } from './sandbox-http.ts';
import { ownedAccount } from './sandbox.ts';
import { COLUMNS, TIME_PERIODS } from './wire.ts';

/**
 * `POST /v1/portfolio/query` for one account (portfolio_type ENTITY): the total/children tree.
 * Three shapes are served: no grouping (the total: value and risk columns), a `time_period`
 * grouping (one child per performance period, optionally against a benchmark) and an
 * `asset_class` grouping (attribution). The figures are the world's; the answer's meta names
 * the dates they cover. `time_period` as a grouping and the risk, attribution and benchmark
 * column names are the sandbox's choices (Addepar's attribute catalogue is per firm).
 */

interface ColumnRequest {
  readonly key: string;
  readonly arguments?: Record<string, unknown>;
}

type Row = { name: string; grouping?: string; columns: Record<string, unknown> };

function columnsOf(value: unknown): ColumnRequest[] {
  if (!Array.isArray(value) || value.length === 0) throw new ApiError(400, 'columns must be a non-empty array of {key}', { pointer: '/data/attributes/columns' });
  return value.map((column, i) => {
    const key = typeof column === 'object' && column !== null ? (column as { key?: unknown }).key : undefined;
    if (typeof key !== 'string' || key === '') throw new ApiError(400, `columns[${i}].key must be a non-empty string`, { pointer: `/data/attributes/columns/${i}/key` });
    const args = (column as { arguments?: unknown }).arguments;
    return { key, ...(typeof args === 'object' && args !== null ? { arguments: args as Record<string, unknown> } : {}) };
  });
}

function pick(available: Record<string, unknown>, columns: readonly ColumnRequest[], allowed: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const column of columns) if (allowed.has(column.key) && available[column.key] !== undefined) out[column.key] = available[column.key];
  return out;
}

function checkColumns(columns: readonly ColumnRequest[], allowed: ReadonlySet<string>, grouping: string): void {
  columns.forEach((column, i) => {
    if (!allowed.has(column.key)) throw new ApiError(400, `column ${column.key} is not available ${grouping === 'none' ? 'without a grouping' : `with the ${grouping} grouping`}`, { pointer: `/data/attributes/columns/${i}/key` });
  });
}

function dateArgument(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) throw new ApiError(400, `${name} must be a date written YYYY-MM-DD`, { pointer: `/data/attributes/${name}` });
  return value;
}

const TOTAL_COLUMNS = new Set([COLUMNS.endingValue, COLUMNS.currency, COLUMNS.volatility, COLUMNS.sharpe, COLUMNS.beta, COLUMNS.maxDrawdown]);
const PERIOD_COLUMNS = new Set([
  'time_period',
  COLUMNS.startDate,
  COLUMNS.endDate,
  COLUMNS.twr,
  COLUMNS.beginningValue,
  COLUMNS.endingValue,
  COLUMNS.netFlows,
  COLUMNS.currency,
  COLUMNS.benchmarkReturn,
  COLUMNS.excessReturn,
]);
const ATTRIBUTION_COLUMNS = new Set([COLUMNS.allocation, COLUMNS.selection, COLUMNS.totalEffect]);
const PERIOD_BY_NAME = new Map(Object.entries(TIME_PERIODS).map(([period, name]) => [name, period]));

export function registerPortfolioQuery(api: FastifyInstance, world: SandboxWorld): void {
  api.post('/v1/portfolio/query', async (request) => {
    const caller = requireScope(request, 'PORTFOLIO');
    const attributes = attributesOf(request.body, 'portfolio_query');
    if (attributes['portfolio_type'] !== 'ENTITY') throw new ApiError(400, 'portfolio_type must be ENTITY (the sandbox serves one account at a time)', { pointer: '/data/attributes/portfolio_type' });
    const ids = Array.isArray(attributes['portfolio_id']) ? attributes['portfolio_id'] : [attributes['portfolio_id']];
    if (ids.length !== 1 || typeof ids[0] !== 'string') throw new ApiError(400, 'portfolio_id must name one entity', { pointer: '/data/attributes/portfolio_id' });
    const account = ownedAccount(world, caller, ids[0], '/data/attributes/portfolio_id');
    const columns = columnsOf(attributes['columns']);
    const groupings = attributes['groupings'] ?? [];
    if (!Array.isArray(groupings) || groupings.length > 1) throw new ApiError(400, 'groupings must be an array of at most one {key}', { pointer: '/data/attributes/groupings' });
    const grouping = groupings[0] as { key?: unknown; arguments?: Record<string, unknown> } | undefined;
    const startDate = dateArgument(attributes['start_date'], 'start_date');
    const endDate = dateArgument(attributes['end_date'], 'end_date');
    if (startDate !== undefined && endDate !== undefined && startDate > endDate) throw new ApiError(400, 'start_date must not be after end_date', { pointer: '/data/attributes/start_date' });

    let total: Row;
    let children: Row[] = [];
    let window: { start: string; end: string };
    const currency = account.currency;
    if (grouping === undefined) {
      checkColumns(columns, TOTAL_COLUMNS, 'none');
      const risk = world.riskMetrics(account.id);
      const ytd = world.performance(account.id).find((row) => row.period === 'YTD');
      total = {
        name: 'Total',
        columns: pick(
          {
            [COLUMNS.endingValue]: num(world.accountValue(account.id)),
            [COLUMNS.currency]: currency,
            [COLUMNS.volatility]: num(risk.volatility),
            [COLUMNS.sharpe]: num(risk.sharpeRatio),
            [COLUMNS.beta]: num(risk.beta),
            [COLUMNS.maxDrawdown]: num(risk.maxDrawdown),
          },
          columns,
          TOTAL_COLUMNS,
        ),
      };
      window = { start: ytd?.startDate ?? risk.asOf, end: risk.asOf };
    } else if (grouping.key === 'time_period') {
      checkColumns(columns, PERIOD_COLUMNS, 'time_period');
      const wanted = grouping.arguments?.['periods'];
      if (wanted !== undefined && (!Array.isArray(wanted) || wanted.some((name) => typeof name !== 'string' || !PERIOD_BY_NAME.has(name)))) {
        throw new ApiError(400, `groupings[0].arguments.periods must list some of ${Object.values(TIME_PERIODS).join(', ')}`, { pointer: '/data/attributes/groupings/0/arguments/periods' });
      }
      const benchmarkColumn = columns.find((column) => column.key === COLUMNS.benchmarkReturn || column.key === COLUMNS.excessReturn);
      const benchmarkId = benchmarkColumn?.arguments?.['benchmark_id'];
      if (benchmarkColumn !== undefined && (typeof benchmarkId !== 'string' || benchmarkId === '')) {
        throw new ApiError(400, `column ${benchmarkColumn.key} needs arguments.benchmark_id`, { pointer: '/data/attributes/columns' });
      }
      const comparison = typeof benchmarkId === 'string' ? new Map(world.benchmarkComparison(account.id, benchmarkId).map((row) => [row.period, row])) : undefined;
      const periods = world.performance(account.id).filter((row) => wanted === undefined || (wanted as string[]).includes(TIME_PERIODS[row.period]));
      children = periods.map((row) => {
        const versus = comparison?.get(row.period);
        return {
          name: TIME_PERIODS[row.period],
          grouping: 'time_period',
          columns: pick(
            {
              time_period: TIME_PERIODS[row.period],
              [COLUMNS.startDate]: row.startDate,
              [COLUMNS.endDate]: row.endDate,
              [COLUMNS.twr]: num(row.returnRate),
              [COLUMNS.beginningValue]: num(row.beginningValue),
              [COLUMNS.endingValue]: num(row.endingValue),
              [COLUMNS.netFlows]: num(row.netFlows),
              [COLUMNS.currency]: row.currency,
              ...(versus === undefined ? {} : { [COLUMNS.benchmarkReturn]: num(versus.benchmarkReturn), [COLUMNS.excessReturn]: num(versus.excessReturn) }),
            },
            columns,
            PERIOD_COLUMNS,
          ),
        };
      });
      const end = periods[0]?.endDate ?? world.asOf;
      total = { name: 'Total', columns: pick({ [COLUMNS.endingValue]: num(world.accountValue(account.id)), [COLUMNS.currency]: currency }, columns, PERIOD_COLUMNS) };
      window = { start: periods.reduce((min, row) => (row.startDate < min ? row.startDate : min), end), end };
    } else if (grouping.key === 'asset_class') {
      checkColumns(columns, ATTRIBUTION_COLUMNS, 'asset_class');
      const segments = world.attribution(account.id);
      const sum = (field: 'allocationEffect' | 'selectionEffect' | 'totalEffect') => num(segments.reduce((acc, row) => acc.plus(row[field]), new Dec(0)).toFixed());
      children = segments.map((row) => ({
        name: row.segment,
        grouping: 'asset_class',
        columns: pick({ [COLUMNS.allocation]: num(row.allocationEffect), [COLUMNS.selection]: num(row.selectionEffect), [COLUMNS.totalEffect]: num(row.totalEffect) }, columns, ATTRIBUTION_COLUMNS),
      }));
      total = { name: 'Total', columns: pick({ [COLUMNS.allocation]: sum('allocationEffect'), [COLUMNS.selection]: sum('selectionEffect'), [COLUMNS.totalEffect]: sum('totalEffect') }, columns, ATTRIBUTION_COLUMNS) };
      window = { start: segments[0]?.startDate ?? world.asOf, end: segments[0]?.endDate ?? world.asOf };
    } else {
      throw new ApiError(400, `grouping ${String(grouping.key)} is not available; use time_period or asset_class`, { pointer: '/data/attributes/groupings/0/key' });
    }
    return {
      data: { type: 'portfolio_query', attributes: { total, children } },
      meta: { columns, groupings, start_date: window.start, end_date: window.end },
    };
  });
}
