/**
 * `kair head`: one digest over every chain in the workspace (each contract's history and the
 * SQLite chains), to be kept somewhere an attacker cannot rewrite (a CI log, a ticket, a signed
 * tag). `kair verify --since-head DIGEST` proves that every chain still extends what it named:
 * someone who rewrites every file and row consistently is caught by the anchor kept elsewhere.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from '../domain/canonical.js';
import { kairError } from '../domain/errors.js';
import { listContractIds, readTextFile } from '../store/fs/contracts.js';
import { writeFileAtomicSync } from '../store/fs/atomic.js';
import { lastEvent, readHistory } from '../store/fs/history.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';
import type { VerifyResult } from './verify.js';
import { sqliteChains } from './head-sqlite.js';

export interface ChainHead {
  name: string;
  seq: number;
  row_hash: string;
}

export interface HeadPreimage {
  workspace_id: string;
  contracts: { id: string; seq: number; hash: string }[];
  chains: ChainHead[];
}

/**
 * The SQLite chains (the AEC ledger per contract, the change log per tenant): their heads, and
 * whether a chain still holds a given row. Filled in by the module that owns those tables.
 */
export interface ChainSource {
  heads(ctx: Ctx): Promise<ChainHead[]>;
  holds(ctx: Ctx, head: ChainHead): Promise<boolean>;
}
export const chainSources: ChainSource[] = [sqliteChains];

const headsDir = (ctx: Ctx) => join(ctx.ws.kairDir, 'heads');

export async function headPreimage(ctx: Ctx): Promise<HeadPreimage> {
  const contracts: HeadPreimage['contracts'] = [];
  for (const id of listContractIds(ctx.ws)) {
    const file = paths.history(ctx.ws, id);
    if (!existsSync(file)) continue;
    const tail = lastEvent(file);
    if (tail) contracts.push({ id, seq: tail.seq, hash: tail.hash });
  }
  const chains = (await Promise.all(chainSources.map((s) => s.heads(ctx)))).flat().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { workspace_id: ctx.config.workspace_id, contracts, chains };
}

export async function head(ctx: Ctx): Promise<{ digest: string; preimage: HeadPreimage; path: string }> {
  const preimage = await headPreimage(ctx);
  const text = canonicalJson(preimage);
  const digest = sha256Hex(text);
  const file = join(headsDir(ctx), `${digest}.json`);
  writeFileAtomicSync(file, text + '\n');
  return { digest, preimage, path: rel(ctx.ws, file) };
}

/** verify --since-head: the preimage saved for DIGEST must hash to it, and every chain it names must still hold its head. */
export async function checkSinceHead(ctx: Ctx, digest: string, out: VerifyResult): Promise<void> {
  if (!/^[0-9a-f]{64}$/.test(digest)) {
    throw kairError('USAGE_ERROR', `--since-head ${JSON.stringify(digest.slice(0, 80))}: expected a head digest (64 lowercase hex digits, as \`kair head\` prints)`, { flag: '--since-head' });
  }
  const text = readTextFile(join(headsDir(ctx), `${digest}.json`))?.replace(/\n$/, '') ?? null;
  if (text === null || sha256Hex(text) !== digest) {
    out.problems.push({ kind: 'head_unknown', message: `no head ${digest.slice(0, 12)}… is saved in .kair/heads/ (or its record was altered); the chains cannot be checked against it` });
    return;
  }
  const pre = JSON.parse(text) as HeadPreimage;
  if (pre.workspace_id !== ctx.config.workspace_id) {
    out.problems.push({ kind: 'head_unknown', message: `head ${digest.slice(0, 12)}… belongs to workspace ${pre.workspace_id}, not this one` });
    return;
  }
  for (const c of pre.contracts) {
    const file = paths.history(ctx.ws, c.id);
    if (!existsSync(file)) {
      out.problems.push({ contract_id: c.id, kind: 'contract_missing', message: `${c.id} was at event ${c.seq} in head ${digest.slice(0, 12)}… and is gone` });
      continue;
    }
    const at = readHistory(file).events.find((e) => e.seq === c.seq);
    if (!at || at.hash !== c.hash) {
      out.problems.push({ contract_id: c.id, kind: 'chain_broken', message: `the history of ${c.id} no longer extends head ${digest.slice(0, 12)}… (event ${c.seq} ${at ? 'differs' : 'is gone'})` });
    }
  }
  for (const h of pre.chains) {
    let holds = false;
    for (const s of chainSources) holds ||= await s.holds(ctx, h);
    if (!holds) {
      out.problems.push({ kind: 'ledger_chain_broken', message: `chain ${h.name} no longer extends head ${digest.slice(0, 12)}… (row ${h.seq})` });
    }
  }
}
