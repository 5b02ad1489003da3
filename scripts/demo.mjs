// `npm run demo`: drives the lifecycle on fixtures/ in a temporary workspace (the AEC lane joins
// when it lands),
// printing each command and its result. Any unexpected exit status fails the demo loudly.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const ws = mkdtempSync(join(tmpdir(), 'kair-demo-'));
const env = { ...process.env, KAIR_NOW: '2026-01-30T12:00:00.000Z', NO_COLOR: '1', KAIR_ACTOR: 'dev' };
const plans = join(root, 'fixtures', 'plans');

function kair(args, expectExit = 0, extraEnv = {}) {
  const shown = `kair ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
  const r = spawnSync(process.execPath, [join(root, 'bin', 'kair.js'), ...args, '--json'], { cwd: ws, env: { ...env, ...extraEnv }, encoding: 'utf8' });
  let doc;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    doc = null;
  }
  const what = doc?.ok
    ? doc.contract
      ? `${doc.contract.id} ${doc.contract.state} v${doc.contract.version}`
      : doc.dry_run
        ? `dry run: lanes ${doc.lanes.join('+')}${doc.kimi_estimate ? `, estimate $${doc.kimi_estimate.costUSD} / ${doc.kimi_estimate.runtimeSec}s` : ''}`
        : doc.run_id
          ? `${doc.run_id} ${doc.status}: ${doc.steps.map((s) => `${s.id}=${s.reason_code ?? s.status}`).join(', ')}${doc.kimi ? ` — ${doc.kimi.result.summary}` : ''}`
          : doc.problems
            ? `verified: ${doc.contracts} contract(s), ${doc.events} event(s), ${doc.problems.length} problem(s)`
            : 'ok'
    : `${doc?.error?.code}: ${doc?.error?.message}`;
  console.log(`$ ${shown}\n  → exit ${r.status}: ${what}`);
  if (r.status !== expectExit) {
    console.error(`demo FAILED: expected exit ${expectExit}, got ${r.status}\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
  return doc;
}

console.log(`kair demo — workspace ${ws}\n`);
kair(['init']);
kair(['propose', 'Add chat and notifications', '--id', 'chat', '--requires', 'local:read,local:write']);
kair(['plan', 'chat', '--file', join(plans, 'custom-kimi.json')]);
kair(['request-approval', 'chat'], 3); // blocked: required controls are not granted
kair(['grant', 'chat', 'local:read', 'local:write']);
kair(['request-approval', 'chat']);
kair(['approve', 'chat'], 0, { KAIR_ACTOR: 'alice' });
// A hand edit of the approved plan voids the approval's binding: run refuses, nothing is spent.
const planFile = join(ws, '.kair', 'contracts', 'chat', 'plan', 'plan_v1.json');
const original = readFileSync(planFile, 'utf8');
writeFileSync(planFile, original.replace('"maxAgents": 5', '"maxAgents": 4'));
kair(['run', 'chat', '--dry-run'], 3);
writeFileSync(planFile, original);
kair(['run', 'chat', '--dry-run']);
kair(['revoke', 'chat', 'local:write']); // a kill switch: run is refused until re-granted
kair(['run', 'chat', '--dry-run'], 3);
kair(['grant', 'chat', 'local:write']);
kair(['run', 'chat', '--pause-at', 'review-delta']); // the Kimi envelope runs, then a pause
kair(['resume', 'chat']); // continues from the ledger of steps; the envelope is reused
kair(['review', 'chat']);
kair(['accept', 'chat']);
kair(['envelopes', '--contract', 'chat']);
kair(['propose', 'Reuse the inventory checkout', '--id', 'checkout']);
kair(['plan', 'checkout', '--file', join(plans, 'reuse-only.json')]);
kair(['request-approval', 'checkout']);
kair(['approve', 'checkout']);
kair(['run', 'checkout'], 3); // No execution required (reuse sufficient)
kair(['rewind', 'chat', 'switch to the invoicing template']);
kair(['history', 'chat', '--limit', '3']);
kair(['verify']);
console.log(`\nartifacts: ${join(ws, '.kair', 'contracts', 'chat')}`);
console.log('demo finished: every command exited as expected');
