/**
 * The simulation catalog (SPEC §9.1): a repository over the `simulations` table. Definitions
 * are validated before they get here (domain/aec/simulation.ts); only the status changes later.
 */
import type { CatalogEntry } from '../../domain/aec/finder.js';
import { toCatalogEntry } from '../../domain/aec/finder.js';
import type { SimulationDefinition, SimulationStatus } from '../../domain/aec/simulation.js';
import { kairError } from '../../domain/errors.js';
import type { Db } from '../../store/sqlite/db.js';
import { logChange } from './change-log.js';

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

export interface CatalogRepo {
  /** Inserts as `Draft`; SIMULATION_EXISTS (exit 3) when the id is taken. */
  registerSimulation(def: SimulationDefinition, by: { actor: string; now: string; tenant?: string }): SimulationView;
  getSimulation(id: string): SimulationView | undefined;
  /** Sorted by id. */
  listSimulations(): SimulationView[];
  /** SIMULATION_NOT_FOUND (exit 4) for an unknown id. Setting the current status is a no-op write of updated_at. */
  setStatus(id: string, status: SimulationStatus, now: string, by?: { actor: string; tenant?: string }): SimulationView;
  /** The whole catalog as the Finder sees it. */
  catalogEntries(): CatalogEntry[];
}

export function notFound(id: string) {
  return kairError('SIMULATION_NOT_FOUND', `no simulation ${JSON.stringify(id)}; see \`kair sim list\``, { simulation_id: id });
}

const STATUS_ACTIONS: Record<SimulationStatus, string> = { Draft: 'draft', Active: 'activate', Deprecated: 'deprecate', Disabled: 'disable' };

const catalogRepos = new WeakMap<Db, CatalogRepo>();

/** One repository (and one set of prepared statements) per connection. */
export function catalogRepo(db: Db): CatalogRepo {
  let r = catalogRepos.get(db);
  if (!r) catalogRepos.set(db, (r = makeCatalogRepo(db)));
  return r;
}

function makeCatalogRepo(db: Db): CatalogRepo {
  const insert = db.prepare(
    'INSERT INTO simulations (id, definition, status, created_at, updated_at, registered_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
  );
  const get = db.prepare<[string], Row>('SELECT id, definition, status, created_at, updated_at, registered_by FROM simulations WHERE id = ?');
  const all = db.prepare<[], Row>('SELECT id, definition, status, created_at, updated_at, registered_by FROM simulations ORDER BY id');
  const update = db.prepare('UPDATE simulations SET status = ?, updated_at = ? WHERE id = ?');

  const repo: CatalogRepo = {
    registerSimulation(def, by) {
      return db
        .transaction(() => {
          const r = insert.run(def.id, JSON.stringify(def), 'Draft', by.now, by.now, by.actor);
          if (r.changes === 0) {
            throw kairError('SIMULATION_EXISTS', `simulation ${JSON.stringify(def.id)} is already registered; definitions never change (register a new id)`, { simulation_id: def.id });
          }
          logChange(db, { tenant: by.tenant ?? '', table: 'simulations', action: 'register', actor: by.actor, at: by.now, change: { status: { from: null, to: 'Draft' } } }, { id: def.id });
          return toView(get.get(def.id)!);
        })
        .immediate();
    },
    getSimulation(id) {
      const r = get.get(id);
      return r ? toView(r) : undefined;
    },
    listSimulations() {
      return all.all().map(toView);
    },
    setStatus(id, status, now, by = { actor: 'unknown' }) {
      return db
        .transaction(() => {
          const before = get.get(id);
          if (update.run(status, now, id).changes === 0) throw notFound(id);
          logChange(db, { tenant: by.tenant ?? '', table: 'simulations', action: STATUS_ACTIONS[status], actor: by.actor, at: now, change: { status: { from: before!.status, to: status } } }, { id });
          return toView(get.get(id)!);
        })
        .immediate();
    },
    catalogEntries() {
      return repo.listSimulations().map(toCatalogEntry);
    },
  };
  return repo;
}
