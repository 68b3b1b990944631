import { Decimal } from 'decimal.js';
import { Dec } from '../../../domain/money/decimal.ts';
import { accountAnalytics } from './analytics.ts';
import { addBusinessDays, businessDayOnOrBefore, dateText, dayOf } from './calendar.ts';
import { Draws, hashText } from './deterministic.ts';
import { SandboxInputError } from './input-error.ts';
import { SUPPORTED_CURRENCIES, convert, money, parseDecimal } from './money.ts';
import { minorUnits } from '../../../domain/money/minor-units.ts';
import { KNOWN_SECURITIES, MAX_SECURITY_INDEX, securityAt, securityIndexOfTicker, basePriceText } from './securities.ts';
import { taxLotsOf, type TaxLotMethod } from './tax-lots.ts';
import type {
  SandboxAccount,
  SandboxAttribution,
  SandboxBenchmarkComparison,
  SandboxHolding,
  SandboxPerformance,
  SandboxPush,
  SandboxRiskMetrics,
  SandboxSecurity,
  SandboxTaxLot,
  SandboxTransaction,
  SandboxTransactionStatus,
  SandboxTransactionType,
  WorldChange,
} from './types.ts';

export interface SandboxWorldOptions {
  readonly seed: string;
  /** The platform's "today": holdings are as of this date, transactions end on it. */
  readonly asOf?: string;
}

export interface AddAccountInput {
  readonly ownerId: string;
  readonly id?: string;
  readonly currency?: string;
  readonly holdings: number;
  readonly transactions: number;
}

export interface HoldingRange {
  readonly offset?: number;
  readonly limit?: number;
  /** Continue after this holding id (cursor paging). */
  readonly afterId?: string;
}

export interface TransactionFilter {
  /** Trade date on or after (YYYY-MM-DD). */
  readonly from?: string;
  /** Trade date on or before (YYYY-MM-DD). */
  readonly to?: string;
  /** Only transactions created, amended or cancelled after this change sequence number. */
  readonly modifiedAfter?: number;
  readonly offset?: number;
  readonly limit?: number;
  /** Continue after this transaction id (cursor paging). */
  readonly afterId?: string;
}

/** Names a security by ticker or by its index in the universe. */
export type SecuritySelector = { readonly ticker: string } | { readonly securityIndex: number };

export interface TradeInput {
  readonly ticker?: string;
  readonly securityIndex?: number;
  readonly quantity: string;
  readonly price: string;
}

export interface TransactionChanges {
  readonly quantity?: string;
  readonly price?: string;
  readonly amount?: string;
  readonly settleDate?: string;
  readonly description?: string;
  readonly status?: SandboxTransactionStatus;
}

export const DEFAULT_AS_OF = '2025-06-30';
export const MAX_HOLDINGS_PER_ACCOUNT = 1_000_000;
export const MAX_TRANSACTIONS_PER_ACCOUNT = 10_000_000;

/** Prices and securities (securities.ts) are cached for this many indexes: every security of a 50,000-holding account. */
const PRICE_CACHE_SIZE = 65_536;
/** Transactions trade among an account's first holdings: active names, and securities that stay cached. */
const TRADED_HOLDINGS = 2000;
const ACCOUNT_TYPES = ['Individual', 'Joint', 'Traditional IRA', 'Roth IRA', 'Trust', '401(k)', 'SEP IRA'];
const CUSTODIANS = ['Charles Schwab', 'Fidelity', 'Pershing', 'BNY Mellon', 'Interactive Brokers', 'State Street'];

/** A price as text and as minor units (generated records are priced in integers); a Decimal only when one is asked for. */
class Quote {
  /** The text without its point: the price texts here always carry their currency's minor units. */
  readonly units: number;
  private decimal: Decimal | undefined;

  constructor(readonly text: string) {
    this.units = Number(text.replace('.', ''));
  }

  get value(): Decimal {
    return (this.decimal ??= new Dec(this.text));
  }
}

/** Data a real platform sometimes sends that the ledger cannot use: a currency it does not know, identifiers that do not check. */
export interface HoldingFlaw {
  readonly currency?: string;
  readonly cusip?: string;
  readonly isin?: string;
}

interface HoldingOverride {
  readonly securityIndex?: number;
  readonly quantity: Decimal;
  readonly costBasis: Decimal;
}

/** One account: its generated base and the small overlays that mutations leave on it. */
interface AccountState {
  account: SandboxAccount;
  readonly key: number;
  readonly createdSeq: number;
  readonly openedDay: number;
  readonly rotation: number;
  readonly lotMethod: TaxLotMethod;
  readonly baseHoldings: number;
  readonly baseTransactions: number;
  insertedHoldings: number;
  insertedTransactions: number;
  readonly holdingOverrides: Map<number, HoldingOverride>;
  /** Holdings a test made unusable on purpose: what the platform reports for them instead. */
  readonly holdingFlaws: Map<number, HoldingFlaw>;
  /** Securities placed explicitly (by a buy) at a holding index. */
  readonly explicitHoldingOf: Map<number, number>;
  /** Holding indexes sold out, ascending. */
  readonly deletedHoldings: number[];
  readonly transactionOverrides: Map<number, SandboxTransaction>;
  /** Indexes of transactions created or changed after the account was, ascending. */
  readonly modifiedTransactions: number[];
}

