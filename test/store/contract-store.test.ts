/**
 * One behaviour suite for the storage port's contract side (`ContractStore`, src/store/port.ts),
 * run over both adapters: `LocalContractStore` on a temporary workspace and `PgEventStore` on a
 * real PostgreSQL (test/helpers/pg.ts). The same drafts must give the same history lines and
 * hashes on both; each backend's own tampering must be found by its chain check.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonText } from '../../src/domain/chain.js';
import type { EventDraft } from '../../src/domain/contract.js';
import { newDpc } from '../../src/domain/dpc.js';
import { kairError } from '../../src/domain/errors.js';
import { decideGrant, decidePropose } from '../../src/domain/lifecycle.js';
import { LocalContractStore } from '../../src/store/fs/adapter.js';
import { localWrites } from '../../src/store/fs/adapter-write.js';
import { paths, workspaceAt } from '../../src/store/fs/workspace.js';
import type { ContractStore, CreateRequest, MutateRequest } from '../../src/store/port.js';
import { PgEventStore } from '../../src/store/pg/event-store.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';
import { usePg, withQuery } from '../helpers/pg.js';
import { rejectionOf } from '../helpers/errors.js';

const pgt = usePg();
afterAll(() => removeTempDirs());

const AT = '2026-01-30T12:00:00.000Z';
const META = { at: AT, actor: 'tester', command: 'grant' };
const DPC = jsonText(newDpc('Ship it', AT));

interface Opened {
  store: ContractStore;
  /** A second writer on the same storage (another process's store). */
  other(): Promise<ContractStore>;
  /**
   * The storage as a new process finds it. The local store remembers, per process, the chains
   * it has checked (a command checks a chain once); a copy of the workspace has other paths.
   */
  reopen(): Promise<ContractStore>;
  /** Edits history event `seq` of `id` where it is stored, keeping it valid JSON. */
  tamper(id: string, seq: number): Promise<void>;
  close(): Promise<void>;
}

interface Backend {
  name: 'local' | 'postgres';
  open(): Promise<Opened>;
}

let schemaN = 0;
const backends: Backend[] = [
  {
    name: 'local',
    open: async () => {
      const root = makeTempDir('kair-port-');
      mkdirSync(join(root, '.kair'), { recursive: true });
      const ws = workspaceAt(root);
      const make = () => new LocalContractStore(ws, { now: () => AT, writes: async () => localWrites });
      return {
        store: make(),
        other: async () => make(),
        reopen: async () => {
          const copy = makeTempDir('kair-port-');
          cpSync(root, copy, { recursive: true });
          return new LocalContractStore(workspaceAt(copy), { now: () => AT, writes: async () => localWrites });
        },
        tamper: async (id, seq) => {
          const file = paths.history(ws, id);
          const lines = readFileSync(file, 'utf8').split('\n');
          lines[seq - 1] = lines[seq - 1]!.replace('"actor":"tester"', '"actor":"mallory"');
          writeFileSync(file, lines.join('\n'));
        },
        close: async () => {},
      };
    },
  },
  {
    name: 'postgres',
    open: async () => {
      const schema = `cs${process.pid}_${++schemaN}`;
      const make = () => PgEventStore.open({ env: { KAIR_DATABASE_URL: pgt.current.url }, urlEnv: 'KAIR_DATABASE_URL', schema, tenant: 'ws-1' });
      const store = await make();
      const others: PgEventStore[] = [];
      return {
        store,
        other: async () => {
          const s = await make();
          others.push(s);
          return s;
        },
        reopen: async () => {
          const s = await make();
          others.push(s);
          return s;
        },
        tamper: async (id, seq) => {
          await withQuery(pgt.current.url, async (c) => {
            // What someone with the table owner's rights can do: lift the trigger, edit, put it back.
            await c.query(`ALTER TABLE ${schema}.history_events DISABLE TRIGGER history_events_no_update`);
            await c.query(`UPDATE ${schema}.history_events SET line = replace(line, '"actor":"tester"', '"actor":"mallory"') WHERE contract_id = $1 AND seq = $2`, [id, seq]);
            await c.query(`ALTER TABLE ${schema}.history_events ENABLE TRIGGER history_events_no_update`);
          });
        },
        close: async () => {
          for (const s of others) await s.close();
          await store.close();
        },
      };
    },
  },
];

const createReq = (id: string, extra: EventDraft[] = []): CreateRequest => ({ id, drafts: (i) => [decidePropose(i, 'Ship it', []), ...extra], meta: META, dpcText: DPC, lockTimeoutMs: 5000 });
const grantReq = (control: string, extra: Partial<MutateRequest<unknown>> = {}): MutateRequest<unknown> => ({
  lockTimeoutMs: 5000,
  meta: META,
  decide: async (b) => b.append([decideGrant(b.contract, 'grant', [control])]),
  ...extra,
});

