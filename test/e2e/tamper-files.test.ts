/**
 * History is the authority (issue 11): every hand edit of the files kair keeps is caught by
 * `verify` with its own problem kind, and no gate or writer acts on the forged content.
 * One template workspace, one copy per case.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../helpers/cli.js';
import { cloneWorkspace, contractDir, dpcFile, history, historyFile, kj, ok, planFile, removeWorkspaces, snapshotFile } from '../helpers/cli.js';
import { approveContract, asAlice, catalogWorkspace, ledgerRows, simPlan } from '../helpers/aec.js';

afterAll(removeWorkspaces);

const FIXED = join(__dirname, '..', '..', 'fixtures', 'plans', 'custom-kimi.json');

/**
 * done: a Kimi plan run to COMPLETED. planned: PLANNED on a plan with an impactful simulation
 * step (send-invoice), approved by nobody.
 */
let T: string;
beforeAll(() => {
  T = catalogWorkspace();
  ok(T, ['propose', 'ran once', '--id', 'done'], asAlice);
  ok(T, ['plan', 'done', '--file', FIXED], asAlice);
  ok(T, ['request-approval', 'done'], asAlice);
  ok(T, ['approve', 'done'], asAlice);
  ok(T, ['run', 'done'], asAlice);
  ok(T, ['dpc', 'done', '--add-decision', 'ship it'], asAlice);
  approveContract(T, 'planned', simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]));
  ok(T, ['plan', 'planned', '--plan-json', JSON.stringify(simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]))], asAlice);
});

const kinds = (list: { kind: string }[]) => list.map((x) => x.kind);
const edit = (file: string, f: (j: Json) => void) => {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  f(j);
  writeFileSync(file, JSON.stringify(j, null, 2) + '\n');
};

describe('verify catches every hand edit of the files (exit 7, its own kind)', () => {
  it('the template is clean', () => {
    const r = kj(T, ['verify'], asAlice);
    expect(r.json.problems).toEqual([]);
    expect(r.code).toBe(0);
    expect(snapshotOf(T, 'planned').state).toBe('PLANNED');
  });

  const cases: { name: string; tamper: (ws: string) => void; kind: string }[] = [
    { name: 'a middle history line edited', kind: 'chain_broken', tamper: (ws) => editLine(ws, 'done', 2, (e) => (e.actor = 'mallory')) },
    { name: 'a history line deleted', kind: 'chain_broken', tamper: (ws) => spliceLines(ws, 'done', 2, 1) },
    { name: 'two history lines swapped', kind: 'chain_broken', tamper: (ws) => swapLines(ws, 'done', 2, 3) },
    { name: 'a history line inserted', kind: 'chain_broken', tamper: (ws) => spliceLines(ws, 'done', 2, 0, readLines(ws, 'done')[2]!) },
    { name: 'the snapshot edited', kind: 'snapshot_mismatch', tamper: (ws) => edit(snapshotFile(ws, 'done'), (j) => (j.state = 'ACCEPTED')) },
    { name: 'plan_v1.json edited', kind: 'plan_mismatch', tamper: (ws) => edit(planFile(ws, 'done'), (j) => (j.title = 'something else')) },
    { name: 'plan_v1.json deleted', kind: 'plan_mismatch', tamper: (ws) => rmSync(planFile(ws, 'done')) },
    { name: 'the plan kept by sha edited', kind: 'plan_mismatch', tamper: (ws) => edit(keptPlan(ws, 'done'), (j) => (j.title = 'x')) },
    { name: 'dpc_v1.json edited', kind: 'dpc_mismatch', tamper: (ws) => edit(dpcFile(ws, 'done'), (j) => j.decisions.push({ id: 'd9', decision: 'forged', status: 'active' })) },
    { name: 'dpc_v1.json deleted', kind: 'dpc_mismatch', tamper: (ws) => rmSync(dpcFile(ws, 'done')) },
    { name: 'the latest run-result.json edited', kind: 'artifact_mismatch', tamper: (ws) => edit(runFile(ws, 'done', 'run-result.json'), (j) => (j.status = 'FAILED')) },
    { name: 'the latest run-request.json edited', kind: 'artifact_mismatch', tamper: (ws) => edit(runFile(ws, 'done', 'run-request.json'), (j) => (j.actor = 'mallory')) },
    { name: "the run's result pointer edited", kind: 'artifact_mismatch', tamper: (ws) => edit(runFile(ws, 'done', 'done-run-1/run-result.json'), (j) => (j.status = 'FAILED')) },
    { name: "the run's sealed result edited", kind: 'artifact_mismatch', tamper: (ws) => edit(runFile(ws, 'done', 'done-run-1/run-result.1.json'), (j) => (j.status = 'FAILED')) },
    { name: "the run's request deleted", kind: 'artifact_mismatch', tamper: (ws) => rmSync(runFile(ws, 'done', 'done-run-1/run-request.json')) },
    { name: 'a contract folder deleted', kind: 'contract_missing', tamper: (ws) => rmSync(contractDir(ws, 'done'), { recursive: true }) },
    {
      name: 'the history tail cut and the snapshot deleted (a COMPLETED run erased back to APPROVED)',
      kind: 'history_truncated',
      tamper: (ws) => {
        const lines = readLines(ws, 'done');
        const started = lines.findIndex((l) => JSON.parse(l).type === 'run.started');
        writeFileSync(historyFile(ws, 'done'), lines.slice(0, started).join('\n') + '\n');
        rmSync(snapshotFile(ws, 'done'));
      },
    },
    {
      name: 'the history tail cut below the snapshot',
      kind: 'history_truncated',
      tamper: (ws) => spliceLines(ws, 'done', readLines(ws, 'done').length - 1, 1),
    },
  ];

  it.each(cases)('$name → $kind', ({ tamper, kind }) => {
    const ws = cloneWorkspace(T);
    tamper(ws);
    const r = kj(ws, ['verify'], asAlice);
    expect(r.code).toBe(7);
    expect(r.json.error.code).toBe('INTEGRITY_FAILED');
    expect(kinds(r.json.problems)).toContain(kind);
  });
});