/**
 * The whole platform's truth. Accounts are generated per record index from (seed, account id,
 * index), so a 50,000-holding account costs nothing until it is read; mutations are overlays.
 */
export class SandboxWorld {
  readonly seed: string;
  readonly asOf: string;
  private readonly asOfDay: number;
  private readonly seedKey: number;
  private readonly states = new Map<string, AccountState>();
  private readonly movedPrices = new Map<number, Quote>();
  private readonly pushLog: SandboxPush[] = [];
  private readonly listeners = new Set<(change: WorldChange) => void>();
  private readonly valueCache = new Map<string, { readonly changeSeq: number; readonly value: Decimal }>();
  private sequence = 0;
  // Unmoved prices, direct-mapped by security index: fixed memory, no recomputation for hot securities.
  private readonly quoteCacheIndex = new Int32Array(PRICE_CACHE_SIZE).fill(-1);
  private readonly quoteCache: (Quote | undefined)[] = new Array(PRICE_CACHE_SIZE);

  constructor(options: SandboxWorldOptions) {
    this.seed = options.seed;
    this.asOf = options.asOf ?? DEFAULT_AS_OF;
    this.asOfDay = dayOf(this.asOf);
    this.seedKey = hashText(`world\u0000${options.seed}`);
  }

  // ---- accounts ----

