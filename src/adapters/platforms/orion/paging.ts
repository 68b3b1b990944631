import { rawRecordId } from './mapping.ts';

/** One page of an Orion listing: the bare array it answered and the answer's headers. */
export interface OffsetPage {
  readonly records: readonly unknown[];
  readonly headers: Headers;
}

export type PageFetcher = (skip: number, top: number) => Promise<OffsetPage>;

/**
 * Walks an Orion listing by `$skip`/`$top` and yields each page's records, each record once.
 *
 * Orion answers bare arrays with no next link and no total, so the end is the first empty page:
 * a short page is not taken as the end, because records inserted while paging land at the end
 * and because the platform may serve fewer than asked. `$skip` advances by what the page held,
 * never by more than `$top` (a page that repeats an earlier record may hold one more). Records
 * are de-duplicated by id across the whole listing, so a record served on two pages is delivered
 * once. The next page is requested while the current one is being consumed. Pages, not records,
 * are what is awaited: a record costs no promise of its own.
 */
export async function* offsetPages(fetchPage: PageFetcher, top: number, onFirstPage?: (page: OffsetPage) => void): AsyncGenerator<readonly unknown[]> {
  const seen = new Set<string>();
  let skip = 0;
  let next = fetchPage(skip, top);
  for (let first = true; ; first = false) {
    const page = await next;
    if (first) onFirstPage?.(page);
    if (page.records.length === 0) return;
    skip += Math.min(page.records.length, top);
    next = fetchPage(skip, top);
    // Consumed on the next turn; a consumer that stops early must not leave it unhandled.
    next.catch(() => undefined);
    const fresh: unknown[] = [];
    for (const raw of page.records) {
      const id = rawRecordId(raw, '');
      if (id !== '') {
        if (seen.has(id)) continue;
        seen.add(id);
      }
      fresh.push(raw);
    }
    yield fresh;
  }
}
