/** Handlers of `export`, `import` and `artifacts --out` (src/app/transfer.ts, src/app/artifacts-out.ts). */
import type { Ctx } from '../app/context.js';
import { artifactsOut as artifactsOutApp } from '../app/artifacts-out.js';
import { exportWorkspace, importWorkspace } from '../app/transfer.js';
import { kairError } from '../domain/errors.js';
import type { Output } from './registry.js';
import type { Parsed } from './parse.js';

function folderFlag(p: Parsed, key: string, flag: string): string {
  const v = p.opts[key];
  if (typeof v !== 'string') throw kairError('USAGE_ERROR', `${flag} DIR is required`, { flag });
  return v;
}

const rowsLine = (rows: Record<string, number>) => {
  const n = Object.values(rows).reduce((a, b) => a + b, 0);
  return `${n} execution row(s)`;
};

export async function artifactsOut(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await artifactsOutApp(ctx, p.args[0]!, folderFlag(p, 'out', '--out'));
  return {
    json: r,
    text: () => [...r.files.map((f) => `${f.written ? 'wrote    ' : 'unchanged'}  ${r.out.replace(/\/+$/, '')}/${f.path}`), `${r.written} written, ${r.unchanged} unchanged`].join('\n'),
    primary: r.out,
  };
}

export async function exportCmd(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await exportWorkspace(ctx, folderFlag(p, 'to', '--to'));
  return {
    json: r,
    text: () => `exported ${r.contracts} contract(s), ${r.events} event(s) and ${rowsLine(r.rows)} to ${r.workspace} (${r.files} files)\nnext: kair verify --dir ${r.to}`,
    primary: r.workspace,
  };
}

export async function importCmd(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await importWorkspace(ctx, folderFlag(p, 'from', '--from'));
  return {
    json: r,
    text: () => `imported ${r.contracts} contract(s), ${r.events} event(s) and ${rowsLine(r.rows)} from ${r.from}/.kair into workspace ${r.workspace_id} (${r.backend})\nnext: kair verify`,
    primary: r.workspace_id,
  };
}