  addAccount(input: AddAccountInput): SandboxAccount {
    const id = input.id ?? `acct-${String(this.states.size + 1).padStart(5, '0')}`;
    if (this.states.has(id)) throw new SandboxInputError('id', `account ${id} already exists`, 409);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/.test(id)) throw new SandboxInputError('id', 'id must be 1-100 letters, digits, _ . : -');
    if (input.ownerId.length === 0) throw new SandboxInputError('ownerId', 'ownerId must not be empty');
    const currency = input.currency ?? 'USD';
    if (!SUPPORTED_CURRENCIES.includes(currency)) throw new SandboxInputError('currency', `currency must be one of ${SUPPORTED_CURRENCIES.join(', ')}`);
    checkCount('holdings', input.holdings, MAX_HOLDINGS_PER_ACCOUNT);
    checkCount('transactions', input.transactions, MAX_TRANSACTIONS_PER_ACCOUNT);
    const key = hashText(`${this.seed}\u0000${id}`);
    const draws = new Draws(key, -1);
    const openedDay = businessDayOnOrBefore(this.asOfDay - draws.between(400, 4000));
    const accountType = draws.pick(ACCOUNT_TYPES);
    const number = `${draws.between(1000, 9999)}-${draws.between(1000, 9999)}`;
    const account: SandboxAccount = {
      id,
      ownerId: input.ownerId,
      name: `${accountType} ${number.slice(-4)}`,
      number,
      accountType,
      custodian: draws.pick(CUSTODIANS),
      currency,
      status: 'open',
      openedOn: dateText(openedDay),
    };
    const methodRoll = draws.below(10);
    this.states.set(id, {
      account,
      key,
      createdSeq: this.bump(),
      openedDay,
      rotation: draws.below(KNOWN_SECURITIES),
      lotMethod: methodRoll < 7 ? 'FIFO' : methodRoll < 8 ? 'LIFO' : 'AVERAGE_COST',
      baseHoldings: input.holdings,
      baseTransactions: input.transactions,
      insertedHoldings: 0,
      insertedTransactions: 0,
      holdingOverrides: new Map(),
      holdingFlaws: new Map(),
      explicitHoldingOf: new Map(),
      deletedHoldings: [],
      transactionOverrides: new Map(),
      modifiedTransactions: [],
    });
    this.emit({ kind: 'account_changed', accountId: id, changeSeq: this.sequence });
    return account;
  }

  closeAccount(accountId: string): void {
    const state = this.state(accountId);
    state.account = { ...state.account, status: 'closed' };
    this.emit({ kind: 'account_changed', accountId, changeSeq: this.bump() });
  }

  accounts(ownerId?: string): SandboxAccount[] {
    const result: SandboxAccount[] = [];
    for (const state of this.states.values()) if (ownerId === undefined || state.account.ownerId === ownerId) result.push(state.account);
    return result;
  }

  account(accountId: string): SandboxAccount | undefined {
    return this.states.get(accountId)?.account;
  }

  /** The account's market value in its own currency (holdings converted at fixed sandbox rates). */
  accountValue(accountId: string): string {
    const state = this.state(accountId);
    return money(this.endingValue(state), state.account.currency);
  }

  // ---- holdings ----

  holdingsCount(accountId: string): number {
    const state = this.state(accountId);
    return state.baseHoldings + state.insertedHoldings - state.deletedHoldings.length;
  }

  /** Lazily, ordered by seq. */
  *holdings(accountId: string, range: HoldingRange = {}): Iterable<SandboxHolding> {
    const state = this.state(accountId);
    const total = state.baseHoldings + state.insertedHoldings;
    let index = range.afterId === undefined ? 0 : cursorIndex('afterId', holdingIndexOfId(accountId, range.afterId)) + 1;
    let skip = range.offset ?? 0;
    let remaining = range.limit ?? Number.POSITIVE_INFINITY;
    const deleted = state.deletedHoldings;
    let next = lowerBound(deleted, index);
    if (deleted.length === 0 && skip > 0) {
      index += skip;
      skip = 0;
    }
    for (; index < total && remaining > 0; index++) {
      if (deleted[next] === index) {
        next++;
        continue;
      }
      if (skip > 0) {
        skip--;
        continue;
      }
      remaining--;
      yield this.holdingAt(state, index);
    }
  }

  /** One holding by id, or undefined when the account has none by that id. */
  holding(accountId: string, holdingId: string): SandboxHolding | undefined {
    const state = this.state(accountId);
    const index = holdingIndexOfId(accountId, holdingId);
    if (index < 0 || index >= state.baseHoldings + state.insertedHoldings || isIn(state.deletedHoldings, index)) return undefined;
    return this.holdingAt(state, index);
  }

  /** Makes the platform report a holding with a flawed currency or identifiers from now on. */
  flawHolding(accountId: string, holdingId: string, flaw: HoldingFlaw): SandboxHolding {
    const state = this.state(accountId);
    const index = holdingIndexOfId(accountId, holdingId);
    if (this.holding(accountId, holdingId) === undefined) throw new SandboxInputError('holdingId', `no holding ${holdingId} in ${accountId}`, 404);
    state.holdingFlaws.set(index, flaw);
    this.emit({ kind: 'holding_changed', accountId, holdingId, changeSeq: this.bump() });
    return this.holdingAt(state, index);
  }

  // ---- transactions ----

  transactionsCount(accountId: string, filter: TransactionFilter = {}): number {
    let count = 0;
    const state = this.state(accountId);
    const { lo, hi } = this.transactionRange(state, filter);
    if (filter.modifiedAfter === undefined || filter.modifiedAfter < state.createdSeq) {
      count = Math.max(0, hi - lo - (filter.offset ?? 0));
      return Math.min(count, filter.limit ?? count);
    }
    for (const _ of this.transactions(accountId, filter)) count++;
    return count;
  }

  /** Lazily, ordered by seq (creation order). */
  *transactions(accountId: string, filter: TransactionFilter = {}): Iterable<SandboxTransaction> {
    const state = this.state(accountId);
    const { lo, hi } = this.transactionRange(state, filter);
    let skip = filter.offset ?? 0;
    let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
    const modifiedAfter = filter.modifiedAfter;
    if (modifiedAfter === undefined || modifiedAfter < state.createdSeq) {
      for (let index = lo + skip; index < hi && remaining > 0; index++, remaining--) yield this.transactionAt(state, index);
      return;
    }
    // Only the overlay can hold changes made after the account was created.
    const modified = state.modifiedTransactions;
    for (let i = lowerBound(modified, lo); i < modified.length && modified[i]! < hi && remaining > 0; i++) {
      const transaction = this.transactionAt(state, modified[i]!);
      if (transaction.modifiedSeq <= modifiedAfter) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      remaining--;
      yield transaction;
    }
  }

  transaction(accountId: string, transactionId: string): SandboxTransaction | undefined {
    const state = this.state(accountId);
    const index = transactionIndexOfId(accountId, transactionId);
    if (index < 0 || index >= state.baseTransactions + state.insertedTransactions) return undefined;
    return this.transactionAt(state, index);
  }

  // ---- tax lots and analytics ----

  /** Lots of every holding (or of one), ordered by holding then acquisition; each holding's lots sum to its quantity and cost basis. */
  *taxLots(accountId: string, holdingId?: string): Iterable<SandboxTaxLot> {
    const state = this.state(accountId);
    if (holdingId !== undefined) {
      const holding = this.holding(accountId, holdingId);
      if (holding === undefined) throw new SandboxInputError('holdingId', `account ${accountId} has no holding ${holdingId}`, 404);
      yield* taxLotsOf(holding, state.lotMethod, state.openedDay, this.asOfDay, state.key);
      return;
    }
    for (const holding of this.holdings(accountId)) yield* taxLotsOf(holding, state.lotMethod, state.openedDay, this.asOfDay, state.key);
  }

  performance(accountId: string): SandboxPerformance[] {
    return this.analytics(accountId).performance;
  }

  riskMetrics(accountId: string): SandboxRiskMetrics {
    return this.analytics(accountId).riskMetrics;
  }

  attribution(accountId: string): SandboxAttribution[] {
    return this.analytics(accountId).attribution;
  }

  benchmarkComparison(accountId: string, benchmarkId: string): SandboxBenchmarkComparison[] {
    return this.analytics(accountId).benchmark(benchmarkId);
  }

  // ---- mutations ----

  buy(accountId: string, input: TradeInput): SandboxTransaction {
    return this.trade(accountId, 'BUY', input);
  }

  sell(accountId: string, input: TradeInput): SandboxTransaction {
    return this.trade(accountId, 'SELL', input);
  }

  /** Moves a security's price by a percentage ("-12.5" is down 12.5%); every holding of it follows. */
  movePrice(security: number | string, percent: string): void {
    const index = this.resolveSecurity(typeof security === 'number' ? { securityIndex: security } : { ticker: security });
    const factor = parseDecimal('percent', percent).div(100).plus(1);
    const currency = securityAt(index).currency;
    const price = this.priceOf(index).mul(factor).toDecimalPlaces(minorUnits(currency), Decimal.ROUND_HALF_UP);
    if (price.lte(0)) throw new SandboxInputError('percent', `a move of ${percent}% would leave no positive price`);
    this.movedPrices.set(index, new Quote(price.toFixed(minorUnits(currency))));
    this.emit({ kind: 'prices_changed', securityIndex: index, changeSeq: this.bump() });
  }

  /** The security's current price, as a decimal string. */
  price(security: number | string): string {
    const index = this.resolveSecurity(typeof security === 'number' ? { securityIndex: security } : { ticker: security });
    return this.quote(index).text;
  }

  cancelTransaction(accountId: string, transactionId: string): SandboxTransaction {
    const { state, index, transaction } = this.existingTransaction(accountId, transactionId);
    if (transaction.status === 'CANCELLED') throw new SandboxInputError('transactionId', `transaction ${transactionId} is already cancelled`, 409);
    return this.replaceTransaction(state, index, { ...transaction, status: 'CANCELLED' });
  }

  amendTransaction(accountId: string, transactionId: string, changes: TransactionChanges): SandboxTransaction {
    const { state, index, transaction } = this.existingTransaction(accountId, transactionId);
    const quantity = changes.quantity === undefined ? transaction.quantity : parseDecimal('quantity', changes.quantity).toFixed();
    const price = changes.price === undefined ? transaction.price : parseDecimal('price', changes.price).toFixed();
    if ((changes.quantity !== undefined || changes.price !== undefined) && transaction.security === undefined) {
      throw new SandboxInputError(changes.quantity !== undefined ? 'quantity' : 'price', `transaction ${transactionId} is a ${transaction.type} and has no quantity or price`);
    }
    let amount = transaction.amount;
    if (changes.amount !== undefined) amount = money(parseDecimal('amount', changes.amount), transaction.currency);
    else if ((changes.quantity !== undefined || changes.price !== undefined) && quantity !== undefined && price !== undefined) {
      const gross = new Dec(quantity).mul(price);
      amount = money(transaction.type === 'BUY' ? gross.neg() : gross, transaction.currency);
    }
    if (changes.settleDate !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(changes.settleDate)) throw new SandboxInputError('settleDate', 'settleDate must be a date written YYYY-MM-DD');
    return this.replaceTransaction(state, index, {
      ...transaction,
      ...(quantity === undefined ? {} : { quantity }),
      ...(price === undefined ? {} : { price }),
      amount,
      settleDate: changes.settleDate ?? transaction.settleDate,
      description: changes.description ?? transaction.description,
      status: changes.status ?? transaction.status,
    });
  }

  /** A new generated transaction at the end of the account (highest seq), traded on the world's date. */
  insertTransaction(accountId: string): SandboxTransaction {
    const state = this.state(accountId);
    const index = state.baseTransactions + state.insertedTransactions;
    const transaction = { ...this.generateTransaction(state, index), modifiedSeq: this.bump() };
    return this.appendTransaction(state, index, transaction);
  }

  /** A new generated holding at the end of the account (highest seq), in a security it does not hold yet. */
  insertHolding(accountId: string): SandboxHolding {
    const state = this.state(accountId);
    const index = state.baseHoldings + state.insertedHoldings;
    let securityIndex = naturalSecurity(state, index);
    while (this.holdingIndexOfSecurity(state, securityIndex) !== undefined) securityIndex = securityIndex < KNOWN_SECURITIES ? index + KNOWN_SECURITIES : securityIndex + 1;
    state.insertedHoldings++;
    if (securityIndex !== naturalSecurity(state, index)) {
      const draws = new Draws(state.key ^ 0x1d5, index);
      const price = this.priceOf(securityIndex);
      const security = securityAt(securityIndex);
      const quantity = new Dec(plainText(generatedQuantity(security, draws)));
      const costBasis = quantity.mul(price).mul(550 + draws.below(800)).div(1000).toDecimalPlaces(minorUnits(security.currency), Decimal.ROUND_HALF_UP);
      state.holdingOverrides.set(index, { securityIndex, quantity, costBasis });
      state.explicitHoldingOf.set(securityIndex, index);
    }
    const holding = this.holdingAt(state, index);
    this.emit({ kind: 'holding_changed', accountId, holdingId: holding.id, changeSeq: this.bump() });
    return holding;
  }

  recordPush(push: { platform: string; accountId: string; body: unknown; reference: string }): void {
    this.pushLog.push({ ...push, receivedAt: new Date().toISOString() });
  }

  pushes(): readonly SandboxPush[] {
    return this.pushLog;
  }

  /** The global modification counter: every mutation raises it; incremental cursors compare against it. */
  changeSeq(): number {
    return this.sequence;
  }

  /** Called after every change (webhooks listen here); returns the unsubscribe function. */
  onChange(listener: (change: WorldChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The universe's security with this ticker or index. */
  security(selector: SecuritySelector): SandboxSecurity {
    return securityAt(this.resolveSecurity(selector));
  }

  // ---- internals ----

  private state(accountId: string): AccountState {
    const state = this.states.get(accountId);
    if (state === undefined) throw new SandboxInputError('accountId', `no account ${accountId}`, 404);
    return state;
  }

  private bump(): number {
    return ++this.sequence;
  }

  private emit(change: WorldChange): void {
    for (const listener of this.listeners) listener(change);
  }

  private priceOf(securityIndex: number): Decimal {
    return this.quote(securityIndex).value;
  }

  /** The current price and its text (the text is what most readers need, so it is kept too). */
  private quote(securityIndex: number): Quote {
    return this.movedPrices.get(securityIndex) ?? this.baseQuote(securityIndex);
  }

  /** The price before any move: generated cost bases hang off it, so a price move leaves them alone. */
  private baseQuote(securityIndex: number): Quote {
    const slot = securityIndex % PRICE_CACHE_SIZE;
    if (this.quoteCacheIndex[slot] === securityIndex) return this.quoteCache[slot]!;
    const quote = new Quote(basePriceText(securityAt(securityIndex), this.seedKey));
    this.quoteCacheIndex[slot] = securityIndex;
    this.quoteCache[slot] = quote;
    return quote;
  }

  private resolveSecurity(selector: SecuritySelector | TradeInput): number {
    if ('ticker' in selector && selector.ticker !== undefined) {
      const index = securityIndexOfTicker(selector.ticker);
      if (index === undefined) throw new SandboxInputError('ticker', `no security with ticker ${selector.ticker}`, 404);
      return index;
    }
    const index = 'securityIndex' in selector ? selector.securityIndex : undefined;
    if (index === undefined) throw new SandboxInputError('ticker', 'ticker or securityIndex is required');
    if (!Number.isInteger(index) || index < 0 || index > MAX_SECURITY_INDEX) throw new SandboxInputError('securityIndex', `securityIndex must be an integer in 0..${MAX_SECURITY_INDEX}`);
    return index;
  }

  private holdingAt(state: AccountState, index: number): SandboxHolding {
    const override = state.holdingOverrides.get(index);
    const securityIndex = override?.securityIndex ?? naturalSecurity(state, index);
    const flaw = state.holdingFlaws.get(index);
    const security = flaw ? { ...securityAt(securityIndex), ...flaw } : securityAt(securityIndex);
    const places = minorUnits(securityAt(securityIndex).currency);
    const currency = security.currency;
    const quote = this.quote(securityIndex);
    let quantity: string;
    let marketValue: string;
    let costBasis: string;
    if (override === undefined) {
      // The cost basis hangs off the price before any move, so a price move leaves it alone.
      const draws = new Draws(state.key, index);
      const generated = generatedQuantity(security, draws);
      const costFactor = 550 + draws.below(800);
      const base = this.baseQuote(securityIndex);
      const value = generated.units * quote.units;
      const cost = generated.units * base.units * costFactor;
      quantity = plainText(generated);
      if (Number.isSafeInteger(value) && Number.isSafeInteger(cost)) {
        marketValue = fixedText(roundHalfUp(value, generated.scale), places);
        costBasis = fixedText(roundHalfUp(cost, generated.scale + 3), places);
      } else {
        // Only a price moved far up leaves the exact integers: the same arithmetic in Decimal.
        const exact = new Dec(quantity);
        marketValue = exact.mul(quote.value).toFixed(places, Decimal.ROUND_HALF_UP);
        costBasis = exact.mul(base.value).mul(costFactor).div(1000).toFixed(places, Decimal.ROUND_HALF_UP);
      }
    } else {
      quantity = override.quantity.toFixed();
      marketValue = override.quantity.mul(quote.value).toFixed(places, Decimal.ROUND_HALF_UP);
      costBasis = override.costBasis.toFixed(places, Decimal.ROUND_HALF_UP);
    }
    return {
      id: `${state.account.id}-H${index + 1}`,
      accountId: state.account.id,
      security,
      quantity,
      price: quote.text,
      marketValue,
      costBasis,
      currency,
      asOf: this.asOf,
      seq: index + 1,
    };
  }

  private holdingIndexOfSecurity(state: AccountState, securityIndex: number): number | undefined {
    const explicit = state.explicitHoldingOf.get(securityIndex);
    if (explicit !== undefined) return explicit;
    const index = securityIndex < KNOWN_SECURITIES ? (securityIndex - state.rotation + KNOWN_SECURITIES) % KNOWN_SECURITIES : securityIndex;
    if (index >= state.baseHoldings + state.insertedHoldings || isIn(state.deletedHoldings, index)) return undefined;
    const placed = state.holdingOverrides.get(index)?.securityIndex;
    return placed === undefined || placed === securityIndex ? index : undefined;
  }

  private trade(accountId: string, side: 'BUY' | 'SELL', input: TradeInput): SandboxTransaction {
    const state = this.state(accountId);
    if (state.account.status === 'closed') throw new SandboxInputError('accountId', `account ${accountId} is closed`, 409);
    const securityIndex = this.resolveSecurity(input);
    const security = securityAt(securityIndex);
    const quantity = parseDecimal('quantity', input.quantity);
    const price = parseDecimal('price', input.price);
    if (quantity.lte(0)) throw new SandboxInputError('quantity', 'quantity must be greater than zero');
    if (price.lte(0)) throw new SandboxInputError('price', 'price must be greater than zero');
    const currency = security.currency;
    const gross = quantity.mul(price);
    const holdingIndex = this.holdingIndexOfSecurity(state, securityIndex);
    if (side === 'BUY') {
      if (holdingIndex === undefined) {
        const index = state.baseHoldings + state.insertedHoldings;
        state.insertedHoldings++;
        state.holdingOverrides.set(index, { securityIndex, quantity, costBasis: gross });
        state.explicitHoldingOf.set(securityIndex, index);
      } else {
        const held = this.holdingAt(state, holdingIndex);
        state.holdingOverrides.set(holdingIndex, {
          ...(state.explicitHoldingOf.has(securityIndex) ? { securityIndex } : {}),
          quantity: new Dec(held.quantity).plus(quantity),
          costBasis: new Dec(held.costBasis).plus(gross),
        });
      }
    } else {
      const held = holdingIndex === undefined ? undefined : this.holdingAt(state, holdingIndex);
      if (held === undefined || holdingIndex === undefined) throw new SandboxInputError('ticker', `account ${accountId} holds no ${security.ticker}`, 409);
      const heldQuantity = new Dec(held.quantity);
      if (quantity.gt(heldQuantity)) throw new SandboxInputError('quantity', `cannot sell ${quantity.toFixed()} ${security.ticker}: the account holds ${held.quantity}`, 409);
      const left = heldQuantity.minus(quantity);
      if (left.isZero()) {
        state.holdingOverrides.delete(holdingIndex);
        state.explicitHoldingOf.delete(securityIndex);
        state.deletedHoldings.splice(lowerBound(state.deletedHoldings, holdingIndex), 0, holdingIndex);
      } else {
        state.holdingOverrides.set(holdingIndex, {
          ...(state.explicitHoldingOf.has(securityIndex) ? { securityIndex } : {}),
          quantity: left,
          costBasis: new Dec(held.costBasis).mul(left).div(heldQuantity),
        });
      }
    }
    const index = state.baseTransactions + state.insertedTransactions;
    const changeSeq = this.bump();
    const holdingId = `${accountId}-H${(holdingIndex ?? state.baseHoldings + state.insertedHoldings - 1) + 1}`;
    this.emit({ kind: 'holding_changed', accountId, holdingId, changeSeq });
    return this.appendTransaction(state, index, {
      id: `${accountId}-T${index + 1}`,
      accountId,
      type: side,
      status: 'COMPLETED',
      tradeDate: this.asOf,
      settleDate: dateText(addBusinessDays(this.asOfDay, 2)),
      security,
      quantity: quantity.toFixed(),
      price: price.toFixed(),
      amount: money(side === 'BUY' ? gross.neg() : gross, currency),
      currency,
      description: `${side === 'BUY' ? 'Bought' : 'Sold'} ${quantity.toFixed()} ${security.ticker} @ ${price.toFixed()}`,
      seq: index + 1,
      modifiedSeq: changeSeq,
    });
  }

  private appendTransaction(state: AccountState, index: number, transaction: SandboxTransaction): SandboxTransaction {
    state.insertedTransactions++;
    state.transactionOverrides.set(index, transaction);
    state.modifiedTransactions.push(index);
    this.emit({ kind: 'transaction_created', accountId: state.account.id, transactionId: transaction.id, changeSeq: transaction.modifiedSeq });
    return transaction;
  }

  private existingTransaction(accountId: string, transactionId: string): { state: AccountState; index: number; transaction: SandboxTransaction } {
    const state = this.state(accountId);
    const index = transactionIndexOfId(accountId, transactionId);
    if (index < 0 || index >= state.baseTransactions + state.insertedTransactions) throw new SandboxInputError('transactionId', `account ${accountId} has no transaction ${transactionId}`, 404);
    return { state, index, transaction: this.transactionAt(state, index) };
  }

  private replaceTransaction(state: AccountState, index: number, transaction: SandboxTransaction): SandboxTransaction {
    const changed = { ...transaction, modifiedSeq: this.bump() };
    if (!isIn(state.modifiedTransactions, index)) state.modifiedTransactions.splice(lowerBound(state.modifiedTransactions, index), 0, index);
    state.transactionOverrides.set(index, changed);
    this.emit({ kind: 'transaction_modified', accountId: state.account.id, transactionId: changed.id, changeSeq: changed.modifiedSeq });
    return changed;
  }

  private transactionAt(state: AccountState, index: number): SandboxTransaction {
    return state.transactionOverrides.get(index) ?? this.generateTransaction(state, index);
  }

  /** Trade dates never decrease with the index, so a date range is an index range. */
  private tradeDay(state: AccountState, index: number): number {
    if (index >= state.baseTransactions) return this.asOfDay;
    const span = this.asOfDay - state.openedDay;
    return businessDayOnOrBefore(state.openedDay + Math.floor((index * span) / state.baseTransactions));
  }

  private transactionRange(state: AccountState, filter: TransactionFilter): { lo: number; hi: number } {
    const total = state.baseTransactions + state.insertedTransactions;
    let lo = filter.from === undefined ? 0 : this.firstIndexAfterDay(state, dayOf(filter.from) - 1, total);
    const hi = filter.to === undefined ? total : this.firstIndexAfterDay(state, dayOf(filter.to), total);
    if (filter.afterId !== undefined) lo = Math.max(lo, cursorIndex('afterId', transactionIndexOfId(state.account.id, filter.afterId)) + 1);
    return { lo, hi };
  }

  private firstIndexAfterDay(state: AccountState, day: number, total: number): number {
    let lo = 0;
    let hi = total;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.tradeDay(state, mid) <= day) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private generateTransaction(state: AccountState, index: number): SandboxTransaction {
    const draws = new Draws(state.key ^ 0x7a3c, index);
    const accountId = state.account.id;
    const day = this.tradeDay(state, index);
    const roll = draws.below(100);
    const type: SandboxTransactionType =
      state.baseHoldings === 0
        ? roll < 40 ? 'INTEREST' : roll < 75 ? 'FEE' : 'TRANSFER'
        : roll < 38 ? 'BUY' : roll < 55 ? 'SELL' : roll < 77 ? 'DIVIDEND' : roll < 85 ? 'INTEREST' : roll < 95 ? 'FEE' : 'TRANSFER';
    const statusRoll = draws.below(1000);
    const status: SandboxTransactionStatus = day >= this.asOfDay - 2 ? 'PENDING' : statusRoll < 4 ? 'FAILED' : 'COMPLETED';
    const id = `${accountId}-T${index + 1}`;
    const tradeDate = dateText(day);
    const seq = index + 1;
    const modifiedSeq = state.createdSeq;
    // Literals written out in full: object spread is several times slower on this hot path.
    if (type === 'BUY' || type === 'SELL' || type === 'DIVIDEND') {
      const security = securityAt(naturalSecurity(state, draws.below(Math.min(state.baseHoldings, TRADED_HOLDINGS))));
      const currency = security.currency;
      if (type === 'DIVIDEND') {
        const amount = cashAmount(draws.between(100, 500_000), currency);
        return { id, accountId, type, status, tradeDate, settleDate: tradeDate, security, amount, currency, description: `Dividend ${security.ticker}`, seq, modifiedSeq };
      }
      const places = minorUnits(currency);
      const quantity = generatedQuantity(security, draws);
      // Base prices are small integers of minor units and quantities at most 5,000,000 thousandths, so every product here is exact.
      const price = roundHalfUp(this.baseQuote(security.index).units * (700 + draws.below(450)), 3);
      const quantityText = plainText(quantity);
      const priceText = fixedText(price, places);
      const gross = fixedText(roundHalfUp(quantity.units * price, quantity.scale), places);
      return {
        id,
        accountId,
        type,
        status,
        tradeDate,
        settleDate: dateText(addBusinessDays(day, 2)),
        security,
        quantity: quantityText,
        price: priceText,
        amount: type === 'BUY' ? `-${gross}` : gross,
        currency,
        description: `${type === 'BUY' ? 'Bought' : 'Sold'} ${quantityText} ${security.ticker} @ ${priceText}`,
        seq,
        modifiedSeq,
      };
    }
    const currency = state.account.currency;
    let amount: string;
    let description: string;
    if (type === 'INTEREST') {
      amount = cashAmount(draws.between(50, 50_000), currency);
      description = 'Interest on cash balance';
    } else if (type === 'FEE') {
      amount = `-${cashAmount(draws.between(500, 250_000), currency)}`;
      description = draws.pick(FEE_DESCRIPTIONS);
    } else {
      const inbound = draws.below(3) > 0;
      amount = `${inbound ? '' : '-'}${cashAmount(draws.between(100_000, 25_000_000), currency)}`;
      description = inbound ? 'Contribution' : 'Withdrawal';
    }
    return { id, accountId, type, status, tradeDate, settleDate: tradeDate, amount, currency, description, seq, modifiedSeq };
  }

  private endingValue(state: AccountState): Decimal {
    const cached = this.valueCache.get(state.account.id);
    if (cached?.changeSeq === this.sequence) return cached.value;
    let value = new Dec(0);
    for (const holding of this.holdings(state.account.id)) value = value.plus(convert(new Dec(holding.marketValue), holding.currency, state.account.currency));
    value = value.toDecimalPlaces(minorUnits(state.account.currency), Decimal.ROUND_HALF_UP);
    this.valueCache.set(state.account.id, { changeSeq: this.sequence, value });
    return value;
  }

  private analytics(accountId: string) {
    const state = this.state(accountId);
    return accountAnalytics({
      accountId,
      currency: state.account.currency,
      key: state.key,
      seed: this.seed,
      openedDay: state.openedDay,
      asOfDay: this.asOfDay,
      endingValue: this.endingValue(state),
    });
  }
}

/** Holding i of an account: the well-known securities first (rotated per account), then the generated ones. */
function naturalSecurity(state: AccountState, index: number): number {
  return index < KNOWN_SECURITIES ? (state.rotation + index) % KNOWN_SECURITIES : index;
}

const FEE_DESCRIPTIONS = ['Advisory fee', 'Custody fee', 'Management fee'];

/** A non-negative number as an integer count of 10^-scale: generated values are computed in exact integers, not Decimals. */
interface Scaled {
  readonly units: number;
  readonly scale: 0 | 3;
}

const POWERS_OF_TEN = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000];

