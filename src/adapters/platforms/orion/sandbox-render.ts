import { Dec } from '../../../domain/money/decimal.ts';
import type { AssetClass, PerformancePeriod, SecurityType } from '../../../domain/platforms/records.ts';
import { hashText } from '../sandbox-kit/deterministic.ts';
import type {
  SandboxAccount,
  SandboxHolding,
  SandboxPerformance,
  SandboxSecurity,
  SandboxTaxLot,
  SandboxTransaction,
  SandboxTransactionStatus,
} from '../sandbox-kit/types.ts';
import type { OrionAccount, OrionAsset, OrionPerformance, OrionPerformancePeriod, OrionProductType, OrionTaxLot, OrionTransaction, OrionTransactionStatus } from './wire.ts';

/**
 * The sandbox world in Orion's words: camelCase records, numbers as JSON numbers, ASP.NET
 * date-times, Orion's product types, asset-class names, statuses and financial types. Record ids
 * are the world's (Orion's own are integers; the adapter takes either as text).
 */

const MANAGEMENT_STYLES = ['Discretionary', 'Non-Discretionary', 'Advisory', 'Model'];
const MODEL_NAMES = ['Core Growth 80/20', 'Balanced 60/40', 'Conservative Income 30/70', 'Tax-Aware Equity', 'Global Allocation'];

/** An Orion client (household) number for a sandbox owner. */
export function clientIdOf(ownerId: string): number {
  return 100_000 + (hashText(`client\u0000${ownerId}`) % 900_000);
}

export function renderAccount(account: SandboxAccount, currentValue: string, asOf: string): OrionAccount {
  const key = hashText(`account\u0000${account.id}`);
  return {
    id: account.id,
    isActive: account.status === 'open',
    name: account.name,
    number: account.number,
    custodian: account.custodian,
    accountType: account.accountType,
    managementStyle: MANAGEMENT_STYLES[key % MANAGEMENT_STYLES.length]!,
    modelName: MODEL_NAMES[(key >>> 8) % MODEL_NAMES.length]!,
    currentValue: Number(currentValue),
    registrationId: 10_000 + (key % 90_000),
    clientId: clientIdOf(account.ownerId),
    accountStartDate: dateTime(account.openedOn),
    editedDate: dateTime(asOf),
    currency: account.currency,
  };
}

export function renderAsset(holding: SandboxHolding, account: SandboxAccount, includeCostBasis: boolean): OrionAsset {
  const security = holding.security;
  return {
    id: holding.id,
    accountId: holding.accountId,
    accountNumber: account.number,
    clientId: clientIdOf(account.ownerId),
    name: security.name,
    ticker: security.ticker,
    cusip: security.cusip,
    isin: security.isin,
    currentShares: Number(holding.quantity),
    currentPrice: Number(holding.price),
    currentValue: Number(holding.marketValue),
    // Left out of the JSON unless asked for, as Orion does.
    costBasis: includeCostBasis ? Number(holding.costBasis) : undefined,
    assetClass: assetClassName(security),
    productType: productTypeOf(security.securityType),
    isManaged: security.securityType !== 'cash',
    isCustodialCash: security.securityType === 'cash',
    custodian: account.custodian,
    asOfDate: dateTime(holding.asOf),
    currency: holding.currency,
  };
}

const LOT_METHODS = { FIFO: 'FIFO', LIFO: 'LIFO', AVERAGE_COST: 'AverageCost' } as const;

export function renderTaxLot(lot: SandboxTaxLot): OrionTaxLot {
  return {
    id: lot.id,
    acquiredDate: dateTime(lot.acquiredOn),
    sellDate: null,
    holdingPeriodDate: dateTime(lot.acquiredOn),
    costAmount: Number(lot.costBasis),
    numberOfUnits: Number(lot.quantity),
    method: LOT_METHODS[lot.method],
    proceedAmount: null,
  };
}

const STATUSES: Record<SandboxTransactionStatus, OrionTransactionStatus> = {
  COMPLETED: 'Complete',
  PENDING: 'Pending',
  FAILED: 'Rejected',
  CANCELLED: 'Reversed',
};

/** Orion's status words back to the world's (for the `status` filter). */
export function worldStatusOf(status: string): SandboxTransactionStatus | undefined {
  for (const [world, orion] of Object.entries(STATUSES)) if (orion.toLowerCase() === status.toLowerCase()) return world as SandboxTransactionStatus;
  return undefined;
}

type TransactionWords = { readonly type: string; readonly typeCode: string; readonly financialType: string };

