/** Handlers of the AEC admin commands: `sim …`, `access …`, `find`. Options → use case → Output. */
import { resolve } from 'node:path';
import * as admin from '../app/aec-admin.js';
import * as ledgerApp from '../app/aec-ledger.js';
import * as sloApp from '../app/slo.js';
import { parseWindow } from '../domain/aec/slo.js';
import type { LedgerStats } from '../lanes/aec/ledger.js';
import type { Ctx } from '../app/context.js';
import type { FinderPacket } from '../domain/aec/finder.js';
import type { StatusCommand } from '../domain/aec/simulation.js';
import { kairError } from '../domain/errors.js';
import type { AccessDecisionKind } from '../lanes/aec/access.js';
import type { SimulationView } from '../lanes/aec/catalog.js';
import type { ChangeLogEntry } from '../lanes/aec/change-log.js';
import type { Paint } from './io.js';
import { intOption, langOption, type Parsed } from './parse.js';
import type { Output } from './registry.js';
import { table } from './render/text.js';

function describeExecutor(s: SimulationView): string {
  return s.executor.kind === 'builtin' ? `builtin ${s.executor.name}` : `command ${JSON.stringify(s.executor.argv)} (timeout ${s.executor.timeout_ms} ms)`;
}

function simulationText(s: SimulationView, p: Paint): string {
  const rows: Array<[string, string]> = [
    ['title', s.title],
    ['impact', s.impact],
    ['access action', s.access_action],
    ...(s.rollback_simulation_id ? [['rollback', s.rollback_simulation_id] as [string, string]] : []),
    ['required fields', s.required_fields.length ? s.required_fields.join(', ') : '(none)'],
    ['executor', describeExecutor(s)],
    ['examples', s.examples.map((e) => JSON.stringify(e)).join(', ')],
    ['registered', `${s.created_at} by ${s.registered_by}`],
    ['updated', s.updated_at],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return [`${p.bold(s.id)}  ${s.status}`, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
}

const simulationOut = (s: SimulationView, headline: string): Output => ({
  json: { simulation: s },
  text: (p) => `${headline}\n${simulationText(s, p)}`,
});

export async function simRegister(p: Parsed, ctx: Ctx): Promise<Output> {
  const file = p.opts.file as string | undefined;
  if (file === undefined) throw kairError('USAGE_ERROR', '`kair sim register` needs --file F (a simulation definition, JSON)', { flag: '--file' });
  const path = resolve(ctx.cwd, file);
  const def = admin.readSimulationFile(ctx, path, file);
  const s = await admin.registerSimulation(ctx, def);
  return simulationOut(s, `Registered ${s.id} (${s.status}); \`kair sim activate ${s.id}\` makes it usable`);
}

export async function simList(_p: Parsed, ctx: Ctx): Promise<Output> {
  const list = await admin.listSimulations(ctx);
  return {
    json: { simulations: list },
    text: (paint) =>
      list.length === 0
        ? 'no simulations registered; `kair sim register --file F` adds one'
        : table(
            list.map((s) => [s.id, s.status, s.impact, s.access_action, s.executor.kind === 'builtin' ? s.executor.name : 'command', s.title]),
            ['ID', 'STATUS', 'IMPACT', 'ACCESS ACTION', 'EXECUTOR', 'TITLE'],
            paint,
          ),
  };
}

export async function simShow(p: Parsed, ctx: Ctx): Promise<Output> {
  const s = await admin.showSimulation(ctx, p.args[0]!);
  return { json: { simulation: s }, text: (paint) => simulationText(s, paint) };
}

export async function simStatus(p: Parsed, ctx: Ctx, command: StatusCommand): Promise<Output> {
  const s = await admin.setSimulationStatus(ctx, p.args[0]!, command);
  return simulationOut(s, `${s.id} is now ${s.status}`);
}

export async function accessSet(p: Parsed, ctx: Ctx, decision: AccessDecisionKind): Promise<Output> {
  const [actor, action] = p.args as [string, string];
  const r = await admin.setAccessRule(ctx, actor, action, decision);
  const verb = { allow: 'may', deny: 'may not', 'require-ap': 'needs an approval (AP) to' }[decision];
  return {
    json: { rule: r.rule, policy_snapshot_version: r.policy_snapshot_version },
    text: () => `${actor} ${verb} ${action} (policy version ${r.policy_snapshot_version})`,
  };
}

export async function accessList(_p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await admin.listAccessRules(ctx);
  return {
    json: { rules: r.rules, policy_snapshot_version: r.policy_snapshot_version },
    text: (paint) =>
      r.rules.length === 0
        ? 'no access rules: every action is denied (fail closed); `kair access allow <actor> <action>` adds one'
        : `${table(
            r.rules.map((x) => [x.actor, x.action, x.decision]),
            ['ACTOR', 'ACTION', 'DECISION'],
            paint,
          )}\npolicy version ${r.policy_snapshot_version}; anything not listed is denied`,
  };
}

function changeLogText(entries: ChangeLogEntry[], paint: Paint, empty: string): string {
  if (entries.length === 0) return empty;
  const step = (k: string, v: unknown) => {
    const fromTo = v as { from?: unknown; to?: unknown } | null;
    return fromTo && typeof fromTo === 'object' && 'to' in fromTo ? `${k} ${String(fromTo.from ?? '-')} → ${String(fromTo.to)}` : `${k} ${JSON.stringify(v)}`;
  };
  const what = (e: ChangeLogEntry) => Object.entries(e.change).map(([k, v]) => step(k, v)).join(', ');
  return table(
    entries.map((e) => [String(e.id), e.changed_at, e.actor, e.action, Object.values(e.key).join(' '), what(e)]),
    ['#', 'AT', 'BY', 'ACTION', 'ROW', 'CHANGE'],
    paint,
  );
}

export async function accessLog(_p: Parsed, ctx: Ctx): Promise<Output> {
  const entries = await admin.accessLog(ctx);
  return { json: { entries }, text: (paint) => changeLogText(entries, paint, 'no access-policy changes recorded') };
}

export async function simLog(p: Parsed, ctx: Ctx): Promise<Output> {
  const id = p.args[0]!;
  const entries = await admin.simLog(ctx, id);
  return { json: { simulation_id: id, entries }, text: (paint) => changeLogText(entries, paint, `no changes of ${id} recorded`) };
}

/** `--field k=v`, repeatable; a key given twice or a value without `=` is a usage error. */
export function parseFields(values: string[] | undefined): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw kairError('USAGE_ERROR', `--field expects key=value, got ${JSON.stringify(v)}`, { flag: '--field', value: v });
    const key = v.slice(0, eq);
    if (Object.hasOwn(fields, key)) throw kairError('USAGE_ERROR', `--field ${key} is given twice`, { flag: '--field', key });
    fields[key] = v.slice(eq + 1);
  }
  return fields;
}

