/**
 * The table that drives the crash harness: for each mutating command, the pre-state it is
 * killed in, the command, and the next command(s) of the same kind that must succeed or recover.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Json } from '../helpers/cli.js';
import { ROOT } from '../helpers/cli.js';
import type { CrashCase, KillContext, Outcome, Problems } from './harness.js';
import { describeOutcome, historyLines, kairJson, makeTemp, readRows, succeededPerKey } from './harness.js';

const PLANS = join(ROOT, 'fixtures', 'plans');
const SIMS = join(ROOT, 'fixtures', 'simulations');
const ID = 'c1';

/** Inputs the cases read, written once into a folder outside every workspace. */
export const inputs = makeTemp('kair-crash-inputs-');

const NOTE_SIM = {
  id: 'send-note',
  title: 'Send a note',
  examples: ['send the note', 'send note'],
  required_fields: ['path', 'content'],
  impact: 'impactful',
  rollback_simulation_id: 'void-invoice',
  access_action: 'note:send',
  executor: { kind: 'builtin', name: 'write_file' },
};
// write_file has side effects: side_effecting (confirmed, no rollback needed).
const FILE_SIM = { ...NOTE_SIM, id: 'file-note', title: 'File a note', examples: ['file the note', 'file a note'], impact: 'side_effecting', access_action: 'note:file' };
delete (FILE_SIM as Partial<typeof NOTE_SIM>).rollback_simulation_id;
// A note whose sending can be undone: its rollback overwrites the file (write_file, so it has effects).
const UNSEND_SIM = { ...NOTE_SIM, id: 'unsend-note', title: 'Unsend a note', examples: ['unsend note'], access_action: 'note:unsend' };
const RECALLABLE_SIM = { ...NOTE_SIM, id: 'send-recallable', title: 'Send a recallable note', examples: ['send the recallable note'], rollback_simulation_id: 'unsend-note' };
const LATE_SIM = { ...FILE_SIM, id: 'late-note', title: 'A late note', examples: ['late note'], access_action: 'note:late' };

const bothLanes = (utterance: string, path: string) => ({
  version: 'kair.plan.v1',
  title: 'Both lanes',
  strategy: 'CUSTOM',
  details: { requiresKimi: true, features: ['chat'] },
  scopes: ['custom_logic'],
  budget: { maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600 },
  steps: [
    { id: 'generate', summary: 'Generate the custom delta', lane: 'kimi' },
    { id: 'note', summary: 'Write the note', simulation: { utterance, fields: { path, content: 'hello' }, lang: 'en' } },
  ],
});

const input = (name: string, value: unknown) => {
  const f = join(inputs, name);
  if (!existsSync(f)) writeFileSync(f, JSON.stringify(value));
  return f;
};
const SEND_PLAN = () => input('send-plan.json', bothLanes('send the note', 'sent.txt'));
const FILE_PLAN = () => input('file-plan.json', bothLanes('file the note', 'filed.txt'));
const NOTE_SIM_FILE = () => input('send-note.json', NOTE_SIM);
const FILE_SIM_FILE = () => input('file-note.json', FILE_SIM);
const LATE_SIM_FILE = () => input('late-note.json', LATE_SIM);
const RECALL_PLAN = () => input('recall-plan.json', bothLanes('send the recallable note', 'recall.txt'));
const KIMI_PLAN = join(PLANS, 'custom-kimi.json');

/** Runs a setup step; a failing setup is a broken test, not a crash finding. */
async function must(ws: string, args: string[]): Promise<Json> {
  const r = await kairJson(ws, args);
  if (r.code !== 0) throw new Error(`setup: kair ${args.join(' ')}: ${describeOutcome(r)}`);
  return r.json;
}

/** The catalog every template starts from: the write_file simulations, active, allowed to alice. */
export async function baseSetup(ws: string): Promise<void> {
  await must(ws, ['init']);
  for (const f of [join(SIMS, 'void-invoice.json'), NOTE_SIM_FILE(), FILE_SIM_FILE()]) await must(ws, ['sim', 'register', '--file', f]);
  for (const s of ['void-invoice', 'send-note', 'file-note']) await must(ws, ['sim', 'activate', s]);
  for (const a of ['invoice:void', 'note:send', 'note:file']) await must(ws, ['access', 'allow', 'alice', a]);
}

