import { Decimal } from 'decimal.js';
import { Dec } from '../../../domain/money/decimal.ts';
import { minorUnits } from '../../../domain/money/minor-units.ts';
import type { AssetClass, SecurityType } from '../../../domain/platforms/records.ts';
import { cusipCheckDigit, isinCheckDigit, isinFromCusip } from '../../../domain/securities/identifiers.ts';
import { Draws, mix } from './deterministic.ts';
import type { SandboxSecurity } from './types.ts';

/**
 * The security universe, one security per index: well-known names first, then generated ones
 * with plausible tickers and names. CUSIPs and ISINs are synthetic but carry correct check
 * digits; a security's identity does not depend on the world's seed (its price does).
 */

interface Known {
  readonly ticker: string;
  readonly name: string;
  readonly securityType: SecurityType;
  readonly assetClass: AssetClass;
  readonly currency: string;
  /** A typical price, in the security's currency. */
  readonly price: string;
}

const stock = (ticker: string, name: string, price: string, currency = 'USD'): Known => ({ ticker, name, securityType: 'stock', assetClass: 'equity', currency, price });
const etf = (ticker: string, name: string, price: string, assetClass: AssetClass = 'equity'): Known => ({ ticker, name, securityType: 'etf', assetClass, currency: 'USD', price });
const fund = (ticker: string, name: string, price: string, assetClass: AssetClass = 'equity'): Known => ({ ticker, name, securityType: 'mutual_fund', assetClass, currency: 'USD', price });

const KNOWN: readonly Known[] = [
  stock('AAPL', 'Apple Inc.', '189.84'), stock('MSFT', 'Microsoft Corporation', '415.50'), stock('AMZN', 'Amazon.com, Inc.', '178.25'),
  stock('GOOGL', 'Alphabet Inc. Class A', '171.90'), stock('META', 'Meta Platforms, Inc.', '492.60'), stock('NVDA', 'NVIDIA Corporation', '121.40'),
  stock('BRK.B', 'Berkshire Hathaway Inc. Class B', '412.30'), stock('JPM', 'JPMorgan Chase & Co.', '198.70'), stock('JNJ', 'Johnson & Johnson', '147.10'),
  stock('V', 'Visa Inc. Class A', '274.80'), stock('PG', 'The Procter & Gamble Company', '165.20'), stock('XOM', 'Exxon Mobil Corporation', '113.90'),
  stock('UNH', 'UnitedHealth Group Incorporated', '495.30'), stock('HD', 'The Home Depot, Inc.', '342.10'), stock('KO', 'The Coca-Cola Company', '62.70'),
  stock('PEP', 'PepsiCo, Inc.', '168.40'), stock('COST', 'Costco Wholesale Corporation', '845.20'), stock('WMT', 'Walmart Inc.', '67.90'),
  stock('DIS', 'The Walt Disney Company', '101.30'), stock('CSCO', 'Cisco Systems, Inc.', '47.20'), stock('INTC', 'Intel Corporation', '30.80'),
  stock('ORCL', 'Oracle Corporation', '125.60'), stock('CVX', 'Chevron Corporation', '158.40'), stock('MRK', 'Merck & Co., Inc.', '128.90'),
  stock('ABBV', 'AbbVie Inc.', '168.30'), stock('PFE', 'Pfizer Inc.', '28.10'), stock('BAC', 'Bank of America Corporation', '39.80'),
  stock('MA', 'Mastercard Incorporated Class A', '451.20'), stock('TSLA', 'Tesla, Inc.', '182.60'), stock('NFLX', 'Netflix, Inc.', '640.30'),
  stock('ADBE', 'Adobe Inc.', '478.10'), stock('CRM', 'Salesforce, Inc.', '262.40'), stock('MCD', "McDonald's Corporation", '259.70'),
  stock('NKE', 'NIKE, Inc. Class B', '94.30'), stock('IBM', 'International Business Machines Corporation', '169.20'), stock('T', 'AT&T Inc.', '17.60'),
  stock('VZ', 'Verizon Communications Inc.', '40.10'), stock('GS', 'The Goldman Sachs Group, Inc.', '455.80'), stock('CAT', 'Caterpillar Inc.', '338.50'),
  stock('BA', 'The Boeing Company', '178.90'),
  etf('SPY', 'SPDR S&P 500 ETF Trust', '527.40'), etf('IVV', 'iShares Core S&P 500 ETF', '530.10'), etf('VOO', 'Vanguard S&P 500 ETF', '484.90'),
  etf('VTI', 'Vanguard Total Stock Market ETF', '259.30'), etf('QQQ', 'Invesco QQQ Trust, Series 1', '450.70'), etf('IWM', 'iShares Russell 2000 ETF', '205.20'),
  etf('EFA', 'iShares MSCI EAFE ETF', '79.80'), etf('VEA', 'Vanguard FTSE Developed Markets ETF', '50.30'), etf('VWO', 'Vanguard FTSE Emerging Markets ETF', '43.10'),
  etf('AGG', 'iShares Core U.S. Aggregate Bond ETF', '97.60', 'fixed_income'), etf('BND', 'Vanguard Total Bond Market ETF', '71.90', 'fixed_income'),
  etf('TLT', 'iShares 20+ Year Treasury Bond ETF', '91.20', 'fixed_income'), etf('LQD', 'iShares iBoxx $ Investment Grade Corporate Bond ETF', '107.40', 'fixed_income'),
  etf('GLD', 'SPDR Gold Shares', '215.30', 'commodity'), etf('VNQ', 'Vanguard Real Estate ETF', '84.60', 'real_estate'),
  fund('VFIAX', 'Vanguard 500 Index Fund Admiral Shares', '487.15'), fund('VTSAX', 'Vanguard Total Stock Market Index Fund Admiral Shares', '129.44'),
  fund('FXAIX', 'Fidelity 500 Index Fund', '186.02'), fund('VBTLX', 'Vanguard Total Bond Market Index Fund Admiral Shares', '9.58', 'fixed_income'),
  fund('VWELX', 'Vanguard Wellington Fund Investor Shares', '43.27', 'multi_asset'), fund('SPAXX', 'Fidelity Government Money Market Fund', '1.00', 'cash'),
  fund('VMFXX', 'Vanguard Federal Money Market Fund', '1.00', 'cash'),
  stock('SHOP', 'Shopify Inc.', '98.40', 'CAD'), stock('RY', 'Royal Bank of Canada', '139.20', 'CAD'), stock('ENB', 'Enbridge Inc.', '49.80', 'CAD'),
  stock('SAP', 'SAP SE', '171.60', 'EUR'), stock('ASML', 'ASML Holding N.V.', '868.30', 'EUR'), stock('MC', 'LVMH Moët Hennessy Louis Vuitton SE', '742.50', 'EUR'),
  stock('HSBA', 'HSBC Holdings plc', '6.85', 'GBP'), stock('SHEL', 'Shell plc', '27.95', 'GBP'), stock('AZN', 'AstraZeneca PLC', '120.40', 'GBP'),
  stock('NESN', 'Nestlé S.A.', '94.12', 'CHF'), stock('NOVN', 'Novartis AG', '92.30', 'CHF'), stock('ROG', 'Roche Holding AG', '238.60', 'CHF'),
  stock('7203', 'Toyota Motor Corporation', '3125', 'JPY'), stock('6758', 'Sony Group Corporation', '12850', 'JPY'),
];

