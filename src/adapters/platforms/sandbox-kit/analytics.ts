import { Decimal } from 'decimal.js';
import { Dec } from '../../../domain/money/decimal.ts';
import type { PerformancePeriod } from '../../../domain/platforms/records.ts';
import { addMonths, businessDayOnOrBefore, dateText, startOfYear } from './calendar.ts';
import { Draws, hashText } from './deterministic.ts';
import { money } from './money.ts';
import type { SandboxAttribution, SandboxBenchmarkComparison, SandboxPerformance, SandboxRiskMetrics } from './types.ts';

/**
 * Performance, risk, attribution and benchmark figures of an account, drawn from its key and
 * tied together: every period ends at the account's current value, and
 * endingValue = beginningValue × (1 + returnRate) + netFlows to the cent.
 */

export interface AnalyticsInput {
  readonly accountId: string;
  readonly currency: string;
  readonly key: number;
  readonly seed: string;
  readonly openedDay: number;
  readonly asOfDay: number;
  readonly endingValue: Decimal;
}

interface PeriodShape {
  readonly period: PerformancePeriod;
  start(asOfDay: number, openedDay: number): number;
  /** Range of the return in basis points, and of net flows in per-mille of the ending value. */
  readonly returnBp: readonly [number, number];
  readonly flowsPermille: readonly [number, number];
}

const PERIODS: readonly PeriodShape[] = [
  { period: 'DAILY', start: (d) => businessDayOnOrBefore(d - 1), returnBp: [-180, 180], flowsPermille: [0, 0] },
  { period: 'WEEKLY', start: (d) => d - 7, returnBp: [-400, 400], flowsPermille: [-5, 10] },
  { period: 'MONTHLY', start: (d) => addMonths(d, -1), returnBp: [-700, 800], flowsPermille: [-20, 40] },
  { period: 'YTD', start: (d) => startOfYear(d), returnBp: [-1200, 2200], flowsPermille: [-40, 90] },
  { period: '1Y', start: (d) => addMonths(d, -12), returnBp: [-1500, 3000], flowsPermille: [-60, 120] },
  { period: '3Y', start: (d) => addMonths(d, -36), returnBp: [-1000, 6000], flowsPermille: [-100, 300] },
  { period: '5Y', start: (d) => addMonths(d, -60), returnBp: [0, 9000], flowsPermille: [-150, 450] },
  { period: 'INCEPTION', start: (_d, opened) => opened, returnBp: [500, 15000], flowsPermille: [100, 700] },
];

const SEGMENTS = ['US Equity', 'International Equity', 'Fixed Income', 'Real Estate', 'Alternatives', 'Cash'];

export interface AccountAnalytics {
  readonly performance: SandboxPerformance[];
  readonly riskMetrics: SandboxRiskMetrics;
  readonly attribution: SandboxAttribution[];
  benchmark(benchmarkId: string): SandboxBenchmarkComparison[];
}

const rate = (basisPoints: number) => new Dec(basisPoints).div(10_000);

export function accountAnalytics(input: AnalyticsInput): AccountAnalytics {
  const { accountId, currency, asOfDay, openedDay } = input;
  const ending = input.endingValue;
  const performance: SandboxPerformance[] = [];
  PERIODS.forEach((shape, i) => {
    const startDay = shape.start(asOfDay, openedDay);
    if (startDay < openedDay && shape.period !== 'INCEPTION') return;
    const draws = new Draws(input.key ^ 0x9e7f, i);
    // Basis points and a hundredth of one, so rates carry six decimals.
    const returnRate = new Dec(draws.between(shape.returnBp[0] * 100, shape.returnBp[1] * 100)).div(1_000_000);
    const netFlows = ending.mul(draws.between(shape.flowsPermille[0], shape.flowsPermille[1])).div(1000);
    const beginning = ending.minus(netFlows).div(returnRate.plus(1));
    performance.push({
      accountId,
      period: shape.period,
      startDate: dateText(startDay),
      endDate: dateText(asOfDay),
      returnRate: returnRate.toFixed(),
      beginningValue: money(beginning, currency),
      endingValue: money(ending, currency),
      netFlows: money(netFlows, currency),
      currency,
    });
  });
  const risk = new Draws(input.key ^ 0x5a5a, 0);
  const riskMetrics: SandboxRiskMetrics = {
    accountId,
    asOf: dateText(asOfDay),
    volatility: rate(risk.between(600, 2800)).toFixed(4),
    sharpeRatio: new Dec(risk.between(-50, 250)).div(100).toFixed(4),
    beta: new Dec(risk.between(50, 140)).div(100).toFixed(4),
    maxDrawdown: rate(-risk.between(300, 4000)).toFixed(4),
  };
  const attributionStart = dateText(Math.max(openedDay, startOfYear(asOfDay)));
  const attribution = SEGMENTS.map((segment, i): SandboxAttribution => {
    const draws = new Draws(input.key ^ 0xa771, i);
    const allocation = rate(draws.between(-150, 150));
    const selection = rate(draws.between(-150, 150));
    return {
      accountId,
      startDate: attributionStart,
      endDate: dateText(asOfDay),
      segment,
      allocationEffect: allocation.toFixed(4),
      selectionEffect: selection.toFixed(4),
      totalEffect: allocation.plus(selection).toFixed(4),
    };
  });
  return {
    performance,
    riskMetrics,
    attribution,
    benchmark(benchmarkId) {
      const key = hashText(`${input.seed}\u0000benchmark\u0000${benchmarkId}`);
      return performance.map((row): SandboxBenchmarkComparison => {
        const shape = PERIODS.findIndex((p) => p.period === row.period);
        const draws = new Draws(key, shape);
        const bounds = PERIODS[shape]!.returnBp;
        const benchmarkReturn = new Dec(draws.between(bounds[0] * 100, bounds[1] * 100)).div(1_000_000);
        const portfolioReturn = new Dec(row.returnRate);
        return {
          accountId,
          benchmarkId,
          period: row.period,
          portfolioReturn: portfolioReturn.toFixed(),
          benchmarkReturn: benchmarkReturn.toFixed(),
          excessReturn: portfolioReturn.minus(benchmarkReturn).toFixed(),
        };
      });
    },
  };
}
