import { z } from 'zod';

/**
 * Orion's payloads as its API writes them (camelCase JSON, numbers as JSON numbers, dates as
 * ASP.NET local date-times such as "2024-03-28T00:00:00"). The schemas check shapes only; the
 * mapping turns them into canonical records. Fields the sandbox adds where Orion's public
 * material is silent (currency, isin, the performance fields) are optional so that a response
 * without them still parses.
 */

/** Orion ids are integers; kept as text so they travel like every other platform's ids. */
export const OrionIdSchema = z.union([z.number().int().nonnegative(), z.string().min(1)]).transform(String);

/** An amount as Orion sends it: a JSON number, sometimes a string. The mapping makes it a Decimal. */
export const OrionNumberSchema = z.union([z.number().finite(), z.string().min(1)]);

const Text = z.string().nullish();
const DateTime = z.string().nullish();

export const OrionTokenSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().int().positive(),
  refresh_token: z.string().min(1),
});

export const OrionAccountSchema = z.object({
  id: OrionIdSchema,
  isActive: z.boolean(),
  name: z.string(),
  number: Text,
  custodian: Text,
  accountType: Text,
  managementStyle: Text,
  modelName: Text,
  currentValue: OrionNumberSchema.nullish(),
  registrationId: z.number().int().nullish(),
  clientId: z.number().int().nullish(),
  accountStartDate: DateTime,
  editedDate: DateTime,
  currency: Text,
});
export type OrionAccount = z.input<typeof OrionAccountSchema>;

export const ORION_PRODUCT_TYPES = ['MutualFund', 'StockOrETF', 'Bond', 'Option', 'CD', 'Annuity'] as const;
export type OrionProductType = (typeof ORION_PRODUCT_TYPES)[number];

export const OrionAssetSchema = z.object({
  id: OrionIdSchema,
  accountId: OrionIdSchema,
  accountNumber: Text,
  clientId: z.number().int().nullish(),
  name: z.string(),
  ticker: Text,
  cusip: Text,
  isin: Text,
  currentShares: OrionNumberSchema,
  currentPrice: OrionNumberSchema,
  currentValue: OrionNumberSchema,
  costBasis: OrionNumberSchema.nullish(),
  assetClass: Text,
  productType: z.enum(ORION_PRODUCT_TYPES).nullish(),
  isManaged: z.boolean().nullish(),
  isCustodialCash: z.boolean().nullish(),
  custodian: Text,
  asOfDate: z.string(),
  currency: Text,
});
export type OrionAsset = z.input<typeof OrionAssetSchema>;

export const OrionTaxLotSchema = z.object({
  id: OrionIdSchema,
  acquiredDate: z.string(),
  /** Set on a closed (sold) lot; the open lots are the ones held. */
  sellDate: DateTime,
  holdingPeriodDate: DateTime,
  costAmount: OrionNumberSchema,
  numberOfUnits: OrionNumberSchema,
  method: z.string(),
  proceedAmount: OrionNumberSchema.nullish(),
});
export type OrionTaxLot = z.input<typeof OrionTaxLotSchema>;

/** An asset as the verbose listing writes it: the asset with its tax lots. */
export const OrionVerboseAssetSchema = OrionAssetSchema.extend({
  taxLots: z.array(OrionTaxLotSchema),
});

export const ORION_TRANSACTION_STATUSES = ['Complete', 'Pending', 'Rejected', 'Reversed', 'Inactive', 'PendingCorpAction'] as const;
export type OrionTransactionStatus = (typeof ORION_TRANSACTION_STATUSES)[number];

export const OrionTransactionSchema = z.object({
  id: OrionIdSchema,
  accountId: OrionIdSchema,
  accountNumber: Text,
  transDate: z.string(),
  settleDate: DateTime,
  transactionDescription: Text,
  ticker: Text,
  cusip: Text,
  isin: Text,
  /** Unsigned: the direction follows from financialType. */
  transAmount: OrionNumberSchema,
  noUnits: OrionNumberSchema.nullish(),
  navPrice: OrionNumberSchema.nullish(),
  status: z.enum(ORION_TRANSACTION_STATUSES),
  type: Text,
  typeCode: Text,
  financialType: Text,
  currency: Text,
  editedDate: DateTime,
});
export type OrionTransaction = z.input<typeof OrionTransactionSchema>;

/** Orion's reporting names for the periods it reports returns over. */
export const ORION_PERFORMANCE_PERIODS = ['1Day', '1Week', '1Month', 'YTD', '1Year', '3Year', '5Year', 'ITD'] as const;
export type OrionPerformancePeriod = (typeof ORION_PERFORMANCE_PERIODS)[number];

export const OrionPerformanceSchema = z.object({
  accountId: OrionIdSchema,
  period: z.enum(ORION_PERFORMANCE_PERIODS),
  startDate: z.string(),
  endDate: z.string(),
  /** Time-weighted return in percent: 5.23 is 5.23%. */
  twr: OrionNumberSchema,
  beginningValue: OrionNumberSchema,
  endingValue: OrionNumberSchema,
  netContributions: OrionNumberSchema,
  currency: Text,
});
export type OrionPerformance = z.input<typeof OrionPerformanceSchema>;

/** ASP.NET Web API's error body, which Orion answers with. */
export const OrionErrorSchema = z.object({
  Message: z.string(),
  ModelState: z.record(z.string(), z.array(z.string())).optional(),
});
export type OrionError = z.infer<typeof OrionErrorSchema>;

/** Write-back bodies: a trade order, a rebalance and a manual override of a position's field. */
const ClientReference = z.string().min(1, 'The clientReference field is required.').max(100, 'The clientReference field must be at most 100 characters.');
const SecurityFields = {
  ticker: z.string().min(1).max(20).optional(),
  cusip: z.string().length(9, 'A CUSIP has 9 characters.').optional(),
  isin: z.string().length(12, 'An ISIN has 12 characters.').optional(),
};

export const OrionTradeOrderSchema = z.object({
  accountId: OrionIdSchema,
  clientReference: ClientReference,
  action: z.enum(['Buy', 'Sell'], 'The action must be Buy or Sell.'),
  ...SecurityFields,
  quantity: z.number('The quantity must be a number.').positive('The quantity must be greater than zero.'),
  orderType: z.enum(['Market', 'Limit'], 'The orderType must be Market or Limit.'),
  limitPrice: z.number('The limitPrice must be a number.').positive('The limitPrice must be greater than zero.').optional(),
});

export const OrionRebalanceSchema = z.object({
  accountId: OrionIdSchema,
  clientReference: ClientReference,
  targets: z
    .array(z.object({ ...SecurityFields, targetPercent: z.number().gt(0, 'A targetPercent must be greater than 0.').lte(100, 'A targetPercent must be at most 100.') }))
    .min(1, 'At least one target is required.')
    .max(1000),
});

export const ORION_OVERRIDE_FIELDS = ['Shares', 'Price', 'CostBasis'] as const;

export const OrionOverrideSchema = z.object({
  accountId: OrionIdSchema,
  clientReference: ClientReference,
  field: z.enum(ORION_OVERRIDE_FIELDS, 'The field must be Shares, Price or CostBasis.'),
  value: z.number('The value must be a number.').nonnegative('The value must not be negative.'),
  reason: z.string().trim().min(1, 'A reason is required.').max(500, 'The reason must be at most 500 characters.'),
});

export const OrionOrderReceiptSchema = z.object({
  id: OrionIdSchema,
  clientReference: z.string(),
  status: z.string(),
  createdDate: z.string(),
});
export type OrionOrderReceipt = z.input<typeof OrionOrderReceiptSchema>;