/** A non-negative safe integer divided by 10^digits, rounded half up (as Decimal's ROUND_HALF_UP). */
function roundHalfUp(units: number, digits: number): number {
  if (digits === 0) return units;
  const divisor = POWERS_OF_TEN[digits]!;
  const shifted = units + divisor / 2;
  return (shifted - (shifted % divisor)) / divisor;
}

/** Minor units as text with exactly `places` decimals. */
function fixedText(units: number, places: number): string {
  if (places === 0) return String(units);
  const digits = String(units).padStart(places + 1, '0');
  return `${digits.slice(0, -places)}.${digits.slice(-places)}`;
}

/** As Decimal writes a value: no trailing zeros after the point. */
function plainText(value: Scaled): string {
  if (value.scale === 0 || value.units % 1000 === 0) return String(value.units / POWERS_OF_TEN[value.scale]!);
  return fixedText(value.units, 3).replace(/0+$/, '');
}

/** A generated cash amount from a count of minor units (whole yen, which has none). */
function cashAmount(cents: number, currency: string): string {
  if (minorUnits(currency) === 0) return String(cents);
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

function generatedQuantity(security: SandboxSecurity, draws: Draws): Scaled {
  switch (security.securityType) {
    case 'mutual_fund':
      return { units: draws.between(1_000, 5_000_000), scale: 3 };
    case 'bond':
      return { units: draws.between(1, 250), scale: 0 };
    case 'cd':
      return { units: draws.between(5, 100) * 1000, scale: 0 };
    default:
      return { units: draws.between(1, 10 ** draws.between(1, 3)), scale: 0 };
  }
}

function checkCount(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new SandboxInputError(field, `${field} must be an integer in 0..${max}`);
}

function holdingIndexOfId(accountId: string, id: string): number {
  return indexOfId(accountId, id, 'H');
}

function transactionIndexOfId(accountId: string, id: string): number {
  return indexOfId(accountId, id, 'T');
}

/** Record ids are `<account>-H<seq>` / `<account>-T<seq>`; anything else is -1 (not found). */
function indexOfId(accountId: string, id: string, letter: 'H' | 'T'): number {
  const prefix = `${accountId}-${letter}`;
  if (!id.startsWith(prefix)) return -1;
  const digits = id.slice(prefix.length);
  return /^[1-9][0-9]{0,8}$/.test(digits) ? Number(digits) - 1 : -1;
}

function cursorIndex(field: string, index: number): number {
  if (index < 0) throw new SandboxInputError(field, `${field} does not name a record of this account`);
  return index;
}

function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function isIn(sorted: readonly number[], value: number): boolean {
  return sorted[lowerBound(sorted, value)] === value;
}