function packetText(k: FinderPacket): string {
  const lines = [`${k.type}  ${k.reason_code}`];
  if ('simulation_id' in k && k.simulation_id !== undefined) lines.push(`  simulation  ${k.simulation_id}`);
  if (k.score_bp !== undefined) lines.push(`  score       ${k.score_bp} bp`);
  if (k.type === 'ClarifyPacket') lines.push(`  question    ${k.question}`);
  if (k.type === 'RefusePacket' || k.type === 'MissingSimulationPacket') lines.push(`  message     ${k.message}`);
  if (k.type === 'SimulationMatchPacket') lines.push(`  fields      ${JSON.stringify(k.required_fields)}`, `  fingerprint ${k.required_fields_fingerprint}`);
  lines.push(`  catalog     ${k.catalog_snapshot_ref}`);
  if (k.candidates.length) lines.push(`  candidates  ${k.candidates.map((c) => `${c.simulation_id} ${c.score_bp}bp ${c.status}`).join(', ')}`);
  return lines.join('\n');
}

export async function find(p: Parsed, ctx: Ctx): Promise<Output> {
  const fields = parseFields(p.opts.field as string[] | undefined);
  const attempt = intOption(p.opts.attempt, '--attempt', 1);
  const lang = langOption(p.opts.lang);
  const packet = await admin.findSimulation(ctx, p.args[0]!, { fields, ...(lang === undefined ? {} : { lang }), ...(attempt === undefined ? {} : { attempt }) });
  return { json: { packet }, text: () => packetText(packet) };
}

export async function aecLedger(p: Parsed, ctx: Ctx): Promise<Output> {
  const rows = await ledgerApp.ledgerRows(ctx, p.args[0]!);
  return {
    json: { rows },
    text: (paint) =>
      rows.length === 0
        ? `no AEC ledger rows for ${p.args[0]}`
        : table(
            rows.map((r) => [String(r.row_id), r.run_id, r.step_id, r.event, String(r.attempt), r.reason_code, r.simulation_id ?? '-', r.idempotency_key.slice(0, 12)]),
            ['ROW', 'RUN', 'STEP', 'EVENT', 'ATTEMPT', 'REASON', 'SIMULATION', 'KEY'],
            paint,
          ),
  };
}

