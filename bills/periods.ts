/**
 * Billing periods of recurring bills, all in UTC. Every period boundary comes from periodEnd();
 * prorateFee() prices a partial first period. Pure functions: no clock, no I/O.
 *
 * - Calendar intervals (months, years: P1M, P3M, P1Y) end at 00:00 UTC on the anchor day of the
 *   month (1 by default: calendar months). An anchor past a month's end is that month's last day
 *   (31 -> 30 April, 28 or 29 February), and the next month returns to the anchor.
 * - Fixed intervals (weeks, days, hours, minutes, seconds: P1W, P1D, PT5S) are exact lengths of
 *   time; UTC has no daylight saving, so a day is always 24 hours.
 */
// One module each, not the packages' indexes: every workflow that starts evaluates the modules it
// imports, and the whole date-fns index was a tenth of a bill creation's CPU in the profile.
import { UTCDate } from '@date-fns/utc/date';
import { addMonths } from 'date-fns/addMonths';
import { getDaysInMonth } from 'date-fns/getDaysInMonth';
import { parse as parseIsoDuration } from 'iso8601-duration';

export interface Cadence {
  /** The ISO 8601 duration as given, e.g. `P1M`. */
  interval: string;
  /** Calendar intervals only: the day of the month periods end on (1-31). */
  anchorDay: number;
}

export type Interval = { kind: 'calendar'; months: number } | { kind: 'fixed'; ms: number };

const MS = { weeks: 7 * 86_400_000, days: 86_400_000, hours: 3_600_000, minutes: 60_000, seconds: 1000 } as const;

/** The interval of an ISO 8601 duration, or a reason it cannot be a billing interval. */
export function parseInterval(text: string): Interval | { error: string } {
  let d: ReturnType<typeof parseIsoDuration>;
  try {
    if (!/^P(?!$)/.test(text)) throw new Error('not a duration');
    d = parseIsoDuration(text);
  } catch {
    return { error: 'must be an ISO 8601 duration such as P1M, P1W, P1D or PT5S' };
  }
  const parts = [d.years, d.months, d.weeks, d.days, d.hours, d.minutes, d.seconds];
  if (parts.some((n) => n === undefined || !Number.isInteger(n) || n < 0)) return { error: 'must use whole numbers of each unit' };
  const months = d.years! * 12 + d.months!;
  const ms = d.weeks! * MS.weeks + d.days! * MS.days + d.hours! * MS.hours + d.minutes! * MS.minutes + d.seconds! * MS.seconds;
  if (months > 0 && ms > 0) return { error: 'must be either months and years, or weeks, days and time, not both' };
  if (months > 0) return { kind: 'calendar', months };
  if (ms < 1000) return { error: 'must be at least one second' };
  return { kind: 'fixed', ms };
}

/**
 * An exact span of time given as an ISO 8601 duration of weeks, days, hours, minutes and seconds
 * (a grace period, payment terms): its milliseconds, or why it is not one. `PT0S` is 0.
 */
export function parseSpan(text: string): number | { error: string } {
  let d: ReturnType<typeof parseIsoDuration>;
  try {
    // The whole text, strictly: the parser alone would read P1D1H as a day, and Postgres refuses it.
    if (!/^P(?!$)(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/.test(text)) throw new Error('not a duration');
    d = parseIsoDuration(text);
  } catch {
    return { error: 'must be an ISO 8601 duration of weeks, days, hours, minutes and seconds, such as P30D, PT12H or PT5S' };
  }
  const parts = [d.years, d.months, d.weeks, d.days, d.hours, d.minutes, d.seconds];
  if (parts.some((n) => n === undefined || !Number.isInteger(n) || n < 0)) return { error: 'must use whole numbers of each unit' };
  if (d.years! > 0 || d.months! > 0) return { error: 'must be weeks, days, hours, minutes or seconds (months differ in length)' };
  return d.weeks! * MS.weeks + d.days! * MS.days + d.hours! * MS.hours + d.minutes! * MS.minutes + d.seconds! * MS.seconds;
}

/** A bill's grace period in milliseconds; bills created before grace periods have none. */
export function gracePeriodMs(text: string): number {
  const ms = parseSpan(text);
  return typeof ms === 'number' ? ms : 0;
}

/** 00:00 UTC on the anchor day of the month `monthOffset` months after `year`-`month`. */
function boundary(year: number, month: number, monthOffset: number, anchorDay: number): Date {
  const first = addMonths(new UTCDate(Date.UTC(year, month, 1)), monthOffset);
  const day = Math.min(anchorDay, getDaysInMonth(first));
  return new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), day));
}

/** Whether `t` is a calendar boundary for this anchor (00:00 UTC on the anchor day, clamped). */
export function isBoundary(t: Date, anchorDay: number): boolean {
  return boundary(t.getUTCFullYear(), t.getUTCMonth(), 0, anchorDay).getTime() === t.getTime();
}

/** The first calendar boundary strictly after `t`. */
function nextBoundary(t: Date, anchorDay: number): Date {
  const inMonth = boundary(t.getUTCFullYear(), t.getUTCMonth(), 0, anchorDay);
  return inMonth.getTime() > t.getTime() ? inMonth : boundary(t.getUTCFullYear(), t.getUTCMonth(), 1, anchorDay);
}

/**
 * The end of the period that starts at `start`. A period that starts on a boundary is a full
 * one; a calendar period that starts between boundaries (a bill created mid-month) is a partial
 * one and ends at the next boundary.
 */
export function periodEnd(start: Date, interval: Interval, anchorDay = 1): Date {
  if (interval.kind === 'fixed') return new Date(start.getTime() + interval.ms);
  if (!isBoundary(start, anchorDay)) return nextBoundary(start, anchorDay);
  return boundary(start.getUTCFullYear(), start.getUTCMonth(), interval.months, anchorDay);
}

/** `t` plus one interval, unaligned (the longest a first period may be). */
export function addInterval(t: Date, interval: Interval): Date {
  if (interval.kind === 'fixed') return new Date(t.getTime() + interval.ms);
  return new Date(addMonths(new UTCDate(t.getTime()), interval.months).getTime());
}

/** The start of the full period that ends at `end` (for proration). */
export function fullPeriodStart(end: Date, interval: Interval, anchorDay = 1): Date {
  if (interval.kind === 'fixed') return new Date(end.getTime() - interval.ms);
  return boundary(end.getUTCFullYear(), end.getUTCMonth(), -interval.months, anchorDay);
}

/**
 * The fee of the period [start, end): the whole fee for a full period, else the fee times the
 * share of the full period covered, rounded half up to an integer of minor units (exact: BigInt).
 */
export function prorateFee(amount: number, start: Date, end: Date, interval: Interval, anchorDay = 1): number {
  const fullStart = fullPeriodStart(end, interval, anchorDay).getTime();
  const full = BigInt(end.getTime() - fullStart);
  const covered = BigInt(Math.min(end.getTime() - start.getTime(), end.getTime() - fullStart));
  if (covered <= 0n) return 0;
  // round(a * c / f) = floor((2ac + f) / 2f)
  return Number((2n * BigInt(amount) * covered + full) / (2n * full));
}