/** How many well-known securities lead the universe; every account draws from these first. */
export const KNOWN_SECURITIES = KNOWN.length;

const knownIndexByTicker = new Map(KNOWN.map((known, index) => [known.ticker, index]));

const COUNTRY_BY_CURRENCY: Readonly<Record<string, readonly string[]>> = {
  USD: ['US'], CAD: ['CA'], EUR: ['DE', 'FR', 'NL'], GBP: ['GB'], CHF: ['CH'], JPY: ['JP'],
};
/** CINS numbers (CUSIPs of issuers outside North America) start with a letter for the country. */
const CINS_LETTER: Readonly<Record<string, string>> = { DE: 'D', FR: 'F', NL: 'N', GB: 'G', CH: 'H', JP: 'J', CA: 'C' };

const BASE36 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function base(value: number, digits: number, alphabet: string): string {
  let text = '';
  let rest = value;
  for (let i = 0; i < digits; i++) {
    text = alphabet[rest % alphabet.length]! + text;
    rest = Math.floor(rest / alphabet.length);
  }
  return text;
}

/**
 * A bijection on [0, modulus): index·multiplier + offset, the multiplier coprime with the modulus.
 * Every product here stays far below 2^53, so plain integer arithmetic is exact.
 */
function scramble(value: number, multiplier: number, offset: number, modulus: number): number {
  return (value * multiplier + offset) % modulus;
}

function modularInverse(value: number, modulus: number): number {
  let [oldR, r] = [BigInt(value), BigInt(modulus)];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return Number(((oldS % BigInt(modulus)) + BigInt(modulus)) % BigInt(modulus));
}

