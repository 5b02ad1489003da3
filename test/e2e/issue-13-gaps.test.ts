/**
 * Items of issue 13 ("the terminal, CI and scripts") that had no test of their own: group help
 * under --json too, every CONFIG_INVALID problem listed in full, a config with one key, and
 * `$schema` accepted in plans, simulations and config (editors validate against docs/schemas).
 * The audit that maps every item of the issue to its test is docs/decisions/027-issue-13-closure.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, bring, configFile, editConfig, fixture, kair, kj, makeTempDir, makeWorkspace, ok, planFile, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

describe('group help', () => {
  it.each(['sim', 'access', 'aec', 'intake', 'config'])('%s: `--help`, `help <group>` and their --json list the subcommands, exit 0', (group) => {
    const dir = makeTempDir();
    const text = kair(dir, [group, '--help']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^Usage: kair ${group} <subcommand>`, 'm'));
    expect(text.stdout).toMatch(new RegExp(`^  ${group} \\S+ `, 'm'));
    expect(kair(dir, ['help', group]).stdout).toBe(text.stdout);
    for (const args of [[group, '--help'], ['help', group]]) {
      const j = kj(dir, args);
      expect(j.code, args.join(' ')).toBe(0);
      expect(j.json.ok).toBe(true);
    }
  });
});

describe('config', () => {
  it('CONFIG_INVALID lists every problem in full, in text and --json (no "and N more")', () => {
    const ws = makeWorkspace();
    editConfig(ws, (c) => {
      c.approvals.min = 0;
      c.approvals.forbid_self = 'no';
      c.kimi.max_cost_usd_per_contract = -1;
      c.controls.registry = 'local:read';
      c.surprise = true;
      c.other = 1;
    });
    const j = kj(ws, ['list']);
    expect(j.code).toBe(2);
    expect(j.json.error.code).toBe('CONFIG_INVALID');
    const doc = JSON.stringify(j.json.error);
    for (const key of ['approvals.min', 'approvals.forbid_self', 'kimi.max_cost_usd_per_contract', 'controls.registry', 'surprise', 'other']) expect(doc).toContain(key);
    const t = kair(ws, ['list']);
    for (const key of ['approvals.min', 'approvals.forbid_self', 'kimi.max_cost_usd_per_contract', 'controls.registry', 'surprise', 'other']) expect(t.stderr).toContain(key);
    expect(t.stderr).not.toMatch(/and \d+ more/);
  });

  it('a config of workspace_id alone works: every other key takes its default', () => {
    const ws = makeWorkspace();
    const id = JSON.parse(readFileSync(configFile(ws), 'utf8')).workspace_id;
    writeFileSync(configFile(ws), JSON.stringify({ workspace_id: id }));
    bring(ws, 'c', 'APPROVED');
    expect(ok(ws, ['config', 'get', 'approvals.min']).value).toBe(1);
    expect(ok(ws, ['run', 'c']).state).toBe('COMPLETED');
  });
});

describe('$schema is accepted where editors put it', () => {
  it('in a plan (the plan sha is that of the plan without it), a simulation and the config', () => {
    const ws = makeWorkspace();
    const plan = JSON.parse(readFileSync(fixture('custom-kimi.json'), 'utf8'));
    ok(ws, ['propose', 'a', '--id', 'a']);
    ok(ws, ['propose', 'b', '--id', 'b']);
    const without = ok(ws, ['plan', 'a', '--plan-json', JSON.stringify(plan)]).contract.plan_sha256;
    const withSchema = ok(ws, ['plan', 'b', '--plan-json', JSON.stringify({ $schema: '../docs/schemas/plan.json', ...plan })]).contract.plan_sha256;
    expect(withSchema).toBe(without);
    expect(readFileSync(planFile(ws, 'b'), 'utf8')).not.toContain('$schema');
    // Approved without it, the plan still runs: run hashes plan_v1.json, which never has it.
    ok(ws, ['request-approval', 'b']);
    ok(ws, ['approve', 'b']);
    expect(ok(ws, ['run', 'b']).state).toBe('COMPLETED');

    const sim = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'simulations', 'ping.json'), 'utf8'));
    const f = join(makeTempDir(), 'ping.json');
    writeFileSync(f, JSON.stringify({ $schema: '../docs/schemas/simulation.json', ...sim }));
    expect(kj(ws, ['sim', 'register', '--file', f]).code).toBe(0);

    editConfig(ws, (c) => (c.$schema = './docs/schemas/config.json'));
    expect(kj(ws, ['list']).code).toBe(0);
  });
});
