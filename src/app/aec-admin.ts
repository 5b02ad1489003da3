/**
 * Use cases of the AEC admin commands (SPEC §5, §9.1, §9.2, §9.5): the simulation catalog, the
 * access policy and `find`. None needs a contract; all need the workspace. The execution store
 * is opened per call and closed after (./db.ts), each use case one transaction. Read-only use cases never create the
 * database: with none yet, the catalog and the policy are empty.
 */
import type { FinderPacket } from '../domain/aec/finder.js';
import { find as runFinder } from '../domain/aec/finder.js';
import type { SimulationDefinition, StatusCommand } from '../domain/aec/simulation.js';
import { STATUS_COMMANDS, parseSimulationText, simulationTooLarge } from '../domain/aec/simulation.js';
import { kairError } from '../domain/errors.js';
import type { AccessDecisionKind, AccessRule } from '../lanes/aec/access.js';
import { accessRepo } from '../lanes/aec/access.js';
import type { SimulationView } from '../lanes/aec/catalog.js';
import { catalogRepo, notFound } from '../lanes/aec/catalog.js';
import type { ChangeLogEntry } from '../lanes/aec/change-log.js';
import { changeLog, rowKey, toEntry } from '../lanes/aec/change-log.js';
import { readInputFile } from '../store/fs/input.js';
import { assertAdminHere } from './actors.js';
import type { Ctx } from './context.js';
import { inputLimit } from './context.js';
import { inExistingTransaction, inTransaction, readOnlyTransaction } from './db.js';

/** `sim register --file F`: the definition from a regular file within `limits.max_input_bytes`. */
export function readSimulationFile(ctx: Ctx, path: string, shown: string): SimulationDefinition {
  return parseSimulationText(readInputFile(path, { flag: '--file', shown, limit: inputLimit(ctx), tooLarge: simulationTooLarge(shown) }), shown);
}

export async function registerSimulation(ctx: Ctx, def: SimulationDefinition): Promise<SimulationView> {
  assertAdminHere(ctx, `register simulation ${def.id}`);
  return inTransaction(ctx, (sql) => catalogRepo(sql).registerSimulation(def, { actor: ctx.actor(), now: ctx.now(), tenant: ctx.config.workspace_id }));
}

export function listSimulations(ctx: Ctx): Promise<SimulationView[]> {
  return readOnlyTransaction(ctx, () => [], (sql) => catalogRepo(sql).listSimulations());
}

export async function showSimulation(ctx: Ctx, id: string): Promise<SimulationView> {
  const s = await readOnlyTransaction(ctx, () => undefined, (sql) => catalogRepo(sql).getSimulation(id));
  if (!s) throw notFound(id);
  return s;
}

export async function setSimulationStatus(ctx: Ctx, id: string, command: StatusCommand): Promise<SimulationView> {
  assertAdminHere(ctx, `${command} simulation ${JSON.stringify(id)}`);
  return inExistingTransaction(
    ctx,
    () => {
      throw notFound(id);
    },
    (sql) => catalogRepo(sql).setStatus(id, STATUS_COMMANDS[command], ctx.now(), { actor: ctx.actor(), tenant: ctx.config.workspace_id }),
  );
}

const POLICY_NAME = /^[^\s]{1,200}$/;

export async function setAccessRule(ctx: Ctx, actor: string, action: string, decision: AccessDecisionKind): Promise<{ rule: AccessRule; policy_snapshot_version: number }> {
  for (const [what, v] of [['actor', actor], ['action', action]] as const) {
    if (!POLICY_NAME.test(v)) throw kairError('USAGE_ERROR', `<${what}> must be 1 to 200 characters without spaces, got ${JSON.stringify(v)}`, { argument: what, value: v });
  }
  assertAdminHere(ctx, `change the access policy (${decision} ${JSON.stringify(actor)} ${JSON.stringify(action)})`);
  return inTransaction(ctx, (sql) => accessRepo(sql).setRule(actor, action, decision, { actor: ctx.actor(), now: ctx.now(), tenant: ctx.config.workspace_id }));
}

export function listAccessRules(ctx: Ctx): Promise<{ rules: AccessRule[]; policy_snapshot_version: number }> {
  return readOnlyTransaction(
    ctx,
    () => ({ rules: [], policy_snapshot_version: 0 }),
    async (sql) => {
      const repo = accessRepo(sql);
      return { rules: (await repo.listRules()).map(({ actor, action, decision }) => ({ actor, action, decision })), policy_snapshot_version: await repo.policyVersion() };
    },
  );
}

/** `kair access log`: every access-policy change, oldest first. */
export function accessLog(ctx: Ctx): Promise<ChangeLogEntry[]> {
  return readOnlyTransaction(ctx, () => [], async (sql) => (await changeLog(sql, { table: 'access_policy' })).map(toEntry));
}

/** `kair sim log <id>`: every change of one simulation, oldest first (SIMULATION_NOT_FOUND when it has none). */
export async function simLog(ctx: Ctx, id: string): Promise<ChangeLogEntry[]> {
  const { entries, sim } = await readOnlyTransaction(
    ctx,
    () => ({ entries: [], sim: undefined }),
    async (sql) => ({ entries: (await changeLog(sql, { table: 'simulations', key: rowKey('simulations', { id }) })).map(toEntry), sim: await catalogRepo(sql).getSimulation(id) }),
  );
  if (entries.length === 0 && !sim) throw notFound(id);
  return entries;
}

export interface FindOptions {
  fields: Record<string, string>;
  lang?: string;
  attempt?: number;
}

/** Runs the Finder only: never dispatches, never writes. */
export async function findSimulation(ctx: Ctx, utterance: string, o: FindOptions): Promise<FinderPacket> {
  const catalog = await readOnlyTransaction(ctx, () => [], (sql) => catalogRepo(sql).catalogEntries());
  return runFinder({ utterance, fields: o.fields, ...(o.lang === undefined ? {} : { lang: o.lang }), ...(o.attempt === undefined ? {} : { attempt: o.attempt }) }, catalog);
}
