// Bundles src/cli/entry.ts into dist/kair.cjs (CJS loads faster than ESM here; see
// docs/decisions/002-bundle-format.md). better-sqlite3 stays external: it is a native addon.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['src/cli/entry.ts'],
  outfile: 'dist/kair.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['better-sqlite3'],
  define: { __KAIR_VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: false,
});

// Warm the V8 code cache the launcher keeps next to the bundle (rebuilt on any bundle change),
// on the read path that start-up matters most for: `status` of a real contract.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const clearCache = () => {
  for (const f of readdirSync('dist')) if (f.endsWith('.cache')) rmSync(`dist/${f}`);
};
const ws = mkdtempSync(join(tmpdir(), 'kair-build-'));
const kair = (...args) => execFileSync(process.execPath, ['bin/kair.js', ...args, '--dir', ws], { stdio: 'ignore', env: { ...process.env, KAIR_ACTOR: 'build' } });
try {
  kair('init');
  kair('propose', 'warm the cache', '--id', 'warm');
  clearCache();
  kair('status', 'warm', '--json');
} catch {
  clearCache(); // a cache of a failed run is still valid but partial; start clean instead
} finally {
  rmSync(ws, { recursive: true, force: true });
}