const steps = (...cmds: string[][]) => async (ws: string) => {
  for (const c of cmds) await must(ws, c);
};
const proposed = ['propose', 'Crash me', '--id', ID];
const planned = (file: string) => ['plan', ID, '--file', file];
const toApproved = (file: string) => [proposed, planned(file), ['request-approval', ID], ['approve', ID]];

interface Expect {
  /** Exit codes (with the error code, if any) accepted from the recovery command. */
  accept?: { code: number; error?: string }[];
}

/** Runs one recovery command; a success is acknowledged (its contract must never be lost). */
async function next(ws: string, args: string[], problems: Problems, acknowledged: Json[], opts: Expect = {}): Promise<Outcome> {
  const r = await kairJson(ws, args);
  const accepted = [{ code: 0 }, ...(opts.accept ?? [])].some((a) => a.code === r.code && (!('error' in a) || a.error === r.json?.error?.code));
  if (!accepted) problems.push(`kair ${args.join(' ')}: ${describeOutcome(r)}`);
  if (r.code === 0 && r.json?.contract) acknowledged.push(r.json.contract);
  return r;
}

async function state(ws: string): Promise<Json> {
  const r = await kairJson(ws, ['status', ID]);
  return r.json?.contract;
}

/** The contract's state as history's last complete line records it (the authority; no process spawned). */
function tailState(ws: string): string | undefined {
  const lines = historyLines(ws).get(ID);
  return lines?.length ? (JSON.parse(lines[lines.length - 1]!) as { state: string }).state : undefined;
}

/** The same command again; then the end state must be `want`. */
const again =
  (cmd: string[], want: string | null, opts: Expect = {}) =>
  async ({ ws }: KillContext) => {
    const problems: Problems = [];
    const acknowledged: Json[] = [];
    await next(ws, cmd, problems, acknowledged, opts);
    if (want && tailState(ws) !== want) problems.push(`history says contract ${ID} is ${tailState(ws) ?? 'missing'}, expected ${want}`);
    return { problems, acknowledged };
  };

/**
 * Brings a killed run to COMPLETED the way a user would: `run` if it never started, else
 * `resume` (answering the confirmation), and `--retry-in-doubt` when a step was claimed without
 * an outcome (the user's explicit decision: the one case where a step may run again).
 */
const finishRun = (outbox: string) => async ({ ws }: KillContext) => {
  const problems: Problems = [];
  const acknowledged: Json[] = [];
  const seen: string[] = [];
  let current = tailState(ws);
  let inDoubt = false;
  for (let i = 0; i < 4 && current !== 'COMPLETED'; i++) {
    const args = current === 'APPROVED' ? ['run', ID, '--confirm', 'yes'] : ['resume', ID, '--confirm', 'yes', ...(inDoubt ? ['--retry-in-doubt'] : [])];
    const r = await kairJson(ws, args);
    seen.push(`${args[0]}${inDoubt ? ' --retry-in-doubt' : ''} → ${describeOutcome(r)}`);
    if (r.code === 0 && r.json?.contract) acknowledged.push(r.json.contract);
    inDoubt = r.json?.error?.code === 'AEC_IN_DOUBT';
    current = tailState(ws);
  }
  // A kill after the run's last event leaves nothing to resume: a review is then the next writer,
  // which must still sweep what the killed process left.
  if (seen.length === 0) await next(ws, ['review', ID], problems, acknowledged);
  if (current !== 'COMPLETED') problems.push(`the run did not reach COMPLETED (history says ${current}); ${seen.join(' | ')}`);
  const per = [...succeededPerKey(ws).values()];
  if (per.length !== 1 || per[0] !== 1) problems.push(`expected one SUCCEEDED ledger row, got ${JSON.stringify(per)}`);
  const file = join(ws, '.kair', 'outbox', outbox);
  if (!existsSync(file) || readFileSync(file, 'utf8') !== 'hello') problems.push(`.kair/outbox/${outbox} is missing or wrong`);
  return { problems, acknowledged };
};

