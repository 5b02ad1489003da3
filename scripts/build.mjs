// Bundles src/cli/entry.ts into dist/kair.cjs (CJS loads faster than ESM here; see
// docs/decisions/002-startup-and-bundle.md and 010-bundle-split-and-write-path.md).
// better-sqlite3's JavaScript is bundled; its native addon is loaded from the installed package
// by path (src/store/sqlite/db.ts), so `bindings`, which only searches for it, stays out.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // pg is loaded at run time, by the PostgreSQL store only (dynamic import): never inside a bundle
  // every command reads. pg-native is pg's optional native binding, not installed.
  external: ['bindings', 'better-sqlite3/package.json', 'pg', 'pg-native'],
  // import.meta.url only serves the unbundled (ESM) test runs; the CJS bundle uses __filename.
  define: { __KAIR_VERSION__: JSON.stringify(pkg.version), __KAIR_BUNDLED__: 'true', 'import.meta.url': 'undefined' },
  legalComments: 'none',
  logLevel: 'warning',
};

// Bundles, each loaded only when a command needs it (docs/decisions/010):
// - dist/kair.cjs: argv parsing, the read path (status, list, history…);
// - dist/kair-lifecycle.cjs: the lifecycle and run commands (src/cli/load-lazy.ts picks it);
// - dist/kair-plan.cjs: plan validation with zod, imported by `kair plan` only;
// - dist/kair-cmd.cjs: everything else (help, completion, the AEC admin commands).
const splitLazy = {
  name: 'split-lazy',
  setup(b) {
    b.onResolve({ filter: /^\.\/(lazy\.js|kair-cmd\.cjs)$/ }, () => ({ path: './kair-cmd.cjs', external: true }));
    b.onResolve({ filter: /^\.\/kair-lifecycle\.cjs$/ }, () => ({ path: './kair-lifecycle.cjs', external: true }));
  },
};
// A dynamic import of src/domain/plan.ts becomes a load of dist/kair-plan.cjs, through the
// launcher's code cache like the other bundles. Inside the lifecycle bundle zod would otherwise
// be 60% of the file that every `run` and `grant` reads.
const planBundle = {
  name: 'plan-bundle',
  setup(b) {
    b.onResolve({ filter: /\/domain\/plan\.js$/ }, (a) => (a.kind === 'dynamic-import' ? { path: 'kair-plan.cjs', namespace: 'sibling-bundle' } : undefined));
    b.onResolve({ filter: /^\.\/kair-plan\.cjs$/ }, () => ({ path: './kair-plan.cjs', external: true }));
    b.onLoad({ filter: /.*/, namespace: 'sibling-bundle' }, (a) => ({
      contents: `const load = globalThis.__kairLoadCached;\nmodule.exports = load ? load(__dirname + '/${a.path}') : require('./${a.path}');\n`,
      loader: 'js',
    }));
  },
};
// The PostgreSQL side (src/store/pg/backend.ts, reached by a dynamic import) is dist/kair-pg.cjs:
// the bundles every local command reads carry none of it, and it loads pg only when run.
const pgBundle = {
  name: 'pg-bundle',
  setup(b) {
    b.onResolve({ filter: /\/store\/pg\/backend\.js$/ }, (a) => (a.kind === 'dynamic-import' ? { path: 'kair-pg.cjs', namespace: 'pg-bundle' } : undefined));
    b.onResolve({ filter: /^\.\/kair-pg\.cjs$/ }, () => ({ path: './kair-pg.cjs', external: true }));
    b.onLoad({ filter: /.*/, namespace: 'pg-bundle' }, () => ({
      contents: "const load = globalThis.__kairLoadCached;\nmodule.exports = load ? load(__dirname + '/kair-pg.cjs') : require('./kair-pg.cjs');\n",
      loader: 'js',
    }));
  },
};
// What proper-lockfile and write-file-atomic require at load time, cut to what kair uses of it
// (scripts/shims/, docs/decisions/011): every `run` and `grant` loads both libraries, and their
// imports (graceful-fs, node:assert, worker_threads) cost more than those commands' own code.
// Which library's import of each module is served by scripts/shims/ (signal-exit: an exit-only
// onExit for both libraries, so SIGINT/SIGTERM keep their default action; see the shim).
const shims = { 'graceful-fs': ['proper-lockfile'], 'signal-exit': ['proper-lockfile', 'write-file-atomic'], worker_threads: ['write-file-atomic'] };
const leanDeps = {
  name: 'lean-deps',
  setup(b) {
    b.onResolve({ filter: /^(graceful-fs|signal-exit|worker_threads)$/ }, (a) =>
      shims[a.path].some((lib) => a.importer.includes(`/node_modules/${lib}/`)) ? { path: new URL(`./shims/${a.path.replace('_', '-')}.cjs`, import.meta.url).pathname } : undefined,
    );
  },
};
await build({ ...common, entryPoints: ['src/cli/entry.ts'], outfile: 'dist/kair.cjs', plugins: [splitLazy] });
await build({ ...common, entryPoints: ['src/cli/lazy-lifecycle.ts'], outfile: 'dist/kair-lifecycle.cjs', plugins: [splitLazy, planBundle, pgBundle, leanDeps] });
await build({ ...common, entryPoints: ['src/domain/plan.ts'], outfile: 'dist/kair-plan.cjs' });
await build({ ...common, entryPoints: ['src/cli/lazy.ts'], outfile: 'dist/kair-cmd.cjs', plugins: [splitLazy, pgBundle, leanDeps] });
// The launcher runs bundles as vm.Scripts, which have no dynamic-import callback: connect.ts's
// import('pg') becomes a require here.
await build({ ...common, entryPoints: ['src/store/pg/backend.ts'], outfile: 'dist/kair-pg.cjs', supported: { 'dynamic-import': false } });
// The thread `kair verify` starts on a long history to hash-check part of it (src/app/verify-fast.ts):
// its own small bundle, loaded by verify only.
await build({ ...common, entryPoints: ['src/app/verify-worker.ts'], outfile: 'dist/kair-verify-worker.cjs' });