export async function aecRebuild(p: Parsed, ctx: Ctx): Promise<Output> {
  const check = p.opts.check === true;
  const r = await ledgerApp.rebuild(ctx, check);
  return {
    json: { ...r },
    text: () => (check ? `agent_execution_current matches the ledger (${r.rows} step row(s), no drift)` : `rebuilt agent_execution_current from the ledger: ${r.rows} step row(s)`),
  };
}

export async function aecReplay(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await ledgerApp.replay(ctx, p.args[0]!);
  return {
    json: { ...r },
    text: () =>
      r.decisions.length === 0
        ? `${r.run_id}: no AEC decisions to replay`
        : [`${r.run_id}: ${r.decisions.length} decision(s) replay the same`, ...r.decisions.map((d) => `  row ${d.row_id}  ${d.step_id}  ${d.recorded.dispatch ? 'dispatch' : d.recorded.reason_code}`)].join('\n'),
  };
}

const statsLines = (s: LedgerStats): string[] => {
  const ms = (v: number | null) => (v === null ? '-' : `${v} ms`);
  return [
    `dispatches              ${s.dispatches} (succeeded ${s.succeeded}, failed ${s.failed}, timed out ${s.timed_out}, rejected ${s.rejected}, in doubt ${s.in_doubt})`,
    `replayed / halted       ${s.replayed} / ${s.halted}`,
    `dispatch latency        p50 ${ms(s.dispatch_latency_ms.p50)}, p95 ${ms(s.dispatch_latency_ms.p95)}, p99 ${ms(s.dispatch_latency_ms.p99)}`,
    `execution error rate    ${(s.execution_error_rate * 100).toFixed(2)}%`,
    `duplicate side effects  ${s.duplicate_side_effects}`,
  ];
};

export async function aecStats(p: Parsed, ctx: Ctx): Promise<Output> {
  const windowText = p.opts.window as string | undefined;
  if (p.opts.check === true) return sloCheckOutput(ctx, windowText);
  const since = windowText === undefined ? undefined : windowStart(ctx, windowText);
  const s = await ledgerApp.stats(ctx, since);
  return { json: { stats: s }, text: () => statsLines(s).join('\n') };
}

function windowStart(ctx: Ctx, windowText: string): string {
  return new Date(Date.parse(ctx.now()) - parseWindow(windowText)).toISOString();
}

async function sloCheckOutput(ctx: Ctx, windowText: string | undefined): Promise<Output> {
  const c = await sloApp.sloCheck(ctx, windowText);
  return {
    json: { ...c },
    text: () =>
      [
        c.breaches.length === 0 ? `SLO met over the last ${c.window} (since ${c.since})` : `SLO breached over the last ${c.window} (since ${c.since}), waived until ${c.waiver!.until} by ${c.waiver!.created_by}: ${c.waiver!.reason}`,
        ...c.breaches.map((b) => `  breach  ${sloApp.describeBreach(b)}`),
        ...statsLines(c.stats),
        ...c.warnings.filter((w) => w.kind !== 'waived').map((w) => `warning: ${w.message}`),
      ].join('\n'),
  };
}

export async function aecWaiverAdd(p: Parsed, ctx: Ctx): Promise<Output> {
  const w = await sloApp.addWaiver(ctx, p.opts.until as string | undefined, p.opts.reason as string | undefined);
  return { json: { waiver: w }, text: () => `${w.id}: the SLO gate is waived until ${w.until} (by ${w.created_by}: ${w.reason})` };
}

export async function aecWaiverList(_p: Parsed, ctx: Ctx): Promise<Output> {
  const list = await sloApp.waivers(ctx);
  return {
    json: { waivers: list },
    text: (paint) =>
      list.length === 0
        ? 'no SLO waivers; an admin adds one with `kair aec waiver add --until <time> --reason "<why>"`'
        : table(
            list.map((w) => [w.id, w.until, w.active ? 'active' : w.logged ? 'expired' : 'NOT LOGGED', w.created_by, w.reason]),
            ['ID', 'UNTIL', 'STATE', 'BY', 'REASON'],
            paint,
          ),
  };
}

export async function intakeList(_p: Parsed, ctx: Ctx): Promise<Output> {
  const rows = await ledgerApp.intake(ctx);
  return {
    json: { intake: rows.map((r) => ({ id: r.id, contract_id: r.contract_id, step_id: r.step_id, utterance: r.utterance, created_at: r.created_at, run_id: r.run_id, fields: r.fields, lang: r.lang })) },
    text: (paint) =>
      rows.length === 0
        ? 'dev intake is empty'
        : table(
            rows.map((r) => [r.id, r.contract_id, r.step_id, r.utterance, r.created_at]),
            ['ID', 'CONTRACT', 'STEP', 'UTTERANCE', 'CREATED'],
            paint,
          ),
  };
}
