import { z } from 'zod';
import { DomainRuleViolation } from '../domain/decider.ts';
import { canonicalJson } from '../domain/events/hash-chain.ts';
import type { EventMetadata } from '../domain/events/metadata.ts';
import { FX_RATES_STREAM, FxRateEntrySchema, MAX_RATES_PER_EVENT, type FxRateEntry } from '../domain/fx/events.ts';
import { deterministicEventId } from '../domain/ingestion/source-records.ts';
import { Dec } from '../domain/money/decimal.ts';
import type { EventStore, LogCursor } from '../ports/event-store.ts';

export interface RecordedFxRates {
  readonly rates: number;
  /** Events appended; 0 when every chunk had been recorded before (a repeated import). */
  readonly appended: number;
  readonly lastCursor: LogCursor | null;
}

/**
 * Records dated FX rates in the log. Each chunk's event id derives from its content, so importing
 * the same file again appends nothing; a corrected rate for a pair and date is a new recording
 * that replaces the earlier one in the read models.
 */
export async function recordFxRates(
  store: EventStore,
  input: { rates: readonly FxRateEntry[]; source: string },
  metadata?: EventMetadata,
): Promise<RecordedFxRates> {
  const rates = input.rates.map((rate, index) => {
    const parsed = FxRateEntrySchema.safeParse(rate);
    if (!parsed.success) throw new DomainRuleViolation('FX_RATE_INVALID', `rate ${index + 1}: ${z.prettifyError(parsed.error)}`);
    // One spelling per value ("1.10" and "1.1" are the same rate), so a re-import hashes the same.
    return { ...parsed.data, rate: new Dec(parsed.data.rate).toFixed() };
  });
  if (rates.length === 0) throw new DomainRuleViolation('FX_RATES_EMPTY', 'no rates to record');
  let appended = 0;
  let lastCursor: LogCursor | null = null;
  for (let start = 0; start < rates.length; start += MAX_RATES_PER_EVENT) {
    const chunk = rates.slice(start, start + MAX_RATES_PER_EVENT);
    const data = { rates: chunk, source: input.source };
    const id = deterministicEventId('FxRatesRecorded', canonicalJson(data));
    const result = await store.append(FX_RATES_STREAM, [{ id, type: 'FxRatesRecorded', data, metadata }], { expectedVersion: 'any' });
    if (!result.alreadyStored) appended++;
    lastCursor = result.lastCursor;
  }
  return { rates: rates.length, appended, lastCursor };
}

const COLUMN_NAMES = { currency: ['currency', 'base', 'from'], quote: ['quote', 'to'], asOf: ['as_of', 'asof', 'date'], rate: ['rate'] } as const;

/**
 * Reads rates from CSV with a header row naming the columns currency, quote, as_of (or date) and
 * rate, in any order; blank lines are skipped. A faulty line fails the whole import, naming the line.
 */
export function parseFxCsv(text: string): FxRateEntry[] {
  const lines = text.split(/\r?\n/);
  const headerIndex = lines.findIndex((line) => line.trim() !== '');
  if (headerIndex < 0) throw new DomainRuleViolation('FX_CSV_EMPTY', 'the file holds no header and no rates');
  const header = splitCsvLine(lines[headerIndex]!).map((name) => name.toLowerCase());
  const column = (field: keyof typeof COLUMN_NAMES): number => {
    const index = header.findIndex((name) => (COLUMN_NAMES[field] as readonly string[]).includes(name));
    if (index < 0) throw new DomainRuleViolation('FX_CSV_HEADER', `the header needs a column named ${COLUMN_NAMES[field].join(' or ')} (found: ${header.join(', ')})`);
    return index;
  };
  const columns = { currency: column('currency'), quote: column('quote'), asOf: column('asOf'), rate: column('rate') };
  const rates: FxRateEntry[] = [];
  for (let i = headerIndex + 1; i < lines.length; i++) {
    if (lines[i]!.trim() === '') continue;
    const cells = splitCsvLine(lines[i]!);
    const candidate = {
      currency: cells[columns.currency]?.toUpperCase(),
      quote: cells[columns.quote]?.toUpperCase(),
      asOf: cells[columns.asOf],
      rate: cells[columns.rate],
    };
    const parsed = FxRateEntrySchema.safeParse(candidate);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'line'}: ${issue.message}`).join('; ');
      throw new DomainRuleViolation('FX_CSV_LINE', `line ${i + 1}: ${issues}`);
    }
    rates.push(parsed.data);
  }
  if (rates.length === 0) throw new DomainRuleViolation('FX_CSV_EMPTY', 'the file holds a header but no rates');
  return rates;
}

/** Comma-separated cells, each optionally in double quotes (a doubled quote inside is one quote). */
function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cell.trim());
      cell = '';
    } else cell += ch;
  }
  cells.push(cell.trim());
  return cells;
}
