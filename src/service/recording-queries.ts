/**
 * The questions the API asks a recording, as plain data, and how a recording
 * answers them. A question crosses to a worker thread (query-worker.ts) and
 * its answer comes back, so both are structured-clone data: SQL rows, no
 * knowledge base, no symbolizer. The words of the answer (explanations,
 * findings) are added on the main thread (queries.ts), which holds those.
 */
import type { CounterTotal, PointTotal, ReasonSeries, Recording, RecordingTotals, TimeRange } from '../recording/recording.js';

export type RecordingQuery =
  | { readonly kind: 'points'; readonly range: Required<TimeRange>; readonly top: number }
  | { readonly kind: 'series'; readonly range: Required<TimeRange>; readonly buckets: number }
  | { readonly kind: 'diagnosis'; readonly range: Required<TimeRange>; readonly rows: number };

export interface PointsRows {
  readonly points: readonly PointTotal[];
  readonly drops: number;
}

export interface DiagnosisRows {
  readonly points: readonly PointTotal[];
  readonly counters: readonly CounterTotal[];
  readonly totals: RecordingTotals;
}

export type RecordingAnswer<Q extends RecordingQuery> = Q extends { kind: 'points' } ? PointsRows : Q extends { kind: 'series' } ? ReasonSeries : DiagnosisRows;

/** Run one question against an open recording (its answer is a RecordingAnswer of the question). */
export function askRecording(rec: Recording, q: RecordingQuery): PointsRows | ReasonSeries | DiagnosisRows {
  switch (q.kind) {
    case 'points':
      return { points: rec.topPoints(q.range, q.top), drops: rec.totals(q.range).drops };
    case 'series':
      return rec.reasonsOverTime(q.range, { buckets: q.buckets });
    case 'diagnosis':
      return { points: rec.topPoints(q.range, q.rows), counters: rec.countersMoved(q.range, q.rows), totals: rec.totals(q.range) };
  }
}
