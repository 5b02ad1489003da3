/**
 * `kair aec stats --check` and `kair aec waiver add|list`: the dispatch figures of a recent
 * window held to config `slo`, unless an admin's waiver is in force.
 */
import type { Breach, Waiver } from '../domain/aec/slo.js';
import { DEFAULT_CHECK_WINDOW, activeWaiver, parseWindow, sloBreaches } from '../domain/aec/slo.js';
import type { SloConfig } from '../domain/config.js';
import { kairError } from '../domain/errors.js';
import type { LedgerStats } from '../lanes/aec/ledger.js';
import { ledgerRepo } from '../lanes/aec/ledger.js';
import type { WaiverView } from '../lanes/aec/waivers.js';
import { addWaiver as insertWaiver, listWaivers } from '../lanes/aec/waivers.js';
import { assertAdminHere } from './actors.js';
import { EMPTY_STATS } from './aec-ledger.js';
import type { Ctx } from './context.js';
import { RFC3339 } from './context.js';
import { inTransaction, readOnlyTransaction } from './db.js';

export interface Finding {
  kind: string;
  message: string;
}

export interface SloCheck {
  window: string;
  since: string;
  now: string;
  stats: LedgerStats;
  slo: SloConfig;
  breaches: Breach[];
  waiver: Waiver | null;
  warnings: Finding[];
}

/** Compares the window's figures with `slo`; SLO_BREACHED (exit 3, the whole check as payload) on a breach no waiver covers. */
export async function sloCheck(ctx: Ctx, windowText: string = DEFAULT_CHECK_WINDOW): Promise<SloCheck> {
  const ms = parseWindow(windowText);
  const now = ctx.now();
  const since = new Date(Date.parse(now) - ms).toISOString();
  const { stats, waivers } = await readOnlyTransaction(
    ctx,
    () => ({ stats: EMPTY_STATS, waivers: [] as WaiverView[] }),
    async (sql) => ({ stats: await ledgerRepo(sql).stats(since), waivers: await listWaivers(sql) }),
  );
  const warnings: Finding[] = [];
  const outcomes = stats.succeeded + stats.failed + stats.timed_out + stats.rejected;
  if (stats.dispatches === 0 && outcomes === 0) warnings.push({ kind: 'no_data', message: `no dispatch since ${since} (window ${windowText}): nothing to hold to the SLO` });
  const forged = waivers.filter((w) => !w.logged);
  for (const w of forged) warnings.push({ kind: 'waiver_unlogged', message: `waiver ${w.id} differs from its change-log entry (written outside kair) and is not honoured; see \`kair verify\`` });
  const waiver = activeWaiver(waivers.filter((w) => w.logged), now);
  const breaches = sloBreaches(stats, ctx.config.slo);
  const check: SloCheck = { window: windowText, since, now, stats, slo: ctx.config.slo, breaches, waiver: waiver ? strip(waiver) : null, warnings };
  if (breaches.length > 0 && waiver) warnings.push({ kind: 'waived', message: `the SLO is breached but waived until ${waiver.until} by ${waiver.created_by} (${waiver.id})` });
  if (breaches.length > 0 && !waiver) {
    const e = kairError('SLO_BREACHED', `the dispatch SLO is breached over the last ${windowText}: ${breaches.map(describeBreach).join('; ')}`, {
      breaches,
      window: windowText,
      hint: 'find the cause (`kair aec stats --json`); an admin may waive it for a while: kair aec waiver add --until <RFC 3339 time> --reason "<why>"',
    });
    e.payload = { ...check };
    throw e;
  }
  return check;
}

export function describeBreach(b: Breach): string {
  return `${b.metric} ${b.value} > ${b.limit}`;
}

const strip = (w: WaiverView): Waiver => ({ id: w.id, until: w.until, reason: w.reason, created_at: w.created_at, created_by: w.created_by });

// eslint-disable-next-line no-control-regex -- C0, DEL and C1 controls are what is refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_REASON = 500;

/** `aec waiver add`: admin-only; `--until` an RFC 3339 time after now, `--reason` one line of text. */
export async function addWaiver(ctx: Ctx, until: string | undefined, reason: string | undefined): Promise<Waiver> {
  if (until === undefined) throw kairError('USAGE_ERROR', '`kair aec waiver add` needs --until <RFC 3339 time>, e.g. --until 2026-02-01T00:00:00Z', { flag: '--until', hint: 'pass --until 2026-02-01T00:00:00Z' });
  const t = RFC3339.test(until) ? Date.parse(until.replace(' ', 'T')) : NaN;
  if (Number.isNaN(t)) {
    throw kairError('USAGE_ERROR', `--until must be an RFC 3339 time with a time zone (e.g. 2026-02-01T00:00:00Z), got ${JSON.stringify(until.slice(0, 80))}`, { flag: '--until', hint: 'e.g. --until 2026-02-01T00:00:00Z' });
  }
  const now = ctx.now();
  if (t <= Date.parse(now)) {
    throw kairError('USAGE_ERROR', `--until ${new Date(t).toISOString()} is not in the future (now ${now}); a waiver must end later than now`, { flag: '--until', now, hint: 'pass a time after now' });
  }
  if (reason === undefined || reason.trim() === '') throw kairError('USAGE_ERROR', '`kair aec waiver add` needs --reason TEXT (why the SLO may be breached for now)', { flag: '--reason', hint: 'pass --reason "why"' });
  if (CONTROL.test(reason) || reason.length > MAX_REASON) {
    throw kairError('USAGE_ERROR', `--reason must be one line of at most ${MAX_REASON} characters without control characters`, { flag: '--reason', hint: 'shorten it to one line' });
  }
  assertAdminHere(ctx, 'waive the SLO');
  return inTransaction(ctx, (sql) => insertWaiver(sql, { tenant: ctx.config.workspace_id, until: new Date(t).toISOString(), reason, actor: ctx.actor(), now }));
}

/** `aec waiver list`: every waiver, whether it is in force now, and whether the change log vouches for it. */
export async function waivers(ctx: Ctx): Promise<(WaiverView & { active: boolean })[]> {
  const now = ctx.now();
  const all = await readOnlyTransaction(ctx, () => [] as WaiverView[], (sql) => listWaivers(sql));
  return all.map((w) => ({ ...w, active: w.logged && Date.parse(w.until) > Date.parse(now) }));
}