const FOUR = 26 ** 4;
const FIVE = 26 ** 5;
const TICKER_MULTIPLIER = 7_919;
const TICKER_OFFSET = 12_345;
const TICKER_INVERSE_4 = modularInverse(TICKER_MULTIPLIER, FOUR);
const TICKER_INVERSE_5 = modularInverse(TICKER_MULTIPLIER, FIVE);
/** A generated ticker that happens to spell a well-known one gets this suffix, so tickers stay unique. */
const CLASH_SUFFIX = '.Z';

/** The largest security index the universe can name (about twelve million). */
export const MAX_SECURITY_INDEX = KNOWN_SECURITIES + FOUR + FIVE - 1;

function generatedTicker(index: number): string {
  const k = index - KNOWN_SECURITIES;
  const letters = k < FOUR ? base(scramble(k, TICKER_MULTIPLIER, TICKER_OFFSET, FOUR), 4, LETTERS) : base(scramble(k - FOUR, TICKER_MULTIPLIER, TICKER_OFFSET, FIVE), 5, LETTERS);
  return knownIndexByTicker.has(letters) ? letters + CLASH_SUFFIX : letters;
}

function lettersValue(letters: string): number {
  let value = 0;
  for (const char of letters) value = value * 26 + (char.charCodeAt(0) - 65);
  return value;
}

/** The index of the security with this ticker, or undefined when the universe has none. */
export function securityIndexOfTicker(ticker: string): number | undefined {
  const known = knownIndexByTicker.get(ticker);
  if (known !== undefined) return known;
  const clash = ticker.endsWith(CLASH_SUFFIX);
  const letters = clash ? ticker.slice(0, -CLASH_SUFFIX.length) : ticker;
  if (!/^[A-Z]{4,5}$/.test(letters) || clash !== knownIndexByTicker.has(letters)) return undefined;
  const value = lettersValue(letters);
  const k =
    letters.length === 4
      ? scramble((value - TICKER_OFFSET + FOUR) % FOUR, TICKER_INVERSE_4, 0, FOUR)
      : FOUR + scramble((value - (TICKER_OFFSET % FIVE) + FIVE) % FIVE, TICKER_INVERSE_5, 0, FIVE);
  return KNOWN_SECURITIES + k;
}

const NAME_FIRST = ['Northwind', 'Summit', 'Harbor', 'Crestline', 'Bluewater', 'Granite', 'Silverline', 'Redwood', 'Ironbridge', 'Meridian', 'Lakeshore', 'Evergreen', 'Copperfield', 'Falcon', 'Beacon', 'Aurora', 'Keystone', 'Pinnacle', 'Westbrook', 'Oakmont', 'Sterling', 'Cascade', 'Horizon', 'Mariner'];
const NAME_SECOND = ['Dynamics', 'Holdings', 'Technologies', 'Energy', 'Pharmaceuticals', 'Financial', 'Industries', 'Logistics', 'Foods', 'Materials', 'Semiconductor', 'Health', 'Retail', 'Networks', 'Utilities', 'Aerospace', 'Software', 'Minerals'];
const FUND_STYLE = ['Growth', 'Value', 'Dividend', 'Global Equity', 'Small Cap', 'Balanced', 'Income', 'International', 'Total Market', 'Core Bond'];
const STOCK_SUFFIX: Readonly<Record<string, readonly string[]>> = {
  US: ['Inc.', 'Corporation', 'Co.', 'Group, Inc.'], CA: ['Inc.', 'Ltd.'], DE: ['AG', 'SE'], FR: ['SA', 'SE'], NL: ['N.V.'], GB: ['plc', 'PLC'], CH: ['AG', 'SA'], JP: ['Corporation', 'Co., Ltd.'],
};

