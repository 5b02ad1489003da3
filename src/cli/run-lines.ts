/** Text lines of a run and of next steps, shared by `status` and `show` (kept apart from show-handlers so `status` loads no show modules). */
import type { LastRun } from '../app/status-extras.js';
import type { NextStep } from '../domain/next-steps.js';
import type { Paint } from './io.js';
import { oneLine, table } from './render/text.js';

/** A step's run line: `send  aec  FAILED  AEC_EXECUTOR_FAILED`. */
export function runLines(run: LastRun, paint: Paint): string {
  const rows = run.steps.map((s) => [s.id, s.lane, s.status === 'FAILED' || s.status === 'REFUSED' ? paint.red(s.status) : s.status, s.reason_code ?? '']);
  return rows.length ? table(rows, ['STEP', 'LANE', 'STATUS', 'REASON'], paint) : '(no step finished)';
}

export function runHeadline(run: LastRun): string {
  const why = run.reason ? `: ${run.reason.code}${run.reason.message ? ` — ${oneLine(run.reason.message)}` : ''}` : '';
  return `${run.run_id} ${run.status}${run.failed_step ? ` at step ${run.failed_step}` : ''}${why}`;
}

export function nextLines(next: NextStep[], paint: Paint): string {
  return next.map((n) => `${paint.bold(oneLine(n.command))}  ${paint.dim(`# ${oneLine(n.why)}`)}`).join('\n');
}
