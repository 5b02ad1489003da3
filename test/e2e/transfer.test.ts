/**
 * `kair artifacts <id> --out DIR`, `kair export --to DIR` and `kair import --from DIR` on the
 * local backend, through the built CLI: what is written, that it verifies, that export → import →
 * export is byte-identical, and the refusals (existing target, tampered source, links, bad paths)
 * with nothing written.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactsOutOutputSchema, ExportOutputSchema, ImportOutputSchema } from '../../src/domain/output-schemas.js';
import { cloneWorkspace, historyFile, kair, kairAsync, kj, makeTempDir, makeWorkspace, ok, readJson, removeWorkspaces } from '../helpers/cli.js';
import { fileHashes, localRows, recordedFiles, richWorkspace } from '../helpers/transfer.js';

let rich: string;
beforeAll(() => {
  rich = richWorkspace();
}, 120_000);
afterAll(() => removeWorkspaces());

/** Every path under a folder (links not followed), for "nothing was written". */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d, { withFileTypes: true })) {
      out.push(`${rel}${n.name}${n.isDirectory() ? '/' : n.isSymbolicLink() ? '@' : ''}`);
      if (n.isDirectory()) walk(join(d, n.name), `${rel}${n.name}/`);
    }
  };
  walk(dir, '');
  return out.sort();
}

describe('kair artifacts <id> --out DIR', () => {
  it('writes the listed files at their workspace paths with the same bytes; again: all unchanged', () => {
    const out = join(makeTempDir(), 'out');
    const listed = ok(rich, ['artifacts', 'mixed']).artifacts as { kind: string; path: string }[];
    const r = ok(rich, ['artifacts', 'mixed', '--out', out]);
    expect(ArtifactsOutOutputSchema.safeParse(r).success).toBe(true);
    expect(r.files.map((f: { kind: string; path: string }) => [f.kind, f.path])).toEqual(listed.map((a) => [a.kind, a.path]));
    expect(r.written).toBe(listed.length);
    for (const a of listed) expect(readFileSync(join(out, a.path)).equals(readFileSync(join(rich, a.path))), a.path).toBe(true);
    expect(tree(out).filter((p) => !p.endsWith('/'))).toEqual(listed.map((a) => a.path).sort());
    const again = ok(rich, ['artifacts', 'mixed', '--out', out]);
    expect([again.written, again.unchanged]).toEqual([0, listed.length]);
  });

  it('a different file there refuses everything (WORKSPACE_NOT_EMPTY, exit 3), nothing written; so does a link on the way', () => {
    const out = makeTempDir();
    mkdirSync(join(out, '.kair', 'contracts', 'mixed'), { recursive: true });
    writeFileSync(join(out, '.kair', 'contracts', 'mixed', 'history.jsonl'), 'mine\n');
    const before = tree(out);
    const r = kj(rich, ['artifacts', 'mixed', '--out', out]);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('WORKSPACE_NOT_EMPTY');
    expect(r.json.error.message).toMatch(/history\.jsonl exists with other content/);
    expect(tree(out)).toEqual(before);

    const linked = makeTempDir();
    const elsewhere = makeTempDir();
    symlinkSync(elsewhere, join(linked, '.kair'));
    const l = kj(rich, ['artifacts', 'mixed', '--out', linked]);
    expect(l.code).toBe(3);
    expect(l.json.error.message).toMatch(/symbolic link/);
    expect(tree(elsewhere)).toEqual([]);
  });

  it('a kair workspace as DIR is refused (its contracts would change), nothing written', () => {
    const other = makeWorkspace();
    const before = fileHashes(other);
    const r = kj(rich, ['artifacts', 'mixed', '--out', other]);
    expect(r.code).toBe(3);
    expect(r.json.error.message).toMatch(/is a kair workspace/);
    expect(fileHashes(other)).toEqual(before);
  });

  it('a missing parent folder or an unusable path is a usage error naming --out', () => {
    const parent = makeTempDir();
    const r = kj(rich, ['artifacts', 'mixed', '--out', join(parent, 'no', 'such')]);
    expect(r.code).toBe(2);
    expect(r.json.error.message).toMatch(/--out .*parent folder is missing/);
    const huge = kj(rich, ['artifacts', 'mixed', '--out', 'x'.repeat(5000)]);
    expect(huge.code).toBe(2);
    expect(huge.json.error.message).toMatch(/--out/);
    expect(tree(parent)).toEqual([]);
  });
});

