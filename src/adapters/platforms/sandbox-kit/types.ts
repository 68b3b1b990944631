import type { AssetClass, PerformancePeriod, SecurityType } from '../../../domain/platforms/records.ts';

/**
 * The platform-neutral truth every sandbox renders in its own dialect. Amounts, quantities and
 * prices are decimal strings; dates are YYYY-MM-DD.
 */

export interface SandboxSecurity {
  readonly index: number;
  readonly ticker: string;
  readonly name: string;
  readonly cusip: string;
  readonly isin: string;
  readonly currency: string;
  readonly assetClass: AssetClass;
  readonly securityType: SecurityType;
}

export interface SandboxAccount {
  readonly id: string;
  readonly ownerId: string;
  readonly name: string;
  readonly number: string;
  readonly accountType: string;
  readonly custodian: string;
  readonly currency: string;
  readonly status: 'open' | 'closed';
  readonly openedOn: string;
}

export interface SandboxHolding {
  readonly id: string;
  readonly accountId: string;
  readonly security: SandboxSecurity;
  readonly quantity: string;
  readonly price: string;
  readonly marketValue: string;
  readonly costBasis: string;
  readonly currency: string;
  readonly asOf: string;
  /** Position in the account's holding order (1-based); new holdings get the highest. */
  readonly seq: number;
}

export type SandboxTransactionType = 'BUY' | 'SELL' | 'DIVIDEND' | 'INTEREST' | 'FEE' | 'TRANSFER';
export type SandboxTransactionStatus = 'PENDING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

export interface SandboxTransaction {
  readonly id: string;
  readonly accountId: string;
  readonly type: SandboxTransactionType;
  readonly status: SandboxTransactionStatus;
  readonly tradeDate: string;
  readonly settleDate: string;
  readonly security?: SandboxSecurity;
  readonly quantity?: string;
  readonly price?: string;
  /** Signed from the account's point of view: cash in positive, cash out negative. */
  readonly amount: string;
  readonly currency: string;
  readonly description: string;
  /** Creation order within the account (1-based). */
  readonly seq: number;
  /** The world's change counter when the transaction was created or last amended or cancelled. */
  readonly modifiedSeq: number;
}

export interface SandboxTaxLot {
  readonly id: string;
  readonly holdingId: string;
  readonly accountId: string;
  readonly security: SandboxSecurity;
  readonly acquiredOn: string;
  readonly quantity: string;
  readonly costBasis: string;
  readonly method: 'FIFO' | 'LIFO' | 'AVERAGE_COST';
  readonly term: 'SHORT' | 'LONG';
  readonly currency: string;
}

export interface SandboxPerformance {
  readonly accountId: string;
  readonly period: PerformancePeriod;
  readonly startDate: string;
  readonly endDate: string;
  /** A fraction: 0.0523 is 5.23%. endingValue = beginningValue × (1 + returnRate) + netFlows, to the cent. */
  readonly returnRate: string;
  readonly beginningValue: string;
  readonly endingValue: string;
  readonly netFlows: string;
  readonly currency: string;
}

export interface SandboxRiskMetrics {
  readonly accountId: string;
  readonly asOf: string;
  readonly volatility: string;
  readonly sharpeRatio: string;
  readonly beta: string;
  readonly maxDrawdown: string;
}

export interface SandboxAttribution {
  readonly accountId: string;
  readonly startDate: string;
  readonly endDate: string;
  readonly segment: string;
  readonly allocationEffect: string;
  readonly selectionEffect: string;
  /** allocationEffect + selectionEffect, exactly. */
  readonly totalEffect: string;
}

export interface SandboxBenchmarkComparison {
  readonly accountId: string;
  readonly benchmarkId: string;
  readonly period: PerformancePeriod;
  /** The account's returnRate for the same period. */
  readonly portfolioReturn: string;
  readonly benchmarkReturn: string;
  /** portfolioReturn − benchmarkReturn, exactly. */
  readonly excessReturn: string;
}

export interface SandboxPush {
  readonly platform: string;
  readonly accountId: string;
  readonly body: unknown;
  readonly reference: string;
  readonly receivedAt: string;
}

/** What changed in the world; webhooks deliver these for new transactions. */
export type WorldChange =
  | { readonly kind: 'transaction_created'; readonly accountId: string; readonly transactionId: string; readonly changeSeq: number }
  | { readonly kind: 'transaction_modified'; readonly accountId: string; readonly transactionId: string; readonly changeSeq: number }
  | { readonly kind: 'holding_changed'; readonly accountId: string; readonly holdingId: string; readonly changeSeq: number }
  | { readonly kind: 'account_changed'; readonly accountId: string; readonly changeSeq: number }
  | { readonly kind: 'prices_changed'; readonly securityIndex: number; readonly changeSeq: number };
