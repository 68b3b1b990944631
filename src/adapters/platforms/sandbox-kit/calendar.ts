/** Dates as whole days since 1970-01-01 (UTC), and their YYYY-MM-DD text, cached per day. */

const MS_PER_DAY = 86_400_000;
const texts = new Map<number, string>();

export function dayOf(isoDate: string): number {
  const ms = Date.parse(`${isoDate}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(isoDate) || Number.isNaN(ms)) throw new Error(`"${isoDate}" is not a date written YYYY-MM-DD`);
  return Math.round(ms / MS_PER_DAY);
}

export function dateText(day: number): string {
  let text = texts.get(day);
  if (text === undefined) {
    text = new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
    texts.set(day, text);
  }
  return text;
}

/** 0 = Sunday … 6 = Saturday. */
export function weekday(day: number): number {
  return (day + 4) % 7;
}

/** The day itself, or the Friday before when it falls on a weekend (keeps a sequence non-decreasing). */
export function businessDayOnOrBefore(day: number): number {
  const dow = weekday(day);
  return dow === 6 ? day - 1 : dow === 0 ? day - 2 : day;
}

export function addBusinessDays(day: number, count: number): number {
  let result = day;
  for (let added = 0; added < count; ) {
    result++;
    const dow = weekday(result);
    if (dow !== 0 && dow !== 6) added++;
  }
  return result;
}

export function addMonths(day: number, months: number): number {
  const date = new Date(day * MS_PER_DAY);
  const target = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + months, 1));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(date.getUTCDate(), lastDay));
  return Math.round(target.getTime() / MS_PER_DAY);
}

export function startOfYear(day: number): number {
  const year = new Date(day * MS_PER_DAY).getUTCFullYear();
  return Math.round(Date.UTC(year, 0, 1) / MS_PER_DAY);
}