describe('kair export --to DIR / kair import --from DIR (local)', () => {
  it('export writes a workspace that verifies; import into a fresh one and export again: byte-identical', () => {
    const dir = makeTempDir();
    const head = ok(rich, ['head']).digest as string;
    const e = ok(rich, ['export', '--to', join(dir, 'b')]);
    expect(ExportOutputSchema.safeParse(e).success).toBe(true);
    expect(e).toMatchObject({ backend: 'local', contracts: 4 });
    expect(e.rows.agent_execution_ledger).toBeGreaterThan(0);
    expect(e.rows.kimi_execution_runs).toBeGreaterThan(0);
    // Every execution table has rows: all of them are moved.
    expect(Object.entries(e.rows).filter(([, n]) => n === 0)).toEqual([]);
    const b = join(dir, 'b');
    const v = ok(b, ['verify', '--since-head', head]);
    // The same chains and heads: the digest taken before the export holds on the copy.
    expect(ok(b, ['head']).digest).toBe(head);
    expect(v.problems).toEqual([]);
    expect(v.warnings).toEqual([]);
    // What history hashes is the source's, byte for byte; the rows are the source's.
    expect(recordedFiles(b)).toEqual(recordedFiles(rich));
    expect(localRows(b)).toEqual(localRows(rich));
    expect(existsSync(join(b, '.kair', 'contracts', 'long', 'checkpoints', '63.json'))).toBe(true);
    expect(readJson(join(b, '.kair', 'config.json')).workspace_id).toBe(readJson(join(rich, '.kair', 'config.json')).workspace_id);

    const fresh = makeWorkspace();
    const i = ok(fresh, ['import', '--from', b]);
    expect(ImportOutputSchema.safeParse(i).success).toBe(true);
    expect(i).toMatchObject({ backend: 'local', contracts: 4, events: e.events });
    expect(ok(fresh, ['verify']).problems).toEqual([]);
    ok(fresh, ['export', '--to', join(dir, 'c')]);
    const c = join(dir, 'c');
    expect(fileHashes(c)).toEqual(fileHashes(b));
    expect(localRows(c)).toEqual(localRows(b));
    // The imported workspace works: the next command on it.
    ok(fresh, ['grant', 'long', 'ns:more']);
  });

  it('an existing DIR/.kair (a folder or a link) is WORKSPACE_NOT_EMPTY, exit 3, and nothing is written', () => {
    const dir = makeTempDir();
    mkdirSync(join(dir, '.kair'));
    const before = tree(dir);
    const r = kj(rich, ['export', '--to', dir]);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('WORKSPACE_NOT_EMPTY');
    expect(tree(dir)).toEqual(before);

    const linked = makeTempDir();
    const elsewhere = makeTempDir();
    symlinkSync(elsewhere, join(linked, '.kair'));
    const l = kj(rich, ['export', '--to', linked]);
    expect(l.code).toBe(3);
    expect(l.json.error.message).toMatch(/symbolic link/);
    expect(tree(elsewhere)).toEqual([]);
    expect(tree(linked)).toEqual(['.kair@']);
  });

  it('a missing parent of --to, or a path too long, is a usage error naming --to', () => {
    const dir = makeTempDir();
    const r = kj(rich, ['export', '--to', join(dir, 'a', 'b')]);
    expect(r.code).toBe(2);
    expect(r.json.error.message).toMatch(/--to/);
    const huge = kj(rich, ['export', '--to', 'y'.repeat(5000)]);
    expect(huge.code).toBe(2);
    expect(tree(dir)).toEqual([]);
  });

  it('a source that does not verify is refused (INTEGRITY_FAILED, exit 7) and the target is untouched', () => {
    const dir = makeTempDir();
    ok(rich, ['export', '--to', dir]);
    const src = cloneWorkspace(dir);
    const file = historyFile(src, 'mixed');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"Mixed"', '"Mixes"'));
    const fresh = makeWorkspace();
    const before = fileHashes(fresh);
    const r = kj(fresh, ['import', '--from', src]);
    expect(r.code).toBe(7);
    expect(r.json.error.code).toBe('INTEGRITY_FAILED');
    expect(r.json.error.message).toMatch(/does not verify/);
    expect(r.json.problems.length).toBeGreaterThan(0);
    expect(fileHashes(fresh)).toEqual(before);
    expect(readdirSync(fresh)).toEqual(['.kair']);
  });

  it('a source holding a symbolic link (an artifact pointing outside, a linked contract folder) is refused (exit 7), nothing written', () => {
    const dir = makeTempDir();
    ok(rich, ['export', '--to', dir]);
    const outside = join(makeTempDir(), 'secret.txt');
    writeFileSync(outside, 'not kair\n');
    const src = cloneWorkspace(dir);
    symlinkSync(outside, join(src, '.kair', 'contracts', 'mixed', 'artifacts', 'run', 'extra.json'));
    const fresh = makeWorkspace();
    const before = fileHashes(fresh);
    const r = kj(fresh, ['import', '--from', src]);
    expect(r.code).toBe(7);
    expect(r.json.error.message).toMatch(/extra\.json is a symbolic link/);
    expect(fileHashes(fresh)).toEqual(before);

    const src2 = cloneWorkspace(dir);
    const moved = join(makeTempDir(), 'long');
    cpSync(join(src2, '.kair', 'contracts', 'long'), moved, { recursive: true });
    rmSync(join(src2, '.kair', 'contracts', 'long'), { recursive: true });
    symlinkSync(moved, join(src2, '.kair', 'contracts', 'long'));
    const l = kj(rich, ['export', '--to', makeTempDir()], { env: { KAIR_DIR: src2 } });
    expect(l.code).toBe(7);
    expect(l.json.error.message).toMatch(/contracts\/long is a symbolic link/);
  });

  it('import refuses a workspace that is not fresh (WORKSPACE_NOT_EMPTY), a missing source (exit 4) and a linked .kair (exit 2)', () => {
    const dir = makeTempDir();
    ok(rich, ['export', '--to', dir]);
    const used = makeWorkspace();
    ok(used, ['propose', 'Mine', '--id', 'mine']);
    const before = fileHashes(used);
    const r = kj(used, ['import', '--from', dir]);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('WORKSPACE_NOT_EMPTY');
    expect(fileHashes(used)).toEqual(before);

    const fresh = makeWorkspace();
    const missing = kj(fresh, ['import', '--from', join(dir, 'nothing')]);
    expect(missing.code).toBe(4);
    expect(missing.json.error.code).toBe('WORKSPACE_NOT_FOUND');

    const linked = makeTempDir();
    symlinkSync(join(dir, '.kair'), join(linked, '.kair'));
    const l = kj(fresh, ['import', '--from', linked]);
    expect(l.code).toBe(2);
    expect(l.json.error.message).toMatch(/symbolic link/);
    expect(kair(fresh, ['list', '--json']).json.contracts).toEqual([]);
  });
});

