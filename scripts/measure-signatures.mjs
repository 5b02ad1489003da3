// The cost of signature checks in run's approval gate (`node scripts/measure-signatures.mjs`,
// after `npm run build`; ROUNDS=N, default 21). Prints medians in milliseconds:
//  - one `ssh-keygen -Y verify` as kair runs it (the same arguments, spawned synchronously);
//  - `kair run <id> --dry-run --json` (the run's gates, nothing written) with require_signed
//    true and false, on a contract with 1 and with 3 signed approvals, measured alternately;
//    (true − false) / approvals is the cost per approval in the gate, temp files included.
// Absolute times on a shared machine: compare the figures of one run with each other only.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin', 'kair.js');
const rounds = Number(process.env.ROUNDS ?? 21);
const env = { ...process.env, NO_COLOR: '1' };
delete env.NODE_EXTRA_CA_CERTS;
const dir = mkdtempSync(join(tmpdir(), 'kair-sigcost-'));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const timed = (fn) => {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const must = (r, what) => {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return r;
};

try {
  const actors = ['alice', 'bob', 'carol'];
  for (const a of actors) must(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, a), '-C', a]), `ssh-keygen -t ed25519 (${a})`);
  const signers = actors.map((a) => `${a} ${readFileSync(join(dir, `${a}.pub`), 'utf8').trim().split(' ').slice(0, 2).join(' ')}`).join('\n') + '\n';

  /** A workspace whose contract c is approved by the first `n` actors, each approval signed. */
  const workspace = (n) => {
    const ws = mkdtempSync(join(dir, `ws${n}-`));
    const kair = (args, actor = 'alice') => must(spawnSync(process.execPath, [bin, ...args, '--dir', ws], { env: { ...env, KAIR_ACTOR: actor }, encoding: 'utf8' }), `kair ${args.join(' ')}`);
    kair(['init']);
    writeFileSync(join(ws, '.kair', 'allowed_signers'), signers);
    const cfgFile = join(ws, '.kair', 'config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    cfg.approvals = { ...cfg.approvals, min: n };
    writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
    kair(['propose', 'signature cost', '--id', 'c']);
    kair(['plan', 'c', '--file', join(root, 'fixtures', 'plans', 'custom-kimi.json')]);
    kair(['request-approval', 'c']);
    for (const a of actors.slice(0, n)) kair(['approve', 'c', '--sign', '--key', join(dir, a)], a);
    const requireSigned = (on) => {
      const c = JSON.parse(readFileSync(cfgFile, 'utf8'));
      c.approvals = { ...c.approvals, require_signed: on };
      writeFileSync(cfgFile, JSON.stringify(c, null, 2));
    };
    const dry = () => must(spawnSync(process.execPath, [bin, 'run', 'c', '--dry-run', '--json', '--dir', ws], { env: { ...env, KAIR_ACTOR: 'alice' }, encoding: 'utf8' }), 'kair run --dry-run');
    return { ws, requireSigned, dry };
  };

  // One verify exactly as the gate spawns it (signature and signers in a temp folder).
  const one = workspace(1);
  const approve = readFileSync(join(one.ws, '.kair', 'contracts', 'c', 'history.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.type === 'approve');
  const cfg = JSON.parse(readFileSync(join(one.ws, '.kair', 'config.json'), 'utf8'));
  const sig = approve.data.signature;
  const message = `kair-approval:v1:${cfg.workspace_id}:c:v${approve.data.version ?? 1}:${approve.data.plan_sha256}:alice:${sig.at}`;
  writeFileSync(join(dir, 'sig'), sig.armored);
  writeFileSync(join(dir, 'allowed_signers'), signers);
  const verifyArgs = ['-Y', 'verify', '-f', join(dir, 'allowed_signers'), '-I', 'alice', '-n', 'kair-approval', '-s', join(dir, 'sig'), '-O', `verify-time=${sig.at.replace(/[-:]/g, '').replace('T', '').slice(0, 14)}Z`];
  const check = spawnSync('ssh-keygen', verifyArgs, { input: message, encoding: 'utf8' });
  const verifyOk = check.status === 0;
  const verify = [];
  for (let i = 0; i < Math.max(rounds, 31); i++) verify.push(timed(() => spawnSync('ssh-keygen', verifyArgs, { input: message, encoding: 'utf8' })));

  const three = workspace(3);
  const gate = {};
  for (const [name, w] of [['1 approval', one], ['3 approvals', three]]) {
    const on = [];
    const off = [];
    for (let i = 0; i < rounds; i++) {
      w.requireSigned(true);
      on.push(timed(w.dry));
      w.requireSigned(false);
      off.push(timed(w.dry));
    }
    gate[name] = { on: median(on), off: median(off) };
  }
  const f = (x) => x.toFixed(1);
  console.log(`rounds ${rounds}; ssh-keygen ${spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim()}`);
  console.log(`ssh-keygen -Y verify, one call (${verifyOk ? 'accepted' : 'REJECTED: ' + check.stderr.trim()}): median ${f(median(verify))} ms over ${verify.length}`);
  for (const [name, g] of Object.entries(gate)) {
    const n = Number(name[0]);
    console.log(`run --dry-run, ${name}: require_signed true ${f(g.on)} ms, false ${f(g.off)} ms → ${f((g.on - g.off) / n)} ms per approval`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
