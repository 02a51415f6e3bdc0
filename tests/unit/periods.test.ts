import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { addInterval, fullPeriodStart, parseInterval, periodEnd, prorateFee, type Interval } from '../../bills/periods';

const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z');
const interval = (text: string) => parseInterval(text) as Interval;
const MONTH = interval('P1M');

/** The ends of `n` consecutive periods from `start`. */
function ends(start: string, n: number, i: Interval, anchor?: number): string[] {
  const out: string[] = [];
  let t = at(start);
  for (let k = 0; k < n; k++) {
    t = periodEnd(t, i, anchor);
    out.push(iso(t));
  }
  return out;
}

describe('parseInterval', () => {
  it('reads calendar and fixed ISO 8601 durations', () => {
    expect(interval('P1M')).toEqual({ kind: 'calendar', months: 1 });
    expect(interval('P3M')).toEqual({ kind: 'calendar', months: 3 });
    expect(interval('P1Y')).toEqual({ kind: 'calendar', months: 12 });
    expect(interval('P1W')).toEqual({ kind: 'fixed', ms: 7 * 86_400_000 });
    expect(interval('P1D')).toEqual({ kind: 'fixed', ms: 86_400_000 });
    expect(interval('PT5S')).toEqual({ kind: 'fixed', ms: 5000 });
    expect(interval('P1DT12H')).toEqual({ kind: 'fixed', ms: 36 * 3_600_000 });
  });

  it.each([
    ['', 'ISO 8601'],
    ['P', 'ISO 8601'],
    ['1M', 'ISO 8601'],
    ['P1X', 'ISO 8601'],
    ['monthly', 'ISO 8601'],
    ['P1M2D', 'not both'],
    ['PT0.5S', 'whole numbers'],
    ['P0D', 'at least one second'],
    ['PT0S', 'at least one second'],
  ])('refuses %j', (text, reason) => {
    expect(parseInterval(text)).toEqual({ error: expect.stringContaining(reason) });
  });
});