describe('export under writers and kills', () => {
  it('an export taken while other processes write verifies (each contract read under its lock)', async () => {
    const ws = makeWorkspace();
    for (const id of ['w1', 'w2']) ok(ws, ['propose', `Writer ${id}`, '--id', id]);
    const writers = Array.from({ length: 6 }, (_, i) => kairAsync(ws, ['grant', `w${(i % 2) + 1}`, `local:${['read', 'write', 'exec'][i % 3]}`, '--json']));
    const dir = makeTempDir();
    const e = await kairAsync(ws, ['export', '--to', dir, '--json']);
    for (const w of await Promise.all(writers)) expect(w.code, w.stdout + w.stderr).toBe(0);
    expect(e.code, e.stdout + e.stderr).toBe(0);
    const v = ok(dir, ['verify']);
    expect(v.problems).toEqual([]);
  });

  it.each(['transfer.contract', 'export.staged'])('killed at %s, an export leaves no DIR/.kair (only its staging folder), and the next export succeeds', (point) => {
    const dir = makeTempDir();
    const r = kair(rich, ['export', '--to', dir, '--json'], { env: { KAIR_FAILPOINT: point } });
    expect(r.code).not.toBe(0);
    expect(existsSync(join(dir, '.kair'))).toBe(false);
    expect(readdirSync(dir).every((n) => n.startsWith('.kair-export-'))).toBe(true);
    expect(readdirSync(dir).length).toBe(1);
    ok(rich, ['export', '--to', dir]);
    expect(ok(dir, ['verify']).problems).toEqual([]);
    expect(readdirSync(dir)).toEqual(['.kair']); // the dead export's staging folder was swept
  });

  it('killed after staging, a local import leaves the fresh workspace as it was, and the next import succeeds', () => {
    const dir = makeTempDir();
    ok(rich, ['export', '--to', dir]);
    const fresh = makeWorkspace();
    const before = fileHashes(fresh);
    const r = kair(fresh, ['import', '--from', dir, '--json'], { env: { KAIR_FAILPOINT: 'import.staged' } });
    expect(r.code).not.toBe(0);
    expect(fileHashes(fresh)).toEqual(before);
    expect(readdirSync(fresh).filter((n) => n.startsWith('.kair-import-'))).toHaveLength(1);
    ok(fresh, ['import', '--from', dir]);
    expect(ok(fresh, ['verify']).problems).toEqual([]);
    expect(readdirSync(fresh)).toEqual(['.kair']);
  });
});
