/**
 * The exact command(s) that move a contract on from where it is, for `show` and `status`. Pure:
 * the caller passes what it read (the last run, the approval quorum). A command is copyable
 * as it stands except for placeholders in angle brackets, which name what only the user knows.
 */
import type { Contract } from './contract.js';
import { missingControls, validApprovers } from './contract.js';

export interface NextStep {
  command: string;
  why: string;
}

export interface LastRunFacts {
  status: string;
  reason: { code: string; message: string } | null;
  failed_step: string | null;
}

/** First 12 hex digits: what `approve --expect-sha` is given (at least 8 are required). */
export const shortSha = (sha: string) => sha.slice(0, 12);

/** Shell-safe: ids and control names are `[a-z0-9_:-]`, so only a reason text needs quoting. */
const q = (s: string) => `"${s.replace(/["\\$`]/g, '\\$&')}"`;

/** What to do about a FAILED run, by the code that ended it (a retry where none is needed). */
function fixFor(c: Contract, code: string, message: string): NextStep[] {
  const id = c.id;
  const replan: NextStep = { command: `kair plan ${id} --file <plan.json>`, why: `${code}: change the plan (then request approval and approve it again)` };
  switch (code) {
    case 'BUDGET_EXCEEDED':
    case 'RUNTIME_EXCEEDED':
    case 'CONTRACT_BUDGET_EXCEEDED':
    case 'SCOPE_NOT_ALLOWED':
      return [replan];
    case 'CONTROLS_MISSING':
    case 'CONTROL_REVOKED': {
      const missing = missingControls(c);
      return missing.length ? [{ command: `kair grant ${id} ${missing.join(' ')}`, why: `${code}: grant what the plan requires` }] : [];
    }
    case 'AEC_EXECUTOR_FAILED':
    case 'AEC_STEP_TIMEOUT':
      return [{ command: `kair aec ledger ${id}`, why: `${code}: see what the executor reported (${message})` }];
    default:
      if (code.startsWith('ACCESS_')) return [{ command: 'kair access list', why: `${code}: the access policy refused the step` }];
      if (code.startsWith('SIM_FINDER_') || code.startsWith('SIMULATION_')) return [{ command: 'kair sim list', why: `${code}: no usable simulation for a step; register or activate one, or change the plan` }, replan];
      return [];
  }
}

export function nextSteps(c: Contract, opts: { min: number; lastRun: LastRunFacts | null }): NextStep[] {
  const id = c.id;
  const missing = missingControls(c);
  const grant: NextStep[] = missing.length ? [{ command: `kair grant ${id} ${missing.join(' ')}`, why: `required controls not granted: ${missing.join(', ')}` }] : [];
  const approve = (why: string): NextStep => ({ command: `kair approve ${id} --expect-sha ${shortSha(c.plan_sha256 ?? '')}`, why });
  switch (c.state) {
    case 'DRAFT':
    case 'REWOUND':
      return [{ command: `kair plan ${id} --file <plan.json>`, why: c.state === 'DRAFT' ? 'the contract has no plan yet' : `version ${c.version} needs its plan` }];
    case 'PLANNED':
      return [...grant, { command: `kair request-approval ${id}`, why: 'ask for approval of this plan' }];
    case 'AWAITING_APPROVAL': {
      const have = validApprovers(c).length;
      return [...grant, approve(`approve exactly this plan (${have} of ${opts.min} approval(s)); \`kair show ${id}\` shows it`)];
    }
    case 'APPROVED': {
      const have = validApprovers(c).length;
      if (have < opts.min) return [...grant, approve(`${have} of ${opts.min} approval(s): approvals.min was raised`)];
      return [...grant, { command: `kair run ${id}`, why: 'execute the approved plan' }];
    }
    case 'RUNNING':
      return [{ command: `kair pause ${id}`, why: 'stop before the next step (the run in progress finishes its step)' }];
    case 'PAUSED': {
      // A string: pause reasons added later (AEC_REPEAT_BLOCKED, INTERRUPTED) are matched here too.
      const reason: string | undefined = c.pause?.reason;
      if (reason === 'AEC_CONFIRM_REQUIRED' || reason === 'AEC_CONFIRM_AMBIGUOUS_REJECTED') {
        return [{ command: `kair resume ${id} --confirm <answer>`, why: c.pause?.step_id ? `step ${c.pause.step_id} needs a confirmation` : 'a step needs a confirmation' }];
      }
      if (reason === 'CONTROL_REVOKED') return [...grant, { command: `kair resume ${id}`, why: 'continue once the controls are granted again' }];
      if (reason === 'AEC_IN_DOUBT') {
        return [
          { command: `kair aec ledger ${id}`, why: `the outcome of ${c.pause?.step_id ?? 'a step'} is unknown: check whether it took effect` },
          { command: `kair resume ${id} --retry-in-doubt`, why: 'run it again only if it did not' },
        ];
      }
      if (reason === 'AEC_REPEAT_BLOCKED') return [{ command: `kair resume ${id} --allow-repeat`, why: 'the step already succeeded under an earlier version; repeat it only on purpose' }];
      return [{ command: `kair resume ${id}`, why: `continue the paused run${reason ? ` (${reason})` : ''}` }];
    }
    case 'FAILED': {
      const r = opts.lastRun?.reason;
      const fix = r ? fixFor(c, r.code, r.message) : [];
      const rewind = { command: `kair rewind ${id} ${q('<reason>')}`, why: 'or start a new version' };
      // A new plan needs a new approval before any run: a retry of this one would fail the same way.
      if (fix.some((f) => f.command.startsWith(`kair plan `))) return [...fix, rewind];
      return [...fix, { command: `kair run ${id}`, why: fix.length ? 'retry once that is fixed' : 'retry the run' }, rewind];
    }
    case 'COMPLETED':
      return [
        { command: `kair review ${id}`, why: 'read the run summary' },
        { command: `kair accept ${id}`, why: 'accept the result' },
      ];
    case 'ACCEPTED':
      return [{ command: `kair rewind ${id} ${q('<reason>')}`, why: 'only to change it: a new version' }];
    default:
      return [];
  }
}