describe('periodEnd: calendar months', () => {
  it('gives a year of calendar months from the first of January', () => {
    expect(ends('2026-01-01T00:00:00Z', 12, MONTH)).toEqual([
      '2026-02-01T00:00:00Z',
      '2026-03-01T00:00:00Z',
      '2026-04-01T00:00:00Z',
      '2026-05-01T00:00:00Z',
      '2026-06-01T00:00:00Z',
      '2026-07-01T00:00:00Z',
      '2026-08-01T00:00:00Z',
      '2026-09-01T00:00:00Z',
      '2026-10-01T00:00:00Z',
      '2026-11-01T00:00:00Z',
      '2026-12-01T00:00:00Z',
      '2027-01-01T00:00:00Z',
    ]);
  });

  it('ends a bill created mid-month at the next boundary: a partial first period', () => {
    expect(ends('2026-11-21T19:02:05.123Z', 3, MONTH)).toEqual(['2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z', '2027-02-01T00:00:00Z']);
  });

  it('keeps an anchor on the 31st at each month end, and returns to the 31st after short months', () => {
    expect(ends('2026-01-31T00:00:00Z', 12, MONTH, 31)).toEqual([
      '2026-02-28T00:00:00Z',
      '2026-03-31T00:00:00Z',
      '2026-04-30T00:00:00Z',
      '2026-05-31T00:00:00Z',
      '2026-06-30T00:00:00Z',
      '2026-07-31T00:00:00Z',
      '2026-08-31T00:00:00Z',
      '2026-09-30T00:00:00Z',
      '2026-10-31T00:00:00Z',
      '2026-11-30T00:00:00Z',
      '2026-12-31T00:00:00Z',
      '2027-01-31T00:00:00Z',
    ]);
  });

  it('anchors on the 29th and 30th: February is clamped, March is not', () => {
    expect(ends('2027-01-29T00:00:00Z', 2, MONTH, 29)).toEqual(['2027-02-28T00:00:00Z', '2027-03-29T00:00:00Z']);
    expect(ends('2027-01-30T00:00:00Z', 2, MONTH, 30)).toEqual(['2027-02-28T00:00:00Z', '2027-03-30T00:00:00Z']);
  });

  it('has a leap day in leap years only', () => {
    expect(ends('2028-01-31T00:00:00Z', 2, MONTH, 31)).toEqual(['2028-02-29T00:00:00Z', '2028-03-31T00:00:00Z']);
    expect(ends('2028-01-29T00:00:00Z', 2, MONTH, 29)).toEqual(['2028-02-29T00:00:00Z', '2028-03-29T00:00:00Z']);
    expect(ends('2100-01-29T00:00:00Z', 1, MONTH, 29)).toEqual(['2100-02-28T00:00:00Z']); // not a leap year
    expect(ends('2000-01-29T00:00:00Z', 1, MONTH, 29)).toEqual(['2000-02-29T00:00:00Z']); // a leap year
    // A yearly period from a leap day ends on the anchor, clamped, then returns to it.
    expect(ends('2028-02-29T00:00:00Z', 5, interval('P1Y'), 29)).toEqual([
      '2029-02-28T00:00:00Z',
      '2030-02-28T00:00:00Z',
      '2031-02-28T00:00:00Z',
      '2032-02-29T00:00:00Z',
      '2033-02-28T00:00:00Z',
    ]);
  });

  it('runs quarters from the anchor', () => {
    expect(ends('2026-01-15T00:00:00Z', 4, interval('P3M'), 15)).toEqual([
      '2026-04-15T00:00:00Z',
      '2026-07-15T00:00:00Z',
      '2026-10-15T00:00:00Z',
      '2027-01-15T00:00:00Z',
    ]);
  });

  it('computes in UTC whatever the process time zone', () => {
    // TZ is read when a process starts: a process of its own, in UTC+14, computes the same periods.
    const script = `
      const { periodEnd, isBoundary, parseInterval } = require('./bills/periods');
      const month = parseInterval('P1M');
      const first = periodEnd(new Date('2026-03-31T00:00:00Z'), month, 31);
      const second = periodEnd(first, month, 31);
      console.log(JSON.stringify({
        offset: new Date('2026-01-01T00:00:00Z').getTimezoneOffset(),
        ends: [first.toISOString(), second.toISOString()],
        boundary: [isBoundary(new Date('2026-04-30T00:00:00Z'), 31), isBoundary(new Date('2026-04-30T00:00:01Z'), 31)],
      }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: path.resolve(__dirname, '..', '..'),
      env: { ...process.env, TZ: 'Pacific/Kiritimati' },
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual({
      offset: -14 * 60, // the child really ran fourteen hours ahead of UTC
      ends: ['2026-04-30T00:00:00.000Z', '2026-05-31T00:00:00.000Z'],
      boundary: [true, false],
    });
  }, 30_000);
});

describe('periodEnd: fixed lengths', () => {
  it('adds exact lengths of time (a UTC day is always 24 hours)', () => {
    expect(ends('2026-03-28T12:00:00Z', 2, interval('P1D'))).toEqual(['2026-03-29T12:00:00Z', '2026-03-30T12:00:00Z']);
    expect(ends('2026-11-21T10:00:00Z', 1, interval('P1W'))).toEqual(['2026-11-28T10:00:00Z']);
    expect(ends('2026-11-21T10:00:00Z', 3, interval('PT5S'))).toEqual([
      '2026-11-21T10:00:05Z',
      '2026-11-21T10:00:10Z',
      '2026-11-21T10:00:15Z',
    ]);
  });
});

describe('addInterval and fullPeriodStart', () => {
  it('give the longest first period and the start of a full one', () => {
    expect(iso(addInterval(at('2026-01-31T10:00:00Z'), MONTH))).toBe('2026-02-28T10:00:00Z');
    expect(iso(fullPeriodStart(at('2026-12-01T00:00:00Z'), MONTH))).toBe('2026-11-01T00:00:00Z');
    expect(iso(fullPeriodStart(at('2026-03-31T00:00:00Z'), MONTH, 31))).toBe('2026-02-28T00:00:00Z');
    expect(iso(fullPeriodStart(at('2026-11-21T10:00:05Z'), interval('PT5S')))).toBe('2026-11-21T10:00:00Z');
  });
});

describe('prorateFee', () => {
  it('charges the whole fee for a full period', () => {
    expect(prorateFee(3000, at('2026-11-01T00:00:00Z'), at('2026-12-01T00:00:00Z'), MONTH)).toBe(3000);
    expect(prorateFee(999, at('2026-11-21T10:00:00Z'), at('2026-11-21T10:00:05Z'), interval('PT5S'))).toBe(999);
  });

  it('charges the share of the full period covered, rounded half up to minor units', () => {
    // 10 of November's 30 days.
    expect(prorateFee(3000, at('2026-11-21T00:00:00Z'), at('2026-12-01T00:00:00Z'), MONTH)).toBe(1000);
    // 1 of 3 days of 100: 33.33 -> 33; 2 of 3 days: 66.67 -> 67.
    const threeDays = interval('P3D');
    expect(prorateFee(100, at('2026-11-03T00:00:00Z'), at('2026-11-04T00:00:00Z'), threeDays)).toBe(33);
    expect(prorateFee(100, at('2026-11-02T00:00:00Z'), at('2026-11-04T00:00:00Z'), threeDays)).toBe(67);
    // Exactly half: 0.5 rounds up.
    expect(prorateFee(1, at('2026-11-02T12:00:00Z'), at('2026-11-03T00:00:00Z'), interval('P1D'))).toBe(1);
    // February in a leap year has 29 days: its last day of 2900 is 100.
    expect(prorateFee(2900, at('2028-02-29T00:00:00Z'), at('2028-03-01T00:00:00Z'), MONTH)).toBe(100);
    // With the anchor on the 29th, the period ending on 29 February began on 29 January: 31 days.
    expect(prorateFee(3100, at('2028-02-28T00:00:00Z'), at('2028-02-29T00:00:00Z'), MONTH, 29)).toBe(100);
  });

  it('stays exact for the largest amounts', () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(prorateFee(max, at('2026-11-01T00:00:00Z'), at('2026-12-01T00:00:00Z'), MONTH)).toBe(max);
    // Half of 2^53 - 1 is 4503599627370495.5, which rounds up.
    expect(prorateFee(max, at('2026-11-16T00:00:00Z'), at('2026-12-01T00:00:00Z'), MONTH)).toBe(4503599627370496);
  });

  it('charges nothing for an empty period', () => {
    expect(prorateFee(3000, at('2026-12-01T00:00:00Z'), at('2026-12-01T00:00:00Z'), MONTH)).toBe(0);
  });
});
