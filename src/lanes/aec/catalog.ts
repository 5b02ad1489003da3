/**
 * The simulation catalog (SPEC §9.1): a repository over the `simulations` table. Definitions
 * are validated before they get here (domain/aec/simulation.ts); only the status changes later.
 */
import type { CatalogEntry } from '../../domain/aec/finder.js';
import { toCatalogEntry } from '../../domain/aec/finder.js';
import type { SimulationDefinition, SimulationStatus } from '../../domain/aec/simulation.js';
import { kairError } from '../../domain/errors.js';
import type { SqlExecutor } from '../../store/port.js';
import type { Db } from '../../store/sqlite/db.js';
import { logChange, logChangeSync } from './change-log.js';

/** What `sim show`/`sim list` print: the definition plus its catalog bookkeeping. */
export type SimulationView = SimulationDefinition & {
  status: SimulationStatus;
  created_at: string;
  updated_at: string;
  registered_by: string;
};

interface Row {
  id: string;
  definition: string;
  status: SimulationStatus;
  created_at: string;
  updated_at: string;
  registered_by: string;
}

const toView = (r: Row): SimulationView => ({
  ...(JSON.parse(r.definition) as SimulationDefinition),
  status: r.status,
  created_at: r.created_at,
  updated_at: r.updated_at,
  registered_by: r.registered_by,
});

/** Over the caller's transaction: a change and its change-log row commit together. */
export interface CatalogRepo {
  /** Inserts as `Draft`; SIMULATION_EXISTS (exit 3) when the id is taken. */
  registerSimulation(def: SimulationDefinition, by: { actor: string; now: string; tenant?: string }): Promise<SimulationView>;
  getSimulation(id: string): Promise<SimulationView | undefined>;
  /** Sorted by id. */
  listSimulations(): Promise<SimulationView[]>;
  /** SIMULATION_NOT_FOUND (exit 4) for an unknown id. Setting the current status is a no-op write of updated_at. */
  setStatus(id: string, status: SimulationStatus, now: string, by?: { actor: string; tenant?: string }): Promise<SimulationView>;
  /** The whole catalog as the Finder sees it. */
  catalogEntries(): Promise<CatalogEntry[]>;
}

export function notFound(id: string) {
  return kairError('SIMULATION_NOT_FOUND', `no simulation ${JSON.stringify(id)}; see \`kair sim list\``, { simulation_id: id });
}

const STATUS_ACTIONS: Record<SimulationStatus, string> = { Draft: 'draft', Active: 'activate', Deprecated: 'deprecate', Disabled: 'disable' };

const COLUMNS = 'id, definition, status, created_at, updated_at, registered_by';
const INSERT = `INSERT INTO simulations (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`;
const GET = `SELECT ${COLUMNS} FROM simulations WHERE id = ?`;
const ALL = `SELECT ${COLUMNS} FROM simulations ORDER BY id`;
const SET_STATUS = 'UPDATE simulations SET status = ?, updated_at = ? WHERE id = ?';
const exists = (id: string) => kairError('SIMULATION_EXISTS', `simulation ${JSON.stringify(id)} is already registered; definitions never change (register a new id)`, { simulation_id: id });

/**
 * The catalog over a raw local connection, synchronous, each change its own BEGIN IMMEDIATE
 * transaction: what in-process tests (the acceptance tests' executor checks) use to set up a
 * catalog. Same SQL as the port's repository; kair's commands use that one.
 */
export interface LocalCatalogRepo {
  registerSimulation(def: SimulationDefinition, by: { actor: string; now: string; tenant?: string }): SimulationView;
  getSimulation(id: string): SimulationView | undefined;
  listSimulations(): SimulationView[];
  setStatus(id: string, status: SimulationStatus, now: string, by?: { actor: string; tenant?: string }): SimulationView;
}

/** A better-sqlite3 connection rather than a port executor (which has no `prepare`). */
export const isLocalDb = (x: SqlExecutor | Db): x is Db => typeof (x as Partial<Db>).prepare === 'function';

function localCatalogRepo(db: Db): LocalCatalogRepo {
  const get = (id: string) => db.prepare(GET).get(id) as Row | undefined;
  return {
    registerSimulation: (def, by) =>
      db
        .transaction(() => {
          if (db.prepare(INSERT).run(def.id, JSON.stringify(def), 'Draft', by.now, by.now, by.actor).changes === 0) throw exists(def.id);
          logChangeSync(db, { tenant: by.tenant ?? '', table: 'simulations', action: 'register', actor: by.actor, at: by.now, change: { status: { from: null, to: 'Draft' } } }, { id: def.id });
          return toView(get(def.id)!);
        })
        .immediate(),
    getSimulation: (id) => {
      const r = get(id);
      return r ? toView(r) : undefined;
    },
    listSimulations: () => (db.prepare(ALL).all() as Row[]).map(toView),
    setStatus: (id, status, now, by = { actor: 'unknown' }) =>
      db
        .transaction(() => {
          const before = get(id);
          if (db.prepare(SET_STATUS).run(status, now, id).changes === 0) throw notFound(id);
          logChangeSync(db, { tenant: by.tenant ?? '', table: 'simulations', action: STATUS_ACTIONS[status], actor: by.actor, at: now, change: { status: { from: before!.status, to: status } } }, { id });
          return toView(get(id)!);
        })
        .immediate(),
  };
}

/** Over the port (in the caller's transaction), or over a raw local connection (the synchronous facade above). */
export function catalogRepo(sql: SqlExecutor): CatalogRepo;
export function catalogRepo(db: Db): LocalCatalogRepo;
export function catalogRepo(x: SqlExecutor | Db): CatalogRepo | LocalCatalogRepo {
  return isLocalDb(x) ? localCatalogRepo(x) : portCatalogRepo(x);
}

function portCatalogRepo(sql: SqlExecutor): CatalogRepo {
  const get = (id: string) => sql.get<Row>(GET, [id]);
  const repo: CatalogRepo = {
    async registerSimulation(def, by) {
      if ((await sql.run(INSERT, [def.id, JSON.stringify(def), 'Draft', by.now, by.now, by.actor])).changes === 0) throw exists(def.id);
      await logChange(sql, { tenant: by.tenant ?? '', table: 'simulations', action: 'register', actor: by.actor, at: by.now, change: { status: { from: null, to: 'Draft' } } }, { id: def.id });
      return toView((await get(def.id))!);
    },
    async getSimulation(id) {
      const r = await get(id);
      return r ? toView(r) : undefined;
    },
    async listSimulations() {
      return (await sql.all<Row>(ALL)).map(toView);
    },
    async setStatus(id, status, now, by = { actor: 'unknown' }) {
      const before = await get(id);
      if ((await sql.run(SET_STATUS, [status, now, id])).changes === 0) throw notFound(id);
      await logChange(sql, { tenant: by.tenant ?? '', table: 'simulations', action: STATUS_ACTIONS[status], actor: by.actor, at: now, change: { status: { from: before!.status, to: status } } }, { id });
      return toView((await get(id))!);
    },
    async catalogEntries() {
      return (await repo.listSimulations()).map(toCatalogEntry);
    },
  };
  return repo;
}
