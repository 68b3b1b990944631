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
 * once. Pages, not records, are what is awaited: a record costs no promise of its own.
 *
 * `ahead` pages are kept in flight while the current one is consumed, so the platform is already
 * working on the page after next while this side reads and maps: every request past the next is
 * sent on the guess that the pages before it are full, and when a page comes back short the
 * guesses after it are dropped and the listing goes on from where that page ended.
 */
export async function* offsetPages(fetchPage: PageFetcher, top: number, onFirstPage?: (page: OffsetPage) => void, ahead = 2): AsyncGenerator<readonly unknown[]> {
  const seen = new Set<string>();
  const inFlight: { readonly skip: number; readonly page: Promise<OffsetPage> }[] = [];
  const request = (at: number) => {
    const page = fetchPage(at, top);
    // Consumed on a later turn, or dropped; a consumer that stops early must not leave it unhandled.
    page.catch(() => undefined);
    inFlight.push({ skip: at, page });
  };
  let skip = 0;
  const fill = () => {
    while (inFlight.length < ahead) request(inFlight.length === 0 ? skip : inFlight[inFlight.length - 1]!.skip + top);
  };
  fill();
  for (let first = true; ; first = false) {
    const page = await inFlight.shift()!.page;
    if (first) onFirstPage?.(page);
    if (page.records.length === 0) return;
    skip += Math.min(page.records.length, top);
    if (inFlight.length > 0 && inFlight[0]!.skip !== skip) inFlight.length = 0;
    fill();
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
