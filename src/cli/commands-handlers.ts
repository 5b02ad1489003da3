/** Handlers of config get/set, access apply, unrequire, close and doctor. */
import { resolve } from 'node:path';
import { applyPolicy } from '../app/access-apply.js';
import { closeContract, unrequireControls } from '../app/close.js';
import { configGet, configSet } from '../app/config-cmd.js';
import type { Ctx } from '../app/context.js';
import { doctor as doctorApp } from '../app/doctor.js';
import { kairError } from '../domain/errors.js';
import type { Output } from './registry.js';
import type { Parsed } from './parse.js';
import { contractSummary } from './render/text.js';

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

export async function configGetCmd(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = configGet(ctx, p.args[0]!);
  return { json: { key: r.key, value: r.value, source: r.source }, text: () => show(r.value) };
}

export async function configSetCmd(p: Parsed, ctx: Ctx): Promise<Output> {
  const [key, value] = p.args as [string, string];
  const r = await configSet(ctx, key, value);
  for (const x of r.problems) ctx.warn(`the config still has a problem: ${x.path}: ${x.message} (\`kair config set ${x.path} <value>\` fixes it)`);
  return {
    json: { key: r.key, value: r.value, previous: r.previous, config_sha256: r.config_sha256, problems: r.problems },
    text: () => `Set ${r.key} = ${show(r.value)} (was ${show(r.previous)})`,
  };
}

export async function accessApply(p: Parsed, ctx: Ctx): Promise<Output> {
  const file = p.opts.file as string | undefined;
  if (file === undefined) throw kairError('USAGE_ERROR', '`kair access apply` needs --file F (a policy: {"rules": [...]})', { flag: '--file', hint: 'kair access apply --file policy.json --dry-run' });
  const r = await applyPolicy(ctx, resolve(ctx.cwd, file), file, p.opts.dryRun === true);
  const rule = (x: { actor: string; action: string }) => `${x.actor} ${x.action}`;
  const lines = [
    ...r.added.map((x) => `+ ${rule(x)} ${x.decision}`),
    ...r.removed.map((x) => `- ${rule(x)} ${x.decision}`),
    ...r.changed.map((x) => `~ ${rule(x)} ${x.from} → ${x.to}`),
  ];
  const total = r.added.length + r.removed.length + r.changed.length;
  const head = r.dry_run
    ? `dry run: ${total === 0 ? 'the policy already matches' : `${total} change(s) would be applied`}; nothing written`
    : total === 0
      ? `the policy already matches ${file}; nothing changed`
      : `Applied ${file}: ${r.added.length} added, ${r.removed.length} removed, ${r.changed.length} changed (policy version ${r.policy_snapshot_version})`;
  return { json: { ...r }, text: () => [head, ...lines].join('\n') };
}

export async function unrequire(p: Parsed, ctx: Ctx): Promise<Output> {
  const [id, ...controls] = p.args as [string, ...string[]];
  const r = await unrequireControls(ctx, id, controls);
  const head = r.removed.length ? `Removed required ${r.removed.join(', ')} from ${id}; approvals voided` : `${id} did not require ${controls.join(', ')}; approvals voided`;
  return { json: { contract: r.contract, removed: r.removed }, text: (paint) => `${head}\n${contractSummary(r.contract, paint)}` };
}

export async function close(p: Parsed, ctx: Ctx): Promise<Output> {
  const [id, reason] = p.args as [string, string];
  const r = await closeContract(ctx, id, reason);
  const head = r.recorded ? `Closed ${id}${r.cancelled_envelopes.length ? ` (cancelled ${r.cancelled_envelopes.join(', ')})` : ''}; \`kair rewind ${id} "<reason>"\` reopens it` : `${id} is already CLOSED; nothing recorded`;
  return { json: { contract: r.contract, recorded: r.recorded, cancelled_envelopes: r.cancelled_envelopes }, text: (paint) => `${head}\n${contractSummary(r.contract, paint)}` };
}

export async function doctor(p: Parsed, ctx: Ctx): Promise<Output> {
  const findings = await doctorApp(ctx, { actorFlag: p.opts.actor as string | undefined, dirFlag: ctx.dirFlag });
  const mark = { pass: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
  const text = () => findings.map((f) => `${mark[f.status]}  ${f.check.padEnd(11)} ${f.message}${f.hint && f.status !== 'pass' ? `\n      → ${f.hint}` : ''}`).join('\n');
  const failed = findings.filter((f) => f.status === 'fail').map((f) => f.check);
  if (failed.length) {
    const e = kairError('DOCTOR_FAILED', `doctor found ${failed.length} failing check(s): ${failed.join(', ')}`, { failed, hint: 'apply the hint of each failing finding, then run `kair doctor` again' });
    e.payload = { findings };
    (e as { text?: string }).text = text();
    throw e;
  }
  return { json: { findings }, text };
}