/** Per-index identity of a generated security: type, currency, country and the number behind its CUSIP. */
function generated(index: number): SandboxSecurity {
  const draws = new Draws(0x5ec0_71e5, index);
  const typeRoll = draws.below(100);
  const securityType: SecurityType = typeRoll < 62 ? 'stock' : typeRoll < 76 ? 'etf' : typeRoll < 86 ? 'mutual_fund' : typeRoll < 97 ? 'bond' : 'cd';
  const currencyRoll = draws.below(100);
  const currency =
    securityType === 'stock' || securityType === 'bond'
      ? currencyRoll < 76 ? 'USD' : currencyRoll < 84 ? 'EUR' : currencyRoll < 89 ? 'GBP' : currencyRoll < 94 ? 'CAD' : currencyRoll < 97 ? 'CHF' : 'JPY'
      : 'USD';
  const country = draws.pick(COUNTRY_BY_CURRENCY[currency]!);
  const issuer = `${draws.pick(NAME_FIRST)} ${draws.pick(NAME_SECOND)}`;
  const year = 2026 + draws.below(12);
  const coupon = (2 + draws.below(500) / 100).toFixed(3).replace(/0$/, '');
  const name =
    securityType === 'stock' ? `${issuer} ${draws.pick(STOCK_SUFFIX[country]!)}`
    : securityType === 'etf' ? `${issuer.split(' ')[0]} ${draws.pick(FUND_STYLE)} ETF`
    : securityType === 'mutual_fund' ? `${issuer.split(' ')[0]} ${draws.pick(FUND_STYLE)} Fund Class ${draws.pick(['A', 'I', 'R6', 'Admiral'])}`
    : securityType === 'bond' ? `${issuer} ${coupon}% ${year}`
    : `${issuer.split(' ')[0]} Bank CD ${coupon}% ${year}`;
  const assetClass: AssetClass =
    securityType === 'bond' || securityType === 'cd' ? 'fixed_income'
    : securityType === 'stock' ? 'equity'
    : draws.pick<AssetClass>(['equity', 'equity', 'equity', 'fixed_income', 'multi_asset', 'real_estate', 'alternative']);
  const { cusip, isin } = identifiers(index, country, securityType);
  return { index, ticker: generatedTicker(index), name, cusip, isin, currency, assetClass, securityType };
}

function identifiers(index: number, country: string, securityType: SecurityType): { cusip: string; isin: string } {
  // The issuer number is a bijection of the index, so no two securities share a CUSIP.
  const issuerNumber = scramble(index, 1_000_003, 7_654_321, 36 ** 5);
  const issue = securityType === 'stock' || securityType === 'etf' || securityType === 'mutual_fund' ? '10' : base(mix(index, 0xb0d) % 1296, 2, BASE36);
  const first = country === 'US' ? String(mix(index, 0xc05) % 10) : CINS_LETTER[country]!;
  const body = first + base(issuerNumber, 5, BASE36) + issue;
  const cusip = body + cusipCheckDigit(body);
  if (country === 'US' || country === 'CA') return { cusip, isin: isinFromCusip(country, cusip) };
  const isinBody = country + cusip;
  return { cusip, isin: isinBody + isinCheckDigit(isinBody) };
}

// A direct-mapped cache: every security of a 50,000-holding account is generated once, and memory
// stays fixed (tens of megabytes at most) however large the account or the universe.
const CACHE_SIZE = 65_536;
const cache: (SandboxSecurity | undefined)[] = new Array(CACHE_SIZE);

export function securityAt(index: number): SandboxSecurity {
  if (!Number.isInteger(index) || index < 0 || index > MAX_SECURITY_INDEX) throw new RangeError(`security index ${index} is outside 0..${MAX_SECURITY_INDEX}`);
  const slot = index % CACHE_SIZE;
  const cached = cache[slot];
  if (cached?.index === index) return cached;
  const security = index < KNOWN_SECURITIES ? knownSecurity(index) : generated(index);
  cache[slot] = security;
  return security;
}

function knownSecurity(index: number): SandboxSecurity {
  const known = KNOWN[index]!;
  const country = COUNTRY_BY_CURRENCY[known.currency]![0]!;
  const { cusip, isin } = identifiers(index, country, known.securityType);
  return { index, ticker: known.ticker, name: known.name, cusip, isin, currency: known.currency, assetClass: known.assetClass, securityType: known.securityType };
}

/**
 * The security's price in a world, before any price move: a well-known security's typical price
 * varied by ±20%, a generated one's drawn in its range. Decimal text in the currency's minor unit.
 */
export function basePriceText(security: SandboxSecurity, worldKey: number): string {
  const draws = new Draws(worldKey, security.index);
  const places = minorUnits(security.currency);
  if (security.index < KNOWN_SECURITIES) {
    return new Dec(KNOWN[security.index]!.price).mul(800 + draws.below(401)).div(1000).toFixed(places, Decimal.ROUND_HALF_UP);
  }
  // Generated prices are drawn as whole minor units, so no arithmetic is needed to write them.
  switch (security.securityType) {
    case 'bond':
      return minorUnitsText(draws.between(95_000, 105_000), places);
    case 'cd':
      return minorUnitsText(100, places);
    case 'mutual_fund':
      return minorUnitsText(draws.between(800, 18_800), places);
    default:
      return places === 0 ? String(draws.between(500, 20_500)) : minorUnitsText(draws.between(500, 48_500), places);
  }
}

function minorUnitsText(units: number, places: number): string {
  if (places === 0) return String(Math.round(units / 100));
  return `${Math.floor(units / 100)}.${String(units % 100).padStart(2, '0')}`;
}
