/**
 * The local adapter of the storage port's contract side (`ContractStore`, src/store/port.ts):
 * `.kair/contracts/<id>/` folders, their history.jsonl, snapshots, plans, DPC and run artifacts,
 * and the index (docs/decisions/032-contract-side-on-the-port.md).
 *
 * This half reads and is bundled with the read path (dist/kair.cjs: status, list, history…), so
 * it loads no lock library, no atomic writer and no hashing. Writing (`mutate`, `create`) and the
 * chain-checked `load` are in adapter-write.ts, reached through `writes`, which the CLI serves
 * from the lifecycle bundle: a read command never loads them.
 */
import { readdirSync } from 'node:fs';
import type { Contract, HistoryEvent } from '../../domain/contract.js';
import type { ChainIssue, ContractStore, CreateRequest, IndexRow, MutateRequest, Mutation, StoredEvent } from '../port.js';
import { assertContract, contractExists, indexEntry, listContractIds, loadContract, readTextFile } from './contracts.js';
import { readHistoryText, readHistoryTail } from './history.js';
import { folderExists, readIndexMerged, readIndexPage } from './index-read.js';
import type { Workspace } from './workspace.js';
import { paths } from './workspace.js';

/** The writing half (adapter-write.ts), loaded when a command first writes or loads for writing. */
export interface LocalWriteSide {
  mutate<T>(id: string, req: MutateRequest<T>): Promise<Mutation<T>>;
  create(req: CreateRequest): Promise<{ contract: Contract; events: HistoryEvent[] }>;
  load(id: string): Promise<Contract>;
  checkChain(id: string): ChainIssue[];
}

export type LocalWritesFactory = (ws: Workspace, o: LocalStoreOptions) => LocalWriteSide;

export interface LocalStoreOptions {
  /** The clock the lock's holder record is stamped with. */
  now: () => string;
  /** Provides the writing half (the CLI loads it from the lifecycle bundle; tests import it). */
  writes: () => Promise<LocalWritesFactory>;
}

export class LocalContractStore implements ContractStore {
  private side: LocalWriteSide | undefined;

  constructor(
    readonly ws: Workspace,
    private readonly o: LocalStoreOptions,
  ) {}

  private async writer(): Promise<LocalWriteSide> {
    return (this.side ??= (await this.o.writes())(this.ws, this.o));
  }

  async exists(id: string): Promise<boolean> {
    return contractExists(this.ws, id);
  }

  async create(req: CreateRequest): Promise<{ contract: Contract; events: HistoryEvent[] }> {
    return (await this.writer()).create(req);
  }

  async mutate<T>(id: string, req: MutateRequest<T>): Promise<Mutation<T>> {
    return (await this.writer()).mutate(id, req);
  }

  async load(id: string): Promise<Contract> {
    return (await this.writer()).load(id);
  }

  async read(id: string): Promise<Contract> {
    assertContract(this.ws, id);
    return loadContract(this.ws, id).contract;
  }

  async snapshot(id: string): Promise<string | null> {
    return readTextFile(paths.snapshot(this.ws, id));
  }

  async history(id: string, page: { afterSeq?: number; limit?: number } = {}): Promise<StoredEvent[]> {
    const read = readHistoryText(paths.history(this.ws, id));
    const out: StoredEvent[] = [];
    const after = page.afterSeq ?? 0;
    for (let j = 0; j < read.events.length && (page.limit === undefined || out.length < page.limit); j++) {
      const event = read.events[j]!;
      if (event.seq <= after) continue;
      const start = read.starts[j]!;
      out.push({ line: read.text.slice(start, read.text.indexOf('\n', start)), event });
    }
    return out;
  }

  /**
   * Reads only the file's tail. Its lines are given as kair writes them (JSON.stringify of the
   * event): the same text for every line kair wrote; `history` gives the stored text exactly.
   */
  async historyTail(id: string, n: number): Promise<StoredEvent[]> {
    if (n <= 0) return [];
    const file = paths.history(this.ws, id);
    const last = readHistoryTail(file, 1).events.at(-1)?.seq ?? 0;
    const events = readHistoryTail(file, Math.max(1, last - n + 1)).events.slice(-n);
    return events.map((event) => ({ line: JSON.stringify(event), event }));
  }

  async checkChain(id: string): Promise<ChainIssue[]> {
    return (await this.writer()).checkChain(id);
  }

  /**
   * The contract folders are the truth; the index only saves loading each one. A page reads the
   * index logs and the checkpoint lines it needs (decision 028); without a pageable checkpoint,
   * or without a limit, the index is read whole and checked against one readdir of the folders.
   */
  async listIndex(page: { after?: string; limit?: number; state?: string } = {}): Promise<IndexRow[]> {
    const ws = this.ws;
    if (page.limit !== undefined) {
      const p = readIndexPage(ws, { after: page.after, limit: page.limit, state: page.state, exists: (id) => folderExists(ws, id) });
      if (p) return p.entries.map(row);
    }
    const byId = new Map<string, IndexRow>(readIndexMerged(ws).entries.map((e) => [e.id, e]));
    // One readdir, not a stat per entry: with 10,000 contracts the stats were most of `list`'s time.
    const folders = new Set(listContractIds(ws));
    for (const id of [...byId.keys()]) if (!folders.has(id)) byId.delete(id);
    // Contracts the index has not caught up with yet (an index deleted or edited by hand).
    for (const id of folders) {
      if (byId.has(id) || !contractExists(ws, id)) continue;
      try {
        byId.set(id, indexEntry(loadContract(ws, id).contract));
      } catch {
        /* verify reports broken contracts */
      }
    }
    let rows = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (page.state !== undefined) rows = rows.filter((r) => r.state === page.state);
    if (page.after !== undefined) rows = rows.filter((r) => r.id > page.after!);
    return (page.limit === undefined ? rows : rows.slice(0, page.limit)).map(row);
  }

  async plan(id: string, sha: string): Promise<string | null> {
    return readTextFile(paths.planBySha(this.ws, id, sha));
  }

  async currentPlan(id: string): Promise<string | null> {
    return readTextFile(paths.plan(this.ws, id));
  }

  async dpc(id: string): Promise<string | null> {
    return readTextFile(paths.dpc(this.ws, id));
  }

  async artifact(path: string): Promise<string | null> {
    if (!safeRelative(path)) return null;
    return readTextFile(`${this.ws.root}/${path}`);
  }

  async artifacts(prefix: string): Promise<string[]> {
    if (!safeRelative(prefix)) return [];
    const out: string[] = [];
    const walk = (dir: string) => {
      let names;
      try {
        names = readdirSync(`${this.ws.root}/${dir}`, { withFileTypes: true });
      } catch {
        return;
      }
      for (const n of names) {
        const p = `${dir}/${n.name}`;
        if (n.isDirectory()) walk(p);
        else if (n.isFile() && p.startsWith(prefix)) out.push(p);
      }
    };
    // The folder that holds the prefix: `.kair/contracts/c1/artifacts/run/` or a file name's start.
    walk(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix.slice(0, Math.max(0, prefix.lastIndexOf('/'))));
    return out.sort();
  }
}

/** Workspace-relative, forward slashes, inside `.kair/`: never `..`, never absolute. */
function safeRelative(p: string): boolean {
  return p.startsWith('.kair/') && !p.split('/').some((s) => s === '..' || s === '.') && !p.includes('\\') && !p.includes('\0');
}

function row(r: IndexRow): IndexRow {
  return { id: r.id, intent: r.intent, state: r.state, version: r.version, updated_at: r.updated_at };
}
