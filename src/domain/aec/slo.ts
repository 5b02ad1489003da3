/**
 * The SLO gate of the dispatch figures (`kair aec stats --check`): the window, the comparison
 * with config `slo`, and which waiver is in force. Pure: the caller reads the ledger and the clock.
 */
import type { SloConfig } from '../config.js';
import { kairError } from '../errors.js';

export type SloMetric = keyof SloConfig;

export interface Breach {
  metric: SloMetric;
  value: number;
  limit: number;
}

/** The figures the gate compares, over the window. */
export interface SloFigures {
  dispatch_latency_ms: { p95: number | null; p99: number | null };
  execution_error_rate: number;
  duplicate_side_effects: number;
}

export interface Waiver {
  id: string;
  until: string;
  reason: string;
  created_at: string;
  created_by: string;
}

export const DEFAULT_CHECK_WINDOW = '24h';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
// Ten years: a window past that is a typo, and its start must stay a valid date.
const MAX_WINDOW_MS = 3650 * UNIT_MS.d;

/** `--window`: a positive whole number of seconds, minutes, hours or days (`90s`, `30m`, `24h`, `7d`). */
export function parseWindow(text: string): number {
  const m = /^([1-9][0-9]{0,9})([smhd])$/.exec(text);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : NaN;
  if (!(ms <= MAX_WINDOW_MS)) {
    throw kairError('USAGE_ERROR', `--window must be a positive whole number of s, m, h or d (e.g. 24h, 7d) up to 3650d, got ${JSON.stringify(text.slice(0, 80))}`, {
      flag: '--window',
      hint: 'e.g. --window 24h',
    });
  }
  return ms;
}

/** Every figure over its limit (a limit is the largest value that passes). No data breaches nothing. */
export function sloBreaches(f: SloFigures, slo: SloConfig): Breach[] {
  const out: Breach[] = [];
  const over = (metric: SloMetric, value: number | null) => {
    if (value !== null && value > slo[metric]) out.push({ metric, value, limit: slo[metric] });
  };
  over('dispatch_p95_ms', f.dispatch_latency_ms.p95);
  over('dispatch_p99_ms', f.dispatch_latency_ms.p99);
  over('error_rate', f.execution_error_rate);
  over('duplicate_side_effects', f.duplicate_side_effects);
  return out;
}

/** The waiver in force at `now` (the one lasting longest), or null; an expired one never counts. */
export function activeWaiver<W extends Waiver>(waivers: readonly W[], now: string): W | null {
  const t = Date.parse(now);
  let best: W | null = null;
  for (const w of waivers) {
    const until = Date.parse(w.until);
    if (until > t && (best === null || until > Date.parse(best.until))) best = w;
  }
  return best;
}
