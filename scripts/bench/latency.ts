/*
 * latency.ts — commit latencies into an HdrHistogram, and the summary a report shows.
 *
 * Both systems record the same way: one value per committed transaction, in whole
 * microseconds, into a histogram with 3 significant digits (a value and its bucket differ by
 * at most 0.1%). walship's clients record as their replies arrive; PostgreSQL's come from
 * pgbench's per-transaction logs (pgbench-log.ts). A summary is a plain object: it goes into
 * the JSON report as it is.
 */
import hdr from 'hdr-histogram-js';

export type Histogram = ReturnType<typeof hdr.build>;

/** The longest latency a histogram is sized for up front; it resizes past it. */
const HIGHEST_EXPECTED_US = 60_000_000;

export function newHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_EXPECTED_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/** Records one latency; a sub-microsecond one counts as 1 µs (the histogram's floor). */
export function recordMicros(histogram: Histogram, micros: number): void {
  if (!Number.isFinite(micros) || micros < 0) throw new Error(`a latency must be a finite non-negative number of microseconds, got ${micros}`);
  histogram.recordValue(Math.max(1, Math.round(micros)));
}

export interface LatencySummary {
  readonly count: number;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p95Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

/**
 * A percentile is reported as the top of its bucket (HdrHistogram's convention), which can
 * sit just above the largest value recorded; the report caps it there, so p99 <= max.
 */
export function summarize(histogram: Histogram): LatencySummary {
  if (histogram.totalCount === 0) return { count: 0, meanUs: 0, p50Us: 0, p95Us: 0, p99Us: 0, maxUs: 0 };
  const maxUs = histogram.maxValue;
  const at = (percentile: number): number => Math.min(maxUs, histogram.getValueAtPercentile(percentile));
  return { count: histogram.totalCount, meanUs: Math.round(histogram.mean), p50Us: at(50), p95Us: at(95), p99Us: at(99), maxUs };
}

/** 812 -> "0.812 ms", 15300 -> "15.3 ms": three significant digits, as recorded. */
export function formatMillis(micros: number): string {
  const ms = micros / 1000;
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}
