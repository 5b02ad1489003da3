/**
 * README's CI snippets run under `bash -e`, GitHub Actions' default shell (`bash -e {0}`): a
 * snippet must reach the line where it saves kair's exit status whether the run succeeds, is
 * refused by a gate or has nothing to execute, and must not report NO_EXECUTION_REQUIRED as a
 * refusal. The snippets are read from README.md (every sh block that saves `$?` after a
 * `kair run`), so a README edit that breaks them fails here.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, baseEnv, kairOnPath, makeTempDir } from '../helpers/cli.js';

let binDir: string;
beforeAll(() => {
  binDir = kairOnPath('kair-ci-bin-');
});

/** The README blocks that run `kair run` and save its status (`x=$?`). */
function ciSnippets(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/^```(?:sh|bash)\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).filter((b) => /kair run\b/.test(b) && /\w+=\$\?/.test(b));
}

/** Adds, after the line that saves the status, a line recording that it was reached and what it saved. */
function instrument(snippet: string): string {
  const lines = snippet.split('\n');
  const i = lines.findIndex((l) => /\w+=\$\?/.test(l));
  const v = /(\w+)=\$\?/.exec(lines[i]!)![1]!;
  lines.splice(i + 1, 0, `printf '%s' "$${v}" > "$KAIR_CI_SAVED"`);
  return lines.join('\n');
}

const SCENARIOS = [
  { name: 'the run succeeds', plan: 'custom-kimi.json', kairExit: 0, scriptExit: 0, refused: false },
  // mixed-lanes' send-invoice step names a simulation this workspace never registered.
  { name: 'a gate refuses the run', plan: 'mixed-lanes.json', kairExit: 3, scriptExit: 3, refused: true },
  { name: 'there is nothing to execute', plan: 'reuse-only.json', kairExit: 3, scriptExit: 0, refused: false },
] as const;

describe("README's CI snippets under bash -e", () => {
  const snippets = ciSnippets();

  it('README has CI snippets that save the exit status', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(1);
  });

  for (const [n, snippet] of snippets.entries()) {
    for (const s of SCENARIOS) {
      it(`snippet ${n + 1} (${snippet.split('\n')[0]}…): ${s.name}`, () => {
        const dir = makeTempDir('kair-ci-');
        cpSync(join(ROOT, 'fixtures'), join(dir, 'fixtures'), { recursive: true });
        cpSync(join(ROOT, 'fixtures', 'plans', s.plan), join(dir, 'plan.json'));
        const env = baseEnv({ PATH: `${binDir}:${process.env.PATH ?? ''}`, HOME: dir, KAIR_CI_SAVED: join(dir, 'saved'), ID: 'ci', CI: 'true' });
        const sh = (script: string, flags: string[] = []) => spawnSync('bash', [...flags, '-c', script], { cwd: dir, env, input: '', encoding: 'utf8', timeout: 60_000 });
        const setup = sh(['kair init -q', ...(/kair propose/.test(snippet) ? [] : ['kair propose -q "CI" --id ci', 'kair plan -q ci --file plan.json', 'kair request-approval -q ci', 'kair approve -q ci'])].join(' && '));
        expect(setup.status, setup.stderr).toBe(0);
        const r = sh(instrument(snippet), ['-e']);
        const out = r.stdout + r.stderr;
        expect(existsSync(join(dir, 'saved')), `the snippet stopped before saving the exit status (exit ${r.status}):\n${out}`).toBe(true);
        expect(readFileSync(join(dir, 'saved'), 'utf8')).toBe(String(/--allow-noop/.test(snippet) && s.plan === 'reuse-only.json' ? 0 : s.kairExit));
        expect(r.status, out).toBe(s.scriptExit);
        expect(/refused/i.test(r.stdout), r.stdout).toBe(s.refused);
      });
    }
  }
});