/**
 * After the recovery, `list` (whole and paged) holds exactly the entries rebuilt from each
 * contract's history (`status` rolls the snapshot forward from it), and no index file is torn.
 */
const indexMatches =
  (recover: CrashCase['recover']): CrashCase['recover'] =>
  async (ctx) => {
    const r = await recover(ctx);
    const list = await kairJson(ctx.ws, ['list']);
    const rebuilt: Json[] = [];
    for (const id of historyLines(ctx.ws).keys()) {
      const c = (await kairJson(ctx.ws, ['status', id])).json?.contract;
      if (c) rebuilt.push({ id: c.id, intent: c.intent, state: c.state, version: c.version, updated_at: c.updated_at });
    }
    rebuilt.sort((a, b) => (a.id < b.id ? -1 : 1));
    if (JSON.stringify(list.json?.contracts) !== JSON.stringify(rebuilt)) r.problems.push(`list ${JSON.stringify(list.json?.contracts)} differs from the entries rebuilt from history ${JSON.stringify(rebuilt)}`);
    const paged: Json[] = [];
    for (let after: string | undefined, i = 0; i < 10; i++) {
      const p = await kairJson(ctx.ws, ['list', '--limit', '1', ...(after ? ['--after', after] : [])]);
      paged.push(...(p.json?.contracts ?? []));
      after = p.json?.next_after ?? undefined;
      if (!after) break;
    }
    if (JSON.stringify(paged) !== JSON.stringify(rebuilt)) r.problems.push(`list --limit 1 pages ${JSON.stringify(paged)} differ from the entries rebuilt from history`);
    return r;
  };

/** Three contracts and enough index lines that the killed command's write also compacts (threshold 1 byte). */
const indexed = steps(proposed, ['propose', 'Second', '--id', 'c2'], ['propose', 'Third', '--id', 'c0'], ['grant', 'c2', 'local:read'], ['grant', ID, 'local:write']);