/** Orion's type, type code and financial type of each kind of transaction (a transfer by its direction). */
const WORDS: Record<Exclude<SandboxTransaction['type'], 'TRANSFER'> | 'DEPOSIT' | 'WITHDRAWAL', TransactionWords> = {
  BUY: { type: 'Buy', typeCode: 'BY', financialType: 'Buy' },
  SELL: { type: 'Sell', typeCode: 'SL', financialType: 'Sell' },
  DIVIDEND: { type: 'Dividend', typeCode: 'DV', financialType: 'DivCash' },
  INTEREST: { type: 'Interest', typeCode: 'IN', financialType: 'Interest' },
  FEE: { type: 'Fee', typeCode: 'FE', financialType: 'MgmntFees' },
  DEPOSIT: { type: 'Deposit', typeCode: 'DP', financialType: 'Contribution' },
  WITHDRAWAL: { type: 'Withdrawal', typeCode: 'WD', financialType: 'Distribution' },
};

function transactionWords(transaction: SandboxTransaction): TransactionWords {
  if (transaction.type !== 'TRANSFER') return WORDS[transaction.type];
  return transaction.amount.startsWith('-') ? WORDS.WITHDRAWAL : WORDS.DEPOSIT;
}

export function renderTransaction(transaction: SandboxTransaction, account: SandboxAccount): OrionTransaction {
  const security = transaction.security;
  const amount = transaction.amount.startsWith('-') ? transaction.amount.slice(1) : transaction.amount;
  const words = transactionWords(transaction);
  return {
    id: transaction.id,
    accountId: transaction.accountId,
    accountNumber: account.number,
    transDate: dateTime(transaction.tradeDate),
    settleDate: dateTime(transaction.settleDate),
    transactionDescription: transaction.description,
    ticker: security?.ticker ?? null,
    cusip: security?.cusip ?? null,
    isin: security?.isin ?? null,
    transAmount: Number(amount),
    noUnits: transaction.quantity === undefined ? null : Number(transaction.quantity),
    navPrice: transaction.price === undefined ? null : Number(transaction.price),
    status: STATUSES[transaction.status],
    type: words.type,
    typeCode: words.typeCode,
    financialType: words.financialType,
    currency: transaction.currency,
  };
}

const PERIODS: Record<PerformancePeriod, OrionPerformancePeriod> = {
  DAILY: '1Day',
  WEEKLY: '1Week',
  MONTHLY: '1Month',
  YTD: 'YTD',
  '1Y': '1Year',
  '3Y': '3Year',
  '5Y': '5Year',
  INCEPTION: 'ITD',
};

export function renderPerformance(performance: SandboxPerformance): OrionPerformance {
  return {
    accountId: performance.accountId,
    period: PERIODS[performance.period],
    startDate: dateTime(performance.startDate),
    endDate: dateTime(performance.endDate),
    // Orion reports returns in percent.
    twr: new Dec(performance.returnRate).mul(100).toNumber(),
    beginningValue: Number(performance.beginningValue),
    endingValue: Number(performance.endingValue),
    netContributions: Number(performance.netFlows),
    currency: performance.currency,
  };
}

/** A record as a broken feed writes it: the id is intact, one field holds what is not a value of it. */
export function malformed(record: object, field: string): object {
  return { ...record, [field]: 'N/A' };
}

const PRODUCT_TYPES: Record<SecurityType, OrionProductType | null> = {
  stock: 'StockOrETF',
  etf: 'StockOrETF',
  mutual_fund: 'MutualFund',
  bond: 'Bond',
  option: 'Option',
  cd: 'CD',
  annuity: 'Annuity',
  cash: 'MutualFund',
  other: null,
};

function productTypeOf(type: SecurityType): OrionProductType | null {
  return PRODUCT_TYPES[type];
}

/** Firm-style asset-class names, as an Orion firm's class tree would have them. */
const ASSET_CLASS_NAMES: Record<Exclude<AssetClass, 'equity'>, string> = {
  fixed_income: 'Intermediate Fixed Income',
  cash: 'Cash & Equivalents',
  alternative: 'Alternative Investments',
  real_estate: 'Real Estate',
  commodity: 'Commodities',
  multi_asset: 'Balanced',
  other: 'Other',
};
const US_EQUITY_NAMES = ['Large Cap Equity', 'Mid Cap Equity', 'Small Cap Equity'] as const;

function assetClassName(security: SandboxSecurity): string {
  if (security.assetClass !== 'equity') return ASSET_CLASS_NAMES[security.assetClass];
  return security.currency === 'USD' ? US_EQUITY_NAMES[security.index % 3]! : 'International Equity';
}

function dateTime(date: string): string {
  return `${date}T00:00:00`;
}
