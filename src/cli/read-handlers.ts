/** Handlers of read-only commands: no zod, no SQLite, no lock library on these paths. */
import type { Ctx } from '../app/context.js';
import type { Contract } from '../domain/contract.js';
import * as read from '../app/read.js';
import type { Output } from './registry.js';
import type { Parsed } from './parse.js';
import { intOption } from './parse.js';
import { contractSummary, stateColor, table } from './render/text.js';
import { VERSION, SCHEMA_VERSIONS } from '../version.js';

export async function status(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await read.status(ctx, p.args[0]!);
  const { statusExtras } = await import('../app/status-extras.js');
  const { nextLines, runHeadline, runLines } = await import('./run-lines.js');
  const x = await statusExtras(ctx, r.contract as Contract);
  return {
    json: { contract: r.contract, ...x },
    text: (paint) =>
      [
        contractSummary(r.contract, paint),
        ...(x.last_run ? [`  last run  ${runHeadline(x.last_run)}`, ...(x.last_run.status !== 'COMPLETED' ? [`            ${runLines(x.last_run, paint).split('\n').join('\n            ')}`] : [])] : []),
        ...(x.next.length ? [`  next      ${nextLines(x.next, paint).split('\n').join('\n            ')}`] : []),
      ].join('\n'),
  };
}

export async function list(p: Parsed, ctx: Ctx): Promise<Output> {
  const limit = intOption(p.opts.limit, '--limit', 1);
  const r = await read.list(ctx, { state: p.opts.state as string | undefined, limit, after: p.opts.after as string | undefined });
  const more = r.next_after ? `\n(more: kair list --limit ${limit} --after ${r.next_after})` : '';
  return {
    json: r,
    text: (paint) =>
      (r.contracts.length === 0
        ? p.opts.state !== undefined
          ? `no contracts in state ${String(p.opts.state).toUpperCase()} (\`kair list\` shows all)`
          : 'no contracts yet — start with `kair propose "<intent>"`'
        : table(
            r.contracts.map((c) => [c.id, stateColor(c.state, paint), `v${c.version}`, c.updated_at, c.intent]),
            ['ID', 'STATE', 'VER', 'UPDATED', 'INTENT'],
            paint,
          )) + more,
  };
}

export async function history(p: Parsed, ctx: Ctx): Promise<Output> {
  const limit = intOption(p.opts.limit, '--limit');
  const r = await read.history(ctx, p.args[0]!, { limit });
  return {
    json: r,
    text: (paint) =>
      table(
        r.events.map((e) => [String(e.seq), e.at, e.type, e.actor, stateColor(e.state, paint), describe(e)]),
        ['SEQ', 'AT', 'TYPE', 'ACTOR', 'STATE', 'DETAIL'],
        paint,
      ),
  };
}

function describe(e: { type: string; data: Record<string, unknown> }): string {
  const d = e.data;
  if (typeof d.message === 'string') return d.message;
  if (e.type === 'gate.blocked') return `${d.command}: ${d.code}`;
  if (e.type === 'unlock') {
    const h = d.holder as { pid: number; host: string } | null;
    return `${d.lock} removed${h ? ` (held by pid ${h.pid} on ${h.host})` : ' (no holder record)'}`;
  }
  if (Array.isArray(d.controls)) return (d.controls as string[]).join(', ');
  if (typeof d.plan_sha256 === 'string') return `plan ${(d.plan_sha256 as string).slice(0, 12)}`;
  if (typeof d.reason === 'string') return d.reason;
  if (typeof d.run_id === 'string') return d.run_id as string;
  if (typeof d.kind === 'string') return d.kind as string;
  return '';
}

export async function artifacts(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await read.artifacts(ctx, p.args[0]!);
  return { json: r, text: (paint) => table(r.artifacts.map((x) => [x.kind, x.path]), ['KIND', 'PATH'], paint) };
}

export async function version(): Promise<Output> {
  const doc = { version: VERSION, node: process.versions.node, schema_versions: SCHEMA_VERSIONS };
  return { json: doc, text: () => `kair ${VERSION} (node ${process.versions.node})` };
}

export async function ids(_p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await read.list(ctx, {});
  return { json: { ids: r.contracts.map((c) => c.id) }, text: () => r.contracts.map((c) => c.id).join('\n') };
}
