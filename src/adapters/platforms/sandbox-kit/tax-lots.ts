import { Decimal } from 'decimal.js';
import { Dec } from '../../../domain/money/decimal.ts';
import { dateText } from './calendar.ts';
import { Draws } from './deterministic.ts';
import { minorUnits } from '../../../domain/money/minor-units.ts';
import type { SandboxHolding, SandboxTaxLot } from './types.ts';

export type TaxLotMethod = SandboxTaxLot['method'];

const LONG_TERM_AFTER_DAYS = 365;

/**
 * A holding's lots: one to four purchases between the account's opening and today. Lot
 * quantities and cost bases are split so they add up exactly to the holding's.
 */
export function taxLotsOf(holding: SandboxHolding, method: TaxLotMethod, openedDay: number, asOfDay: number, accountKey: number): SandboxTaxLot[] {
  const draws = new Draws(accountKey ^ 0x107, holding.seq);
  const quantity = new Dec(holding.quantity);
  const places = quantity.decimalPlaces();
  const units = quantity.mul(Dec.pow(10, places)).toNumber();
  const lotCount = Math.max(1, Math.min(1 + draws.below(4), units));
  const weights = Array.from({ length: lotCount }, () => 1 + draws.below(9));
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0);
  const spare = units - lotCount;
  const costBasis = new Dec(holding.costBasis);
  const days = Array.from({ length: lotCount }, () => openedDay + draws.below(Math.max(1, asOfDay - openedDay))).sort((a, b) => a - b);
  const lots: SandboxTaxLot[] = [];
  let unitsLeft = units;
  let costLeft = costBasis;
  for (let k = 0; k < lotCount; k++) {
    const last = k === lotCount - 1;
    const lotUnits = last ? unitsLeft : 1 + Math.floor((spare * weights[k]!) / weightSum);
    // Earlier lots round down so the last one (the remainder) is never negative.
    const lotCost = last ? costLeft : costBasis.mul(lotUnits).div(units).toDecimalPlaces(minorUnits(holding.currency), Decimal.ROUND_DOWN);
    unitsLeft -= lotUnits;
    costLeft = costLeft.minus(lotCost);
    const acquired = days[k]!;
    lots.push({
      id: `${holding.id}-L${k + 1}`,
      holdingId: holding.id,
      accountId: holding.accountId,
      security: holding.security,
      acquiredOn: dateText(acquired),
      quantity: new Dec(lotUnits).div(Dec.pow(10, places)).toFixed(),
      costBasis: lotCost.toFixed(minorUnits(holding.currency)),
      method,
      term: asOfDay - acquired > LONG_TERM_AFTER_DAYS ? 'LONG' : 'SHORT',
      currency: holding.currency,
    });
  }
  return lots;
}
