/** `kair show` and `kair diff`: read-only, like read-handlers (no zod, no SQLite, no lock). */
import type { Ctx } from '../app/context.js';
import type { DiffResult, ShowResult } from '../app/show.js';
import * as showApp from '../app/show.js';
import type { PathChange } from '../domain/plan-diff.js';
import type { Paint } from './io.js';
import type { Output } from './registry.js';
import type { Parsed } from './parse.js';
import { oneLine, stateColor, table } from './render/text.js';

const indent = (text: string, by = '            ') => text.split('\n').map((l, i) => (i === 0 ? l : by + l)).join('\n');

// Shared with `status`, which must not load show's modules (decision 029).
export { nextLines, runHeadline, runLines } from './run-lines.js';
import { nextLines, runHeadline, runLines } from './run-lines.js';

function renderShow(r: ShowResult, paint: Paint): string {
  const lines = [`${paint.bold(r.contract_id)}  ${stateColor(r.state, paint)}  v${r.version}  ${oneLine(r.intent)}`];
  if (r.plan) {
    lines.push(`  plan      sha256 ${r.plan.sha256}`);
    lines.push(`            ${oneLine(r.plan.title)}${r.plan.strategy ? ` (${r.plan.strategy}${r.plan.kimi_eligible ? ', Kimi' : ''})` : r.plan.kimi_eligible ? ' (Kimi)' : ''}`);
    const steps = r.plan.steps.map((s, i) => [`${i + 1}.`, s.id, s.lane, `${oneLine(s.summary)}${s.simulation ? ` — simulation "${oneLine(s.simulation)}"` : ''}`]);
    lines.push(`  steps     ${indent(table(steps, ['#', 'STEP', 'LANE', 'WHAT IT DOES'], paint))}`);
  } else {
    lines.push('  plan      none yet');
  }
  const granted = new Set(r.controls.granted);
  const req = r.controls.required.map((c) => (granted.has(c) ? paint.green(c) : paint.red(`${c} (missing)`)));
  lines.push(`  controls  required: ${req.join(', ') || '-'}; granted: ${r.controls.granted.join(', ') || '-'}`);
  if (r.approvals.length) {
    const rows = r.approvals.map((a) => [
      oneLine(a.actor),
      a.at,
      `plan ${a.plan_sha256.slice(0, 12)}`,
      a.valid ? paint.green('valid') : paint.dim('void'),
      a.signed ? (a.verified === true ? 'signed, verified' : a.verified === false ? paint.red('signed, NOT verified') : 'signed, not checked') : 'unsigned',
    ]);
    lines.push(`  approvals ${r.approvers.valid} of ${r.approvers.min} valid`);
    lines.push(`            ${indent(table(rows, ['ACTOR', 'AT', 'PLAN', 'VALID', 'SIGNATURE'], paint))}`);
  } else {
    lines.push(`  approvals none (${r.approvers.min} needed)`);
  }
  if (r.last_run) {
    lines.push(`  last run  ${runHeadline(r.last_run)}`);
    if (r.last_run.status !== 'COMPLETED') lines.push(`            ${indent(runLines(r.last_run, paint))}`);
  }
  if (r.next.length) lines.push(`  next      ${indent(nextLines(r.next, paint))}`);
  return lines.join('\n');
}

export async function show(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await showApp.show(ctx, p.args[0]!);
  const doc = { ...r };
  // -q: the primary value is the sha an approver passes to `approve --expect-sha`.
  return { json: doc, text: (paint) => renderShow(r, paint), ...(r.plan_sha256 ? { primary: r.plan_sha256 } : {}) };
}

const value = (v: unknown) => oneLine(JSON.stringify(v));

function change(prefix: string, c: PathChange, paint: Paint): string {
  if (c.op === 'add') return paint.green(`+ ${prefix}${c.path}: ${value(c.to)}`);
  if (c.op === 'remove') return paint.red(`- ${prefix}${c.path}: ${value(c.from)}`);
  return paint.yellow(`~ ${prefix}${c.path}: ${value(c.from)} → ${value(c.to)}`);
}

function renderDiff(r: DiffResult, paint: Paint): string {
  const name = (sha: string | null, ref: string) => (sha ? `${sha.slice(0, 12)}${ref === 'sha' ? '' : ` (${ref})`}` : `nothing (no ${ref} plan)`);
  const head = `${r.contract_id}: plan ${name(r.from, r.from_ref)} → ${name(r.to, r.to_ref)}`;
  if (r.identical) return `${head}\nidentical: no step or key differs`;
  const lines = [head];
  const s = r.steps;
  if (s.added.length + s.removed.length + s.moved.length + s.changed.length) {
    lines.push('steps');
    for (const a of s.added) {
      const step = a.step as { summary?: unknown };
      lines.push(paint.green(`  + ${oneLine(a.id)} (step ${a.index + 1})${typeof step?.summary === 'string' ? `: ${oneLine(step.summary)}` : ''}`));
    }
    for (const x of s.removed) lines.push(paint.red(`  - ${oneLine(x.id)} (was step ${x.index + 1})`));
    for (const m of s.moved) lines.push(paint.yellow(`  ↕ ${oneLine(m.id)} moved: step ${m.from + 1} → ${m.to + 1}`));
    for (const c of s.changed) lines.push(`  ${change(`${oneLine(c.id)}: `, { ...c, path: oneLine(c.path) }, paint)}`);
  }
  if (r.other.length) {
    lines.push('other');
    for (const c of r.other) lines.push(`  ${change('', { ...c, path: oneLine(c.path) }, paint)}`);
  }
  return lines.join('\n');
}

export async function diff(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await showApp.diff(ctx, p.args[0]!, { from: p.opts.from as string | undefined, to: p.opts.to as string | undefined });
  // -q: a diff has no single primary value (exit 0 whatever it finds), so -q prints nothing.
  return { json: { ...r }, text: (paint) => renderDiff(r, paint) };
}