async function withBackend<T>(b: Backend, fn: (o: Opened) => Promise<T>): Promise<T> {
  const o = await b.open();
  try {
    return await fn(o);
  } finally {
    await o.close();
  }
}

/** History lines per backend, for the same scenario: compared once both have run. */
const linesOf: Partial<Record<Backend['name'], string[]>> = {};

describe.each(backends)('ContractStore on $name', (backend) => {
  it('create: the propose event, snapshot, index row and DPC; a taken id is CONTRACT_EXISTS; a chosen id skips taken ones', async () => {
    await withBackend(backend, async ({ store }) => {
      const made = await store.create(createReq('c1'));
      expect(made.events.map((e) => [e.seq, e.type])).toEqual([[1, 'propose']]);
      expect(made.contract).toMatchObject({ id: 'c1', state: 'DRAFT', version: 1, history_seq: 1 });
      expect(await store.exists('c1')).toBe(true);
      expect(await store.exists('c2')).toBe(false);
      expect(await store.dpc('c1')).toBe(DPC);
      expect(JSON.parse((await store.snapshot('c1'))!)).toEqual(made.contract);
      expect(await store.read('c1')).toEqual(made.contract);
      expect((await rejectionOf(store.create(createReq('c1')))).code).toBe('CONTRACT_EXISTS');
      const chosen = await store.create({ ...createReq('x'), id: async (taken) => ((await taken('c1')) ? 'c1-2' : 'c1') });
      expect(chosen.contract.id).toBe('c1-2');
      expect((await rejectionOf(store.read('nope'))).code).toBe('CONTRACT_NOT_FOUND');
      expect((await rejectionOf(store.mutate('nope', grantReq('ns:a')))).code).toBe('CONTRACT_NOT_FOUND');
    });
  });

  it('mutate: append, putPlan, putDpc and putArtifact commit together; reads return them', async () => {
    await withBackend(backend, async ({ store }) => {
      await store.create(createReq('c1'));
      const plan = '{"steps":[],"title":"t"}\n';
      const sha = 'a'.repeat(64);
      const art = '.kair/contracts/c1/artifacts/run/c1-run-1/run-result.1.json';
      const m = await store.mutate('c1', {
        ...grantReq('ns:a'),
        decide: async (b) => {
          await b.putPlan(sha, plan, '{\n  "title": "t",\n  "steps": []\n}\n');
          await b.putArtifact(art, '{"ok":true}\n');
          const events = await b.append([decideGrant(b.contract, 'grant', ['ns:a'])]);
          await b.putDpc('{"dpc":2}\n');
          return events.length;
        },
      });
      expect(m.result).toBe(1);
      expect(m.events.map((e) => e.type)).toEqual(['grant']);
      expect(m.contract.controls.granted).toEqual(['ns:a']);
      expect(await store.plan('c1', sha)).toBe(plan);
      expect(await store.dpc('c1')).toBe('{"dpc":2}\n');
      expect(await store.artifact(art)).toBe('{"ok":true}\n');
      expect(await store.artifacts('.kair/contracts/c1/artifacts/')).toEqual([art]);
      expect(await store.load('c1')).toEqual(m.contract);
      expect(JSON.parse((await store.snapshot('c1'))!)).toEqual(m.contract);
    });
  });

  it('a gate refusal commits only its gate.blocked event: what the decision queued is not written', async () => {
    await withBackend(backend, async ({ store }) => {
      await store.create(createReq('c1'));
      const e = await rejectionOf(
        store.mutate('c1', {
          ...grantReq('ns:a'),
          decide: async (b) => {
            await b.putDpc('{"dpc":"refused"}\n');
            throw kairError('CONTROLS_MISSING', 'c1 is missing ns:z', { contract_id: 'c1' });
          },
          onRefusal: async (b, err) => void (await b.append([{ type: 'gate.blocked', state: b.contract.state, data: { command: 'grant', code: (err as { code: string }).code } }])),
        }),
      );
      expect(e.code).toBe('CONTROLS_MISSING');
      expect((await store.history('c1')).map((s) => s.event.type)).toEqual(['propose', 'gate.blocked']);
      expect(await store.dpc('c1')).toBe(DPC);
      expect((await store.load('c1')).history_seq).toBe(2);
    });
  });

  it('expectTail: a head that moved is CONCURRENT_WRITE at once, nothing written', async () => {
    await withBackend(backend, async ({ store }) => {
      const c = (await store.create(createReq('c1'))).contract;
      await store.mutate('c1', grantReq('ns:a'));
      const e = await rejectionOf(store.mutate('c1', grantReq('ns:b', { expectTail: { seq: c.history_seq, hash: c.history_head } })));
      expect(e.code).toBe('CONCURRENT_WRITE');
      expect(e.details).toMatchObject({ expected_seq: 1, found_seq: 2 });
      expect((await store.load('c1')).controls.granted).toEqual(['ns:a']);
    });
  });

  it('a writer that cannot get the contract lock within its timeout gets LOCK_BUSY and writes nothing', async () => {
    await withBackend(backend, async ({ store, other }) => {
      await store.create(createReq('c1'));
      const second = await other();
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const holder = store.mutate('c1', { ...grantReq('ns:a'), decide: async (b) => { entered(); await held; return b.append([decideGrant(b.contract, 'grant', ['ns:a'])]); } });
      await inside;
      const e = await rejectionOf(second.mutate('c1', grantReq('ns:b', { lockTimeoutMs: 150 })));
      release();
      await holder;
      expect(e.code).toBe('LOCK_BUSY');
      expect((await store.load('c1')).controls.granted).toEqual(['ns:a']);
    });
  });

  it('a checkpoint event at seq 64 (and a load folds from it); history pages and tails; same lines as the other backend', async () => {
    await withBackend(backend, async ({ store }) => {
      await store.create(createReq('c1'));
      for (let i = 0; i < 69; i++) await store.mutate('c1', grantReq(`ns:g${i}`));
      const all = await store.history('c1');
      expect(all.map((s) => s.event.seq)).toEqual(Array.from({ length: 71 }, (_, i) => i + 1));
      expect(all[63]!.event).toMatchObject({ seq: 64, type: 'checkpoint', data: { through_seq: 63 } });
      expect(all.filter((s) => s.event.type === 'checkpoint')).toHaveLength(1);
      for (const s of all) expect(JSON.parse(s.line)).toEqual(s.event);
      const c = await store.load('c1');
      expect(c.history_seq).toBe(71);
      expect(c.controls.granted).toHaveLength(69);
      expect((await store.history('c1', { afterSeq: 1, limit: 2 })).map((s) => s.event.seq)).toEqual([2, 3]);
      expect((await store.historyTail('c1', 2)).map((s) => [s.event.seq, s.line])).toEqual(all.slice(-2).map((s) => [s.event.seq, s.line]));
      expect(await store.historyTail('c1', 0)).toEqual([]);
      expect(await store.checkChain('c1')).toEqual([]);
      linesOf[backend.name] = all.map((s) => s.line);
    });
  });

  it('listIndex pages by id (after, limit) and filters by state', async () => {
    await withBackend(backend, async ({ store }) => {
      for (const id of ['b', 'a_1', 'c']) await store.create(createReq(id));
      await store.mutate('c', grantReq('ns:a'));
      const rows = await store.listIndex();
      expect(rows.map((r) => r.id)).toEqual(['a_1', 'b', 'c']);
      expect(rows[0]).toEqual({ id: 'a_1', intent: 'Ship it', state: 'DRAFT', version: 1, updated_at: AT });
      expect((await store.listIndex({ limit: 2 })).map((r) => r.id)).toEqual(['a_1', 'b']);
      expect((await store.listIndex({ after: 'a_1', limit: 1 })).map((r) => r.id)).toEqual(['b']);
      expect((await store.listIndex({ after: 'b' })).map((r) => r.id)).toEqual(['c']);
      expect((await store.listIndex({ state: 'APPROVED' })).map((r) => r.id)).toEqual([]);
      expect((await store.listIndex({ state: 'DRAFT', after: 'a_1' })).map((r) => r.id)).toEqual(['b', 'c']);
    });
  });

  it('a history line edited where it is stored is found by checkChain; load and mutate refuse it (INTEGRITY_FAILED)', async () => {
    await withBackend(backend, async ({ store, tamper, reopen }) => {
      await store.create(createReq('c1'));
      await store.mutate('c1', grantReq('ns:a'));
      await store.mutate('c1', grantReq('ns:b'));
      await tamper('c1', 2);
      const fresh = await reopen();
      expect(await fresh.checkChain('c1')).toEqual([expect.objectContaining({ seq: 2, message: expect.stringMatching(/hash does not match/) })]);
      expect((await rejectionOf(fresh.load('c1'))).code).toBe('INTEGRITY_FAILED');
      expect((await rejectionOf(fresh.mutate('c1', grantReq('ns:c')))).code).toBe('INTEGRITY_FAILED');
      expect((await fresh.history('c1')).length).toBe(3);
    });
  });
});

describe('both backends', () => {
  it('the same drafts give byte-identical history lines and hashes (past a checkpoint)', () => {
    expect(linesOf.local).toHaveLength(71);
    expect(linesOf.postgres).toEqual(linesOf.local);
  });
});
