/**
 * What kair's build shims and lock options assume about proper-lockfile and write-file-atomic
 * (SPEC §18: every shim or option that depends on a library's internals has a test that fails
 * when those internals change). The shims (scripts/shims/, served by scripts/build.mjs to these
 * libraries only) replace what the libraries import; the lock passes proper-lockfile an `fs` with
 * five synchronous calls. Each test reads the installed library, not a copy of it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import lockfile from 'proper-lockfile';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCK_LIBRARY_OPTIONS, lockFs } from '../../src/store/fs/lock.js';
import { ROOT } from '../helpers/cli.js';

const require = createRequire(import.meta.url);
const libDir = (name: string) => dirname(require.resolve(`${name}/package.json`));
const source = (name: string, file: string) => readFileSync(join(libDir(name), file), 'utf8');
/** A module as the library itself resolves it (its own nested copy when it has one). */
const requireFrom = (lib: string, id: string): unknown => createRequire(join(libDir(lib), 'package.json'))(id);
const shim = (name: string): unknown => require(join(ROOT, 'scripts', 'shims', `${name}.cjs`));

/** Every top-level require() of a library file, in order. */
const requires = (text: string) => [...text.matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('proper-lockfile: the `fs` option kair passes', () => {
  it('lockSync, checkSync and the release touch only the five synchronous calls kair gives it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kair-libfs-'));
    dirs.push(dir);
    const used = new Set<string>();
    // Every property the library reads of the given fs is recorded: a version that starts to
    // call anything else (an async call, openSync…) gets undefined here, and this test fails.
    const fs = new Proxy(lockFs as Record<string, unknown>, {
      get(t, k) {
        if (typeof k === 'string') used.add(k);
        return t[k as string];
      },
    });
    const opts = { ...LOCK_LIBRARY_OPTIONS, lockfilePath: join(dir, 'x.lock'), fs };
    const release = lockfile.lockSync(join(dir, 'x'), opts);
    expect(lockfile.checkSync(join(dir, 'x'), opts)).toBe(true);
    release();
    expect(lockfile.checkSync(join(dir, 'x'), opts)).toBe(false);
    expect([...used].filter((k) => !Object.hasOwn(lockFs, k))).toEqual([]);
    expect(used).toContain('mkdirSync');
    expect(used).toContain('rmdirSync');
  });

  it('graceful-fs is only its default `fs`, overridden by the option (so the bundle may serve node:fs for it)', () => {
    for (const file of ['lib/lockfile.js', 'lib/adapter.js']) {
      const text = source('proper-lockfile', file);
      expect(requires(text), file).toContain('graceful-fs');
      // The default is spread before the caller's options (`{ …, fs, ...options }`) or used as `options.fs || fs`.
      const uses = [...text.matchAll(/\bfs\b(?!\.)/g)].length;
      expect(uses, file).toBeGreaterThan(0);
    }
    const lock = source('proper-lockfile', 'lib/lockfile.js');
    for (const m of lock.matchAll(/\n\s+fs,\n([\s\S]*?)\};/g)) expect(m[1], 'the caller\'s options come after the default fs').toMatch(/\.\.\.options/);
    expect(source('proper-lockfile', 'lib/adapter.js')).toMatch(/createSyncFs\(options\.fs \|\| fs\)/);
    // Whatever graceful-fs adds is never reached through the shim: it is node:fs itself.
    expect(shim('graceful-fs')).toBe(require('node:fs'));
  });
});

describe('signal-exit: the exit-only shim serves both libraries', () => {
  it("proper-lockfile imports signal-exit 3's shape: the module is onExit(cb) and returns a remover", () => {
    const text = source('proper-lockfile', 'lib/lockfile.js');
    expect(text).toMatch(/const onExit = require\('signal-exit'\);/);
    expect(text).toMatch(/\nonExit\(\(\) => \{/);
    const real = requireFrom('proper-lockfile', 'signal-exit') as (cb: () => void) => () => void;
    expect(typeof real).toBe('function');
    const own = shim('signal-exit') as ((cb: () => void) => () => void) & { onExit: unknown };
    expect(typeof own).toBe('function');
    const remove = own(() => {});
    expect(typeof remove).toBe('function');
    remove();
  });

  it("write-file-atomic imports signal-exit 4's shape: { onExit }, whose result it calls to remove the handler", () => {
    const text = source('write-file-atomic', 'lib/index.js');
    expect(text).toMatch(/const \{ onExit \} = require\('signal-exit'\)/);
    expect([...text.matchAll(/onExit\(/g)].length).toBeGreaterThan(0);
    expect(text).toMatch(/const removeOnExitHandler = onExit\(/);
    const real = requireFrom('write-file-atomic', 'signal-exit') as { onExit?: unknown };
    expect(typeof real.onExit).toBe('function');
    const own = shim('signal-exit') as { onExit: (cb: () => void) => () => void };
    const remove = own.onExit(() => {});
    expect(typeof remove).toBe('function');
    remove();
  });
});

describe('worker_threads: the shim gives write-file-atomic its thread id', () => {
  it('write-file-atomic reads only threadId of worker_threads, and the shim says the main thread', () => {
    const text = source('write-file-atomic', 'lib/index.js');
    expect(requires(text).filter((r) => r === 'worker_threads' || r === 'node:worker_threads')).toHaveLength(1);
    const bound = /const (\w+) = require\('(?:node:)?worker_threads'\)/.exec(text)?.[1];
    expect(bound).toBeDefined();
    expect(new Set([...text.matchAll(new RegExp(`\\b${bound}\\.(\\w+)`, 'g'))].map((m) => m[1]))).toEqual(new Set(['threadId']));
    expect(shim('worker-threads')).toMatchObject({ threadId: 0 });
  });
});
