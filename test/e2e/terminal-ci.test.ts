/**
 * The terminal and CI never surprise: unknown commands get a suggestion, --lang and --confirm
 * are checked, -q prints only the primary value, text errors say what to do next, and a rebuilt
 * bundle never runs another build's compiled code.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ALICE, approveContract, setUpCatalog, simPlan } from '../helpers/aec.js';
import { BIN, ROOT, baseEnv, bring, fixture, kair, kj, makeTempDir, makeWorkspace, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

describe('unknown commands', () => {
  it('`kair help nosuch` and `kair nosuch` are USAGE_ERROR exit 2 with "did you mean"', () => {
    const ws = makeWorkspace();
    for (const args of [['help', 'nosuch'], ['nosuch'], ['nosuch', '--help']]) {
      const r = kj(ws, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json.error.code).toBe('USAGE_ERROR');
      expect(r.json.error.message).toMatch(/did you mean/);
    }
    expect(kj(ws, ['stauts', 'x']).json.error.details.suggestion).toBe('status');
  });

  it('`kair sim lst` → did you mean `sim list`, in text with a hint line', () => {
    const ws = makeWorkspace();
    const r = kair(ws, ['sim', 'lst']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean `sim list`?');
    expect(r.stderr).toMatch(/^hint: /m);
    expect(kj(ws, ['access', 'lst']).json.error.details).toMatchObject({ suggestion: 'access list', subcommand: 'lst' });
  });
});

describe('flag validation', () => {
  it('--lang must be a language of the lexicon at run and find (nothing written)', () => {
    const ws = makeWorkspace();
    bring(ws, 'c', 'APPROVED');
    for (const args of [['run', 'c', '--lang', 'xx'], ['find', 'send invoice', '--lang', 'xx']]) {
      const r = kj(ws, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--lang' } });
    }
    expect(kj(ws, ['status', 'c']).json.contract.state).toBe('APPROVED');
    expect(kj(ws, ['find', 'send invoice', '--lang', 'ES']).code).not.toBe(2);
  });

  it('with --dry-run, --confirm maybe is USAGE_ERROR; --confirm and --confirm-all together too', () => {
    const ws = makeWorkspace();
    bring(ws, 'c', 'APPROVED');
    const r = kj(ws, ['run', 'c', '--dry-run', '--confirm', 'maybe']);
    expect(r.code).toBe(2);
    expect(r.json.error.details.flag).toBe('--confirm');
    expect(kj(ws, ['run', 'c', '--confirm', 'yes', '--confirm-all', 'yes']).code).toBe(2);
  });

  it('--confirm-all answers every confirmation of the run; --confirm only the first', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['send-invoice', 'void-invoice']);
    const plan = simPlan([
      { id: 'one', utterance: 'send invoice', fields: { customer: 'acme', amount: '1' } },
      { id: 'two', utterance: 'send invoice', fields: { customer: 'beta', amount: '2' } },
    ]);
    approveContract(ws, 'all', plan);
    approveContract(ws, 'first', plan);
    const all = kj(ws, ['run', 'all', '--confirm-all', 'yes'], { env: ALICE });
    expect(all.code, all.stdout).toBe(0);
    const first = kj(ws, ['run', 'first', '--confirm', 'yes'], { env: ALICE });
    expect(first.code).toBe(3);
    expect(first.json.error.code).toBe('AEC_CONFIRM_REQUIRED');
  });
});

describe('-q prints only the primary value, off a TTY too', () => {
  it('propose → id, plan → sha, run → run id; a command without one prints nothing', () => {
    const ws = makeWorkspace();
    expect(kair(ws, ['propose', 'x', '-q']).stdout).toBe('x\n');
    const plan = kair(ws, ['plan', 'x', '--file', fixture('custom-kimi.json'), '-q']).stdout;
    expect(plan).toMatch(/^[0-9a-f]{64}\n$/);
    expect(kair(ws, ['request-approval', 'x', '-q']).stdout).toBe('');
    expect(kair(ws, ['approve', 'x', '-q']).stdout).toBe('');
    expect(kair(ws, ['run', 'x', '-q']).stdout).toBe('x-run-1\n');
    // Errors still reach stderr with -q.
    const bad = kair(ws, ['status', 'nope', '-q']);
    expect(bad.code).toBe(4);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain('CONTRACT_NOT_FOUND');
  });
});

describe('messages', () => {
  it('a text error prints its details.hint (the same one --json carries)', () => {
    const ws = makeWorkspace();
    const r = kj(ws, ['run', 'c', '--lang', 'xx']);
    const t = kair(ws, ['run', 'c', '--lang', 'xx']);
    expect(t.stderr).toContain(`hint: ${r.json.error.details.hint}`);
    // An error without a hint of its own still says where to look next.
    expect(kair(ws, ['status', 'nope']).stderr).toMatch(/^hint: .+/m);
  });

  it('grant outside the registry succeeds with a warning (stderr; `warnings` in --json)', () => {
    const ws = makeWorkspace();
    kair(ws, ['propose', 'chat', '--id', 'chat']);
    const r = kj(ws, ['grant', 'chat', 'local:reed']);
    expect(r.code).toBe(0);
    expect(r.json.warnings).toEqual([expect.stringContaining('local:reed')]);
    expect(r.stderr).toContain('warning: local:reed');
    expect(kj(ws, ['grant', 'chat', 'local:read']).json.warnings).toBeUndefined();
  });

  it('list --state is case-insensitive; an empty filtered list says so', () => {
    const ws = makeWorkspace();
    bring(ws, 'c', 'APPROVED');
    expect(kj(ws, ['list', '--state', 'approved']).json.contracts.map((c: { id: string }) => c.id)).toEqual(['c']);
    const empty = kair(ws, ['list', '--state', 'draft']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain('no contracts in state DRAFT');
  });

  it('kair init prints the next steps', () => {
    const dir = makeTempDir();
    expect(kair(dir, ['init']).stdout).toMatch(/Next steps:[\s\S]*kair propose/);
  });

  it('an explicit deny rule is reported as such, naming actor and action', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['ping']);
    kair(ws, ['access', 'deny', 'alice', 'system:ping']);
    approveContract(ws, 'p', simPlan([{ id: 'ping-it', utterance: 'ping' }]));
    const r = kj(ws, ['run', 'p'], { env: ALICE });
    expect(r.code).toBe(3);
    expect(JSON.stringify(r.json)).toContain('a deny rule forbids alice');
  });

  it('run --allow-noop turns NO_EXECUTION_REQUIRED into exit 0', () => {
    const ws = makeWorkspace();
    bring(ws, 'r', 'APPROVED', 'reuse-only.json');
    expect(kj(ws, ['run', 'r']).json.error.code).toBe('NO_EXECUTION_REQUIRED');
    const r = kj(ws, ['run', 'r', '--allow-noop']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, contract_id: 'r', no_execution_required: true });
  });
});

describe('code cache', () => {
  it('a rebuilt bundle of the same length but different content is not served from the old cache', () => {
    // A copy of the build: bin/ and dist/ with node_modules linked, so the real dist is untouched.
    const dir = makeTempDir('kair-cache-');
    const build = join(dirname(BIN), '..');
    cpSync(join(build, 'bin'), join(dir, 'bin'), { recursive: true });
    mkdirSync(join(dir, 'dist'));
    for (const f of readdirSync(join(build, 'dist'))) if (f.endsWith('.cjs')) cpSync(join(build, 'dist', f), join(dir, 'dist', f));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const bin = join(dir, 'bin', 'kair.js');
    const version = () => spawnSync(process.execPath, [bin, '--version'], { env: baseEnv(), encoding: 'utf8' }).stdout.trim();
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
    expect(version()).toBe(pkg);
    expect(readdirSync(join(dir, 'dist')).some((f) => f.startsWith('kair.cjs.') && f.endsWith('.cache'))).toBe(true);
    expect(version()).toBe(pkg); // served from the cache now
    // "Rebuild": same length, another version string, and the content hash line the build writes.
    const file = join(dir, 'dist', 'kair.cjs');
    const text = readFileSync(file, 'latin1');
    const body = text.slice(text.indexOf('\n') + 1).replace(JSON.stringify(pkg), JSON.stringify(pkg.replace(/\d/g, '9')));
    writeFileSync(file, `// kair-bundle-sha256 ${createHash('sha256').update(body).digest('hex')}\n${body}`, 'latin1');
    expect(readFileSync(file).length).toBe(Buffer.byteLength(text, 'latin1'));
    expect(version()).toBe(pkg.replace(/\d/g, '9'));
  });
});