/** Every mutating command of issue 11, in the order of the lifecycle. */
export const CASES: CrashCase[] = [
  {
    name: 'propose',
    ci: false,
    setup: async () => {},
    command: proposed,
    // The same id again (done already if the killed propose committed), then another contract:
    // the next writer of the index and of contracts/.
    recover: indexMatches(async (ctx) => {
      const r = await again(proposed, 'DRAFT', { accept: [{ code: 3, error: 'CONTRACT_EXISTS' }] })(ctx);
      await next(ctx.ws, ['propose', 'Crash me too', '--id', 'c2'], r.problems, r.acknowledged);
      return r;
    }),
  },
  {
    name: 'grant (index compaction)',
    ci: true,
    setup: indexed,
    env: { KAIR_INDEX_COMPACT_BYTES: '1' },
    command: ['grant', ID, 'local:read'],
    recover: indexMatches(again(['grant', ID, 'local:exec'], 'DRAFT')),
  },
  {
    name: 'propose (index compaction)',
    ci: false,
    setup: steps(['propose', 'Second', '--id', 'c2'], ['grant', 'c2', 'local:read']),
    env: { KAIR_INDEX_COMPACT_BYTES: '1' },
    command: proposed,
    recover: indexMatches(async (ctx) => {
      const r = await again(proposed, 'DRAFT', { accept: [{ code: 3, error: 'CONTRACT_EXISTS' }] })(ctx);
      await next(ctx.ws, ['propose', 'Crash me too', '--id', 'c3'], r.problems, r.acknowledged);
      return r;
    }),
  },
  {
    name: 'plan',
    ci: false,
    setup: steps(proposed),
    command: planned(KIMI_PLAN),
    recover: again(planned(KIMI_PLAN), 'PLANNED'),
  },
  {
    name: 'require',
    ci: false,
    setup: steps(proposed),
    command: ['require', ID, 'local:read'],
    recover: again(['require', ID, 'local:write'], 'DRAFT'),
  },
  {
    name: 'grant',
    ci: true,
    setup: steps(proposed),
    command: ['grant', ID, 'local:read'],
    recover: async (ctx) => {
      const r = await again(['grant', ID, 'local:write'], 'DRAFT')(ctx);
      const c = await state(ctx.ws);
      if (!c?.controls?.granted?.includes('local:write')) r.problems.push(`granted is ${JSON.stringify(c?.controls?.granted)}, without local:write`);
      return r;
    },
  },
  {
    name: 'revoke',
    ci: false,
    setup: steps(proposed, ['grant', ID, 'local:read', 'local:write']),
    command: ['revoke', ID, 'local:read'],
    recover: async (ctx) => {
      const r = await again(['revoke', ID, 'local:read'], 'DRAFT')(ctx);
      const c = await state(ctx.ws);
      if (JSON.stringify(c?.controls?.granted) !== '["local:write"]') r.problems.push(`granted is ${JSON.stringify(c?.controls?.granted)}, expected ["local:write"]`);
      return r;
    },
  },
  {
    name: 'approve',
    ci: false,
    setup: steps(proposed, planned(KIMI_PLAN), ['request-approval', ID]),
    command: ['approve', ID],
    recover: again(['approve', ID], 'APPROVED'),
  },
  {
    name: 'run',
    ci: true,
    setup: steps(...toApproved(FILE_PLAN())),
    command: ['run', ID, '--confirm', 'yes'],
    recover: finishRun('filed.txt'),
    outbox: ['filed.txt'],
  },
  {
    // SIGINT after each file operation of a run of both lanes: before, between and after its
    // steps, mid-boundary and mid-lock. The run stops at its next boundary (PAUSED, INTERRUPTED)
    // or, outside the run's handlers, dies of the signal; resume then finishes it.
    name: 'run (SIGINT)',
    ci: false,
    signal: 'SIGINT',
    setup: steps(...toApproved(FILE_PLAN())),
    // The file step is side-effecting: like the `run` case, the run answers its confirmation.
    command: ['run', ID, '--confirm', 'yes'],
    recover: finishRun('filed.txt'),
    outbox: ['filed.txt'],
  },
  {
    name: 'resume',
    ci: true,
    // The run stops at the impactful step for its confirmation (exit 3): resume answers it.
    setup: async (ws) => {
      await steps(...toApproved(SEND_PLAN()))(ws);
      const r = await kairJson(ws, ['run', ID]);
      if (r.code !== 3 || r.json?.steps?.[1]?.reason_code !== 'AEC_CONFIRM_REQUIRED') throw new Error(`setup: run: ${describeOutcome(r)}`);
    },
    command: ['resume', ID, '--confirm', 'yes'],
    recover: finishRun('sent.txt'),
    outbox: ['sent.txt'],
  },
  {
    name: 'rewind',
    ci: false,
    setup: steps(proposed, planned(KIMI_PLAN)),
    command: ['rewind', ID, 'start over'],
    // A rewind that committed leaves REWOUND, where rewind is refused: the next rewind comes after a new plan.
    recover: async (ctx) => {
      const problems: Problems = [];
      const acknowledged: Json[] = [];
      if ((await state(ctx.ws))?.state !== 'REWOUND') await next(ctx.ws, ['rewind', ID, 'start over'], problems, acknowledged);
      await next(ctx.ws, planned(KIMI_PLAN), problems, acknowledged);
      await next(ctx.ws, ['rewind', ID, 'once more'], problems, acknowledged);
      if (tailState(ctx.ws) !== 'REWOUND') problems.push(`history says ${tailState(ctx.ws)}, expected REWOUND`);
      return { problems, acknowledged };
    },
  },
  {
    name: 'rollback',
    ci: false,
    // A completed run whose impactful step declares unsend-note (itself impactful) as its rollback.
    setup: steps(
      ['sim', 'register', '--file', input('unsend-note.json', UNSEND_SIM)],
      ['sim', 'register', '--file', input('send-recallable.json', RECALLABLE_SIM)],
      ['sim', 'activate', 'unsend-note'],
      ['sim', 'activate', 'send-recallable'],
      ['access', 'allow', 'alice', 'note:unsend'],
      ...toApproved(RECALL_PLAN()),
      ['run', ID, '--confirm', 'yes'],
    ),
    command: ['rollback', `${ID}-run-1`, '--confirm', 'yes'],
    // Rerunning resumes; a rollback claimed without an outcome is retried only when asked.
    recover: async ({ ws }) => {
      const problems: Problems = [];
      const seen: string[] = [];
      let inDoubt = false;
      for (let i = 0; i < 3; i++) {
        const r = await kairJson(ws, ['rollback', `${ID}-run-1`, '--confirm', 'yes', ...(inDoubt ? ['--retry-in-doubt'] : [])]);
        seen.push(describeOutcome(r));
        inDoubt = r.json?.error?.code === 'AEC_IN_DOUBT';
        if (r.code === 0) break;
      }
      const rows = readRows(ws, "SELECT step_id FROM agent_execution_ledger WHERE event = 'SUCCEEDED' ORDER BY row_id").map((r) => r.step_id as string);
      if (JSON.stringify(rows) !== JSON.stringify(['note', 'rollback:note'])) problems.push(`expected one SUCCEEDED note and one rollback:note, got ${JSON.stringify(rows)}; ${seen.join(' | ')}`);
      if (tailState(ws) !== 'COMPLETED') problems.push(`history says ${tailState(ws)}, expected COMPLETED (a rollback leaves the state)`);
      return { problems, acknowledged: [] };
    },
  },
  {
    name: 'dpc',
    ci: false,
    setup: steps(proposed),
    command: ['dpc', ID, '--add-decision', 'Use the stub provider'],
    recover: async (ctx) => {
      const r = await again(['dpc', ID, '--add-decision', 'Keep it small'], 'DRAFT')(ctx);
      const dpc = join(ctx.ws, '.kair', 'contracts', ID, 'dpc', 'dpc_v1.json');
      if (!existsSync(dpc) || !readFileSync(dpc, 'utf8').includes('Keep it small')) r.problems.push('dpc_v1.json lacks the acknowledged decision');
      return r;
    },
  },
  {
    name: 'sim register',
    ci: false,
    sqliteOnly: true,
    setup: async () => {},
    command: ['sim', 'register', '--file', LATE_SIM_FILE()],
    recover: async ({ ws }) => {
      const problems: Problems = [];
      await next(ws, ['sim', 'register', '--file', LATE_SIM_FILE()], problems, [], { accept: [{ code: 3, error: 'SIMULATION_EXISTS' }] });
      await next(ws, ['sim', 'show', 'late-note'], problems, []);
      return { problems, acknowledged: [] };
    },
  },
  {
    name: 'sim activate',
    ci: false,
    sqliteOnly: true,
    setup: steps(['sim', 'register', '--file', LATE_SIM_FILE()]),
    command: ['sim', 'activate', 'late-note'],
    recover: async ({ ws }) => {
      const problems: Problems = [];
      await next(ws, ['sim', 'activate', 'late-note'], problems, []);
      const r = await kairJson(ws, ['sim', 'show', 'late-note']);
      if (r.json?.simulation?.status !== 'Active') problems.push(`late-note is ${r.json?.simulation?.status}, expected Active`);
      return { problems, acknowledged: [] };
    },
  },
  {
    name: 'access allow',
    ci: false,
    sqliteOnly: true,
    setup: async () => {},
    command: ['access', 'allow', 'bob', 'note:send'],
    recover: async ({ ws }) => {
      const problems: Problems = [];
      await next(ws, ['access', 'allow', 'bob', 'note:send'], problems, []);
      const r = await kairJson(ws, ['access', 'list']);
      if (!JSON.stringify(r.json ?? {}).includes('"bob"')) problems.push('access list lacks the acknowledged rule for bob');
      return { problems, acknowledged: [] };
    },
  },
];
