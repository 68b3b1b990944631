import type { DataType, Platform } from '../../domain/platforms/records.ts';

/** How often a data type is pulled: every so many minutes, or daily at a UTC time (on one weekday only, if given). */
export type Schedule = { readonly everyMinutes: number } | { readonly dailyAtUtc: string; readonly weekday?: number };

const hours = (n: number): Schedule => ({ everyMinutes: n * 60 });

/**
 * The platforms' schedules (DESIGN.md). Webhook-driven data types keep their fallback interval
 * here; a webhook triggers a sync at once on top of it.
 */
const SCHEDULES: Record<Platform, Partial<Record<DataType, Schedule>>> = {
  black_diamond: { holdings: hours(4), transactions: hours(2), performance: { dailyAtUtc: '20:00' }, accounts: { dailyAtUtc: '06:00' } },
  // Composition every 6 h; positions change by webhook with a 15-minute fallback.
  orion: { accounts: { dailyAtUtc: '06:00' }, holdings: { everyMinutes: 15 }, transactions: hours(6), tax_lots: { dailyAtUtc: '00:00' }, performance: { dailyAtUtc: '21:00' } },
  // Risk daily 22:00, benchmarks 23:00 and attribution Fridays 22:00 come in one analytics pull: daily 22:00.
  addepar: { accounts: { dailyAtUtc: '06:00' }, holdings: hours(4), transactions: hours(2), performance: { dailyAtUtc: '20:00' }, analytics: { dailyAtUtc: '22:00' } },
};

const DEFAULT_SCHEDULE = hours(24);

/** A connection's schedule for a data type: the platform's, unless the connection sets its own frequency. */
export function scheduleOf(platform: Platform, dataType: DataType, syncFrequencyMinutes?: number): Schedule {
  if (syncFrequencyMinutes !== undefined) return { everyMinutes: syncFrequencyMinutes };
  return SCHEDULES[platform][dataType] ?? DEFAULT_SCHEDULE;
}

/** The next time a schedule is due after `from` (epoch ms). */
export function nextRunAfter(schedule: Schedule, from: number): number {
  if ('everyMinutes' in schedule) return from + schedule.everyMinutes * 60_000;
  const [h, m] = schedule.dailyAtUtc.split(':').map(Number) as [number, number];
  const day = new Date(from);
  let next = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), h, m);
  while (next <= from || (schedule.weekday !== undefined && new Date(next).getUTCDay() !== schedule.weekday)) next += 86_400_000;
  return next;
}
