// usage: node scripts/bench-scale-build.mjs <kair checkout> <empty folder> <contracts>
// Builds a workspace of N contracts through that checkout's own store functions (its
// scripts/bench-scale-entry.ts, bundled on the fly), with fsync stubbed out while building as
// bench-scale.mjs does, and writes its index. Used by scripts/icount-scale.sh to compare checkouts.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';

const [tree, ws, count] = process.argv.slice(2);
if (!tree || !ws || !count) throw new Error('usage: node scripts/bench-scale-build.mjs <kair checkout> <empty folder> <contracts>');
const n = Number(count);
const out = join(tmpdir(), `kair-scale-build-${process.pid}.cjs`);
buildSync({ entryPoints: [join(resolve(tree), 'scripts', 'bench-scale-entry.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'error' });
const req = createRequire(import.meta.url);
const fs = req('node:fs');
const k = req(out);
spawnSync(process.execPath, [join(tree, 'bin', 'kair.js'), 'init', '--dir', ws], { env: { ...process.env, KAIR_ACTOR: 'bench' } });
const w = k.workspaceAt(ws);
const meta = { at: '2026-01-01T00:00:00.000Z', actor: 'bench' };
const real = fs.fsyncSync;
fs.fsyncSync = () => {};
const entries = [];
for (let i = 0; i < n; i++) {
  const id = `c${String(i).padStart(6, '0')}`;
  entries.push(k.indexEntry(k.createContract(w, id, k.decidePropose(id, `scale ${i}`, []), meta, k.newDpc(`scale ${i}`, meta.at), null).contract));
}
k.writeIndex(w, entries);
fs.fsyncSync = real;
fs.rmSync(out, { force: true });
spawnSync('sync');