describe('gates and writers never act on forged files', () => {
  it('a snapshot forged to APPROVED (approved by mallory) does not run: the state comes from history', () => {
    const ws = cloneWorkspace(T);
    edit(snapshotFile(ws, 'planned'), (j) => {
      j.state = 'APPROVED';
      j.approvals = [{ actor: 'mallory', at: j.updated_at, plan_sha256: j.plan_sha256, valid: true }];
    });
    const dry = kj(ws, ['run', 'planned', '--dry-run'], asAlice);
    expect(dry.code).toBe(3);
    expect(dry.json.error.code).toBe('INVALID_TRANSITION');
    const r = kj(ws, ['run', 'planned', '--confirm', 'yes'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    expect(ledgerRows(ws, 'contract_id = ?', 'planned')).toEqual([]);
    expect(existsSync(join(contractDir(ws, 'planned'), 'artifacts'))).toBe(false);
    // The refusal is recorded against the true state, and the forged snapshot is never folded in.
    const last = history(ws, 'planned').at(-1)!;
    expect(last).toMatchObject({ type: 'gate.blocked', state: 'PLANNED' });
    expect(JSON.stringify(history(ws, 'planned'))).not.toContain('mallory');
    expect(kinds(kj(ws, ['verify'], asAlice).json.problems)).toContain('snapshot_mismatch');
  });

  it('forged state/granted in the snapshot never enter history through a grant, and verify keeps failing', () => {
    const ws = cloneWorkspace(T);
    edit(snapshotFile(ws, 'planned'), (j) => {
      j.state = 'ACCEPTED';
      j.controls.granted = ['github:write'];
    });
    const g = kj(ws, ['grant', 'planned', 'local:read'], asAlice);
    expect(g.code).toBe(0);
    expect(g.stderr).toMatch(/contract\.json of planned differs from its history/);
    const last = history(ws, 'planned').at(-1)!;
    expect(last).toMatchObject({ type: 'grant', state: 'PLANNED', data: { granted: ['local:read'] } });
    expect(kj(ws, ['verify'], asAlice).code).toBe(7);
    // Deleting the forged snapshot lets the next writer rebuild it from history.
    rmSync(snapshotFile(ws, 'planned'));
    ok(ws, ['grant', 'planned', 'local:write'], asAlice);
    expect(snapshotOf(ws, 'planned')).toMatchObject({ state: 'PLANNED', controls: { granted: ['local:read', 'local:write'] } });
    expect(kj(ws, ['verify'], asAlice).code).toBe(0);
  });

  it('a chain broken in the middle: writers refuse (exit 7) and append nothing', () => {
    const ws = cloneWorkspace(T);
    editLine(ws, 'planned', 2, (e) => (e.actor = 'mallory'));
    const before = readFileSync(historyFile(ws, 'planned'), 'utf8');
    const g = kj(ws, ['grant', 'planned', 'local:read'], asAlice);
    expect(g.code).toBe(7);
    expect(g.json.error.code).toBe('INTEGRITY_FAILED');
    expect(readFileSync(historyFile(ws, 'planned'), 'utf8')).toBe(before);
  });

  it('history cut below a finished run: writers refuse instead of reusing the run id', () => {
    const ws = cloneWorkspace(T);
    const lines = readLines(ws, 'done');
    const started = lines.findIndex((l) => JSON.parse(l).type === 'run.started');
    writeFileSync(historyFile(ws, 'done'), lines.slice(0, started).join('\n') + '\n');
    rmSync(snapshotFile(ws, 'done'));
    const before = readFileSync(historyFile(ws, 'done'), 'utf8');
    const r = kj(ws, ['run', 'done'], asAlice);
    expect(r.code).toBe(7);
    expect(r.json.error.details.kind).toBe('history_truncated');
    expect(readFileSync(historyFile(ws, 'done'), 'utf8')).toBe(before);
  });

  it('an edited plan_v1.json never runs, and a forged DPC is never overwritten', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['rewind', 'done', 'again'], asAlice);
    ok(ws, ['plan', 'done', '--file', FIXED], asAlice);
    ok(ws, ['request-approval', 'done'], asAlice);
    ok(ws, ['approve', 'done'], asAlice);
    edit(planFile(ws, 'done'), (j) => (j.budget = { maxCostUSD: 1 }));
    const r = kj(ws, ['run', 'done'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('APPROVAL_STALE');
    edit(dpcFile(ws, 'done'), (j) => (j.topic = 'forged'));
    const forged = readFileSync(dpcFile(ws, 'done'), 'utf8');
    const d = kj(ws, ['dpc', 'done', '--add-decision', 'more'], asAlice);
    expect(d.code).toBe(7);
    expect(readFileSync(dpcFile(ws, 'done'), 'utf8')).toBe(forged);
  });
});

function snapshotOf(ws: string, id: string): Json {
  return JSON.parse(readFileSync(snapshotFile(ws, id), 'utf8'));
}
function readLines(ws: string, id: string): string[] {
  return readFileSync(historyFile(ws, id), 'utf8').split('\n').filter(Boolean);
}
function writeLines(ws: string, id: string, lines: string[]) {
  writeFileSync(historyFile(ws, id), lines.join('\n') + '\n');
}
function editLine(ws: string, id: string, i: number, f: (e: Json) => void) {
  const lines = readLines(ws, id);
  const e = JSON.parse(lines[i]!);
  f(e);
  lines[i] = JSON.stringify(e);
  writeLines(ws, id, lines);
}
function spliceLines(ws: string, id: string, at: number, n: number, ...add: string[]) {
  const lines = readLines(ws, id);
  lines.splice(at, n, ...add);
  writeLines(ws, id, lines);
}
function swapLines(ws: string, id: string, a: number, b: number) {
  const lines = readLines(ws, id);
  [lines[a], lines[b]] = [lines[b]!, lines[a]!];
  writeLines(ws, id, lines);
}
function runFile(ws: string, id: string, name: string) {
  return join(contractDir(ws, id), 'artifacts', 'run', name);
}
function keptPlan(ws: string, id: string) {
  const dir = join(contractDir(ws, id), 'plan');
  return join(dir, readdirSync(dir).find((f) => /^[0-9a-f]{64}\.json$/.test(f))!);
}

describe('kair head and verify --since-head', () => {
  it('a consistent rewrite of a whole history passes plain verify but not --since-head', () => {
    const ws = cloneWorkspace(T);
    const h = kj(ws, ['head'], asAlice);
    expect(h.code).toBe(0);
    expect(h.json.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(kj(ws, ['verify', '--since-head', h.json.digest], asAlice).code).toBe(0);
    // Appending keeps extending the head.
    ok(ws, ['grant', 'planned', 'local:read'], asAlice);
    expect(kj(ws, ['verify', '--since-head', h.json.digest], asAlice).code).toBe(0);
    // Rebuild "planned" from scratch under another intent: every file consistent again.
    rmSync(contractDir(ws, 'planned'), { recursive: true });
    ok(ws, ['propose', 'something else', '--id', 'planned'], asAlice);
    expect(kj(ws, ['verify'], asAlice).code).toBe(0);
    const v = kj(ws, ['verify', '--since-head', h.json.digest], asAlice);
    expect(v.code).toBe(7);
    expect(v.json.problems).toContainEqual(expect.objectContaining({ contract_id: 'planned', kind: 'chain_broken' }));
  });

  it('an unknown or altered head → head_unknown; a malformed digest → USAGE_ERROR', () => {
    const ws = cloneWorkspace(T);
    const unknown = kj(ws, ['verify', '--since-head', 'a'.repeat(64)], asAlice);
    expect(unknown.code).toBe(7);
    expect(kinds(unknown.json.problems)).toEqual(['head_unknown']);
    const d = kj(ws, ['head'], asAlice).json;
    writeFileSync(join(ws, d.path), readFileSync(join(ws, d.path), 'utf8').replace('"contracts":[', '"contracts":[{"id":"zz","seq":1,"hash":"00"},'));
    expect(kinds(kj(ws, ['verify', '--since-head', d.digest], asAlice).json.problems)).toEqual(['head_unknown']);
    const bad = kj(ws, ['verify', '--since-head', 'nope'], asAlice);
    expect(bad.code).toBe(2);
    expect(bad.json.error.code).toBe('USAGE_ERROR');
  });
});

describe('kair head covers the SQLite chains', () => {
  it('the newest change-log row deleted (triggers dropped first): --since-head names the chain', async () => {
    const ws = cloneWorkspace(T);
    const h = kj(ws, ['head'], asAlice).json;
    expect(h.chains).toBeGreaterThan(0);
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(ws, '.kair', 'kair.db'));
    try {
      for (const t of db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'change_log'").all() as { name: string }[]) db.exec(`DROP TRIGGER ${t.name}`);
      db.exec('DELETE FROM change_log WHERE id = (SELECT MAX(id) FROM change_log)');
    } finally {
      db.close();
    }
    const v = kj(ws, ['verify', '--since-head', h.digest], asAlice);
    expect(v.code).toBe(7);
    expect(v.json.problems).toContainEqual(expect.objectContaining({ kind: 'ledger_chain_broken', message: expect.stringContaining('change_log') }));
  });
});