// The launcher names a bundle's code cache by the hash on the bundle's first line (bin/kair.js):
// computed once here, so start-up reads it instead of hashing the bundle.
for (const f of ['kair.cjs', 'kair-lifecycle.cjs', 'kair-plan.cjs', 'kair-cmd.cjs', 'kair-pg.cjs']) {
  const body = readFileSync(`dist/${f}`, 'utf8');
  writeFileSync(`dist/${f}`, `// kair-bundle-sha256 ${createHash('sha256').update(body).digest('hex')}\n${body}`);
}

// Warm the V8 code caches the launcher keeps next to the bundles (rebuilt on any bundle change).
// A cache holds what the command that wrote it had compiled, so each bundle is warmed by the
// commands it matters most for: `status` then `run` and `grant` (dist/kair.cjs), `run` of an
// approved plan through both lanes then `grant` (kair-lifecycle.cjs), `plan` (kair-plan.cjs), help
// (kair-cmd.cjs). KAIR_EXTEND_CODE_CACHE makes a command write back a cache it was given.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const clearCache = () => {
  for (const f of readdirSync('dist')) if (f.endsWith('.cache')) rmSync(`dist/${f}`);
};
// Old caches go first: the warm-up commands below must not run (or extend) another build's cache.
clearCache();
const ws = mkdtempSync(join(tmpdir(), 'kair-build-'));
const kair = (...args) => execFileSync(process.execPath, ['bin/kair.js', ...args, '--dir', ws], { stdio: 'ignore', env: { ...process.env, KAIR_ACTOR: 'build' } });
const extend = (...args) => execFileSync(process.execPath, ['bin/kair.js', ...args, '--dir', ws], { stdio: 'ignore', env: { ...process.env, KAIR_ACTOR: 'build', KAIR_EXTEND_CODE_CACHE: '1' } });
const plan = JSON.stringify({
  version: 'kair.plan.v1',
  title: 'warm the cache',
  strategy: 'CUSTOM',
  details: { requiresKimi: true, features: ['chat'] },
  steps: [
    { id: 'generate', summary: 'generate', lane: 'kimi' },
    { id: 'send', summary: 'send', simulation: { utterance: 'send invoice', fields: { customer: 'acme', amount: '1' } } },
    { id: 'check', summary: 'check' },
  ],
});
try {
  kair('init');
  // The run below goes through both lanes: the Kimi stub and an impactful simulation, confirmed.
  for (const sim of ['send-invoice', 'void-invoice']) {
    kair('sim', 'register', '--file', `fixtures/simulations/${sim}.json`);
    kair('sim', 'activate', sim);
  }
  kair('access', 'allow', 'build', 'invoice:send');
  kair('propose', 'warm the cache', '--id', 'warm');
  kair('propose', 'warm the plan cache', '--id', 'warm-plan');
  kair('plan', 'warm', '--plan-json', plan);
  kair('request-approval', 'warm');
  kair('approve', 'warm');
  clearCache();
  kair('status', 'warm', '--json');
  extend('run', 'warm', '--json', '--confirm', 'yes');
  extend('grant', 'warm-plan', 'local:read');
  kair('plan', 'warm-plan', '--plan-json', plan);
  kair('--help');
} catch {
  clearCache(); // a cache of a failed run is still valid but partial; start clean instead
} finally {
  rmSync(ws, { recursive: true, force: true });
}
