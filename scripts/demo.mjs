// `npm run demo`: the whole lifecycle on fixtures/ in a temporary workspace, both execution
// lanes included. Each command is printed with its exit status and a one-line result; any
// unexpected exit status fails the demo loudly. KAIR_NOW is fixed, so the output is the same on
// every run (test/e2e/demo.test.ts compares it with test/e2e/demo.golden.txt).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const ws = mkdtempSync(join(tmpdir(), 'kair-demo-'));
// The workspace goes when the demo ends, failed or not; KAIR_DEMO_KEEP=1 keeps it to look around.
const keep = process.env.KAIR_DEMO_KEEP === '1';
if (!keep) process.on('exit', () => rmSync(ws, { recursive: true, force: true }));
const env = { ...process.env, KAIR_NOW: '2026-01-30T12:00:00.000Z', NO_COLOR: '1', KAIR_ACTOR: 'dev' };
delete env.KAIR_DIR;
delete env.KAIR_FAILPOINT;
const fixtures = join(root, 'fixtures');
const plans = join(fixtures, 'plans');
const shorten = (p) => p.replace(root, '').replace(ws + '/', '');

const steps = (doc) => doc.steps.map((s) => `${s.id}=${s.reason_code ?? s.status}`).join(', ');

const dryRun = (doc) => `dry run: lanes ${doc.lanes.join('+')}${doc.kimi_estimate ? `, estimate $${doc.kimi_estimate.costUSD} / ${doc.kimi_estimate.runtimeSec}s` : ''}; ${doc.steps.map((s) => `${s.id}=${s.status}`).join(', ')}`;

function summary(doc) {
  if (!doc) return 'no JSON document';
  if (!doc.ok) return `${doc.error?.code}: ${doc.error?.message}${doc.run_id ? `\n    ${doc.run_id} ${doc.status}: ${steps(doc)}` : ''}${doc.dry_run ? `\n    ${dryRun(doc)}` : ''}`;
  if (doc.planner) return `${doc.contract.id} ${doc.contract.state} v${doc.contract.version}, planned by ${doc.planner.provider} (${doc.planner.tokens_in} tokens in, ${doc.planner.tokens_out} out, prompt ${doc.planner.prompt_sha256.slice(0, 12)})`;
  if (doc.contract) return `${doc.contract.id} ${doc.contract.state} v${doc.contract.version}`;
  if (doc.dry_run) return dryRun(doc);
  if (doc.run_id && doc.steps?.every((s) => s.rollback_of)) return `rollback of ${doc.run_id} ${doc.status}: ${doc.steps.map((s) => `${s.step_id}←${s.rollback_simulation_id}=${s.reason_code}`).join(', ')}; ${doc.contract_id} stays ${doc.state}`;
  if (doc.run_id && doc.steps) return `${doc.run_id} ${doc.status}: ${steps(doc)}${doc.kimi ? `\n    kimi: ${doc.kimi.result.summary}` : ''}`;
  if (doc.problems) return `verified: ${doc.problems.length} problem(s), ${doc.warnings.length} warning(s)`;
  if (doc.simulation) return `${doc.simulation.id} ${doc.simulation.status} (${doc.simulation.impact})`;
  if (doc.rule) return `${doc.rule.actor} ${doc.rule.decision} ${doc.rule.action} (policy v${doc.policy_snapshot_version})`;
  if (doc.envelopes) return doc.envelopes.map((e) => `${e.id} ${e.status} budget $${e.max_cost_usd}`).join('; ');
  if (doc.drift !== undefined) return `agent_execution_current: ${doc.rows} step row(s), drift ${doc.drift_count}`;
  if (doc.rows) return `${doc.rows.length} ledger row(s): ${doc.rows.map((r) => `${r.step_id}/${r.event}`).join(', ')}`;
  if (doc.decisions) return `${doc.decisions.length} decision(s) replay the same`;
  if (doc.events) return doc.events.map((e) => `#${e.seq} ${e.type}`).join(', ');
  if (doc.plan && doc.next) return `plan ${doc.plan.sha256.slice(0, 12)}: ${doc.plan.steps.map((s) => `${s.id}(${s.lane})`).join(', ')}; ${doc.approvers.valid}/${doc.approvers.min} approval(s) (${doc.approvals.filter((a) => a.verified).length} signed and verified); next: ${doc.next.map((n) => n.command).join(' | ')}`;
  if (doc.identical !== undefined) return `${doc.from.slice(0, 12)} → ${doc.to.slice(0, 12)}: ${[...doc.steps.changed, ...doc.other].map((c) => `${c.id ? `${c.id}.` : ''}${c.path} ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`).join(', ') || 'identical'}`;
  return 'ok';
}

function kair(args, expectExit = 0, extraEnv = {}) {
  const shown = `kair ${args.map((a) => shorten(/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
  const r = spawnSync(process.execPath, [join(root, 'bin', 'kair.js'), ...args, '--json'], { cwd: ws, env: { ...env, ...extraEnv }, encoding: 'utf8' });
  let doc = null;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    // reported below
  }
  console.log(`$ ${shown}${extraEnv.KAIR_ACTOR ? `   (as ${extraEnv.KAIR_ACTOR})` : ''}\n  → exit ${r.status}: ${summary(doc)}`);
  if (r.status !== expectExit) {
    console.error(`demo FAILED: expected exit ${expectExit}, got ${r.status}\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
  return doc;
}

const say = (text) => console.log(`\n# ${text}`);

/** `kair … --debug` without --json: the first stdout line, and what --debug printed on stderr (its sections, line counts). */
function debugRun(args) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'kair.js'), ...args], { cwd: ws, env, encoding: 'utf8' });
  console.log(`$ kair ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n  → exit ${r.status}: ${r.stdout.split('\n')[0]}`);
  const sections = [];
  for (const line of r.stderr.trimEnd().split('\n')) {
    if (line.startsWith('--- ')) sections.push({ head: line, lines: 0 });
    else if (sections.length) sections[sections.length - 1].lines++;
  }
  for (const s of sections) console.log(`    stderr ${s.head} (${s.lines} lines)`);
  if (r.status !== 0 || sections.length !== 2) {
    console.error(`demo FAILED: --debug\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
}
const alice = { KAIR_ACTOR: 'alice' };

console.log('kair demo — a temporary workspace, fixed clock (KAIR_NOW)');
kair(['init']);

say('The AEC catalog and access policy (fixtures/simulations, fixtures/access)');
for (const s of ['send-invoice', 'void-invoice']) {
  kair(['sim', 'register', '--file', join(fixtures, 'simulations', `${s}.json`)]);
  kair(['sim', 'activate', s]);
}
for (const r of JSON.parse(readFileSync(join(fixtures, 'access', 'policy.json'), 'utf8')).rules.filter((x) => x.actor === 'alice' && x.action.startsWith('invoice:'))) {
  kair(['access', r.decision, r.actor, r.action]);
}

say('Propose, plan, and a blocked approval: the required controls are not granted');
kair(['propose', 'Add chat and invoicing', '--id', 'chat', '--requires', 'local:read,local:write']);

say('A plan generated from an intent by the stub planner (deterministic, offline), refined, with --debug');
kair(['propose', 'Build a chat widget. Send the invoice customer=acme amount=120. Tell the sales team', '--id', 'gen']);
kair(['plan', 'gen', '--generate']);
debugRun(['plan', 'gen', '--refine', 'Drop tell-sales-team. Void the invoice customer=acme', '--debug']);
kair(['request-approval', 'gen']);
kair(['approve', 'gen'], 0, alice);
// The dry run predicts the real run's first stop: the invoice waits for a confirmation (exit 3).
kair(['run', 'gen', '--dry-run'], 3, alice);

say('chat gets a hand-written plan instead');
kair(['plan', 'chat', '--file', join(plans, 'mixed-lanes.json')]);
kair(['request-approval', 'chat'], 3);
kair(['grant', 'chat', 'local:read', 'local:write']);
kair(['request-approval', 'chat']);
kair(['approve', 'chat'], 0, alice);

say('Someone edits the approved plan by hand: the approval no longer matches, run refuses and spends nothing');
const planFile = join(ws, '.kair', 'contracts', 'chat', 'plan', 'plan_v1.json');
const edited = readFileSync(planFile, 'utf8').replace('"maxCostUSD": 25', '"maxCostUSD": 20');
writeFileSync(planFile, edited);
kair(['run', 'chat'], 3);

say('The edit is recorded as a new plan and approved again, this time signed with an SSH key listed in .kair/allowed_signers');
const editedFile = join(ws, 'edited-plan.json');
writeFileSync(editedFile, edited);
kair(['plan', 'chat', '--file', editedFile]);
kair(['request-approval', 'chat']);
// A throwaway key for alice (git's allowed_signers format: `<actor> <public key>`).
const aliceKey = join(ws, 'alice_ed25519');
const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice', '-f', aliceKey], { encoding: 'utf8' });
if (made.status !== 0) {
  console.error(`demo FAILED: ssh-keygen (OpenSSH) is needed to show a signed approval: ${made.error?.message ?? made.stderr}`);
  process.exit(1);
}
writeFileSync(join(ws, '.kair', 'allowed_signers'), `alice ${readFileSync(`${aliceKey}.pub`, 'utf8').trim()}\n`);
kair(['approve', 'chat', '--sign', '--key', aliceKey], 0, alice);
// Every gate of every step, writing nothing: it exits as the real run below will (3, a confirmation).
kair(['run', 'chat', '--dry-run'], 3, alice);

say('What alice approved: the plan by its sha, and what changed since the plan before it');
kair(['show', 'chat']);
kair(['diff', 'chat', '--from', 'previous']);

say('Run: the Kimi envelope, then an impactful simulation step that waits for confirmation');
kair(['run', 'chat'], 3, alice);
kair(['resume', 'chat', '--confirm', 'yes'], 0, alice);
kair(['envelopes', '--contract', 'chat']);
kair(['aec', 'ledger', 'chat']);

say('Review, accept, and rewind (a new version; nothing is deleted)');
kair(['review', 'chat']);
kair(['accept', 'chat']);
kair(['rewind', 'chat', 'switch to the annual invoicing template']);

say('A plan that reuses what exists needs no execution');
kair(['propose', 'Reuse the inventory checkout', '--id', 'checkout']);
kair(['plan', 'checkout', '--file', join(plans, 'reuse-only.json')]);
kair(['request-approval', 'checkout']);
kair(['approve', 'checkout'], 0, alice);
kair(['run', 'checkout'], 3);

say('Prove it: every chain, snapshot and artifact hash; the AEC projection and its decisions');
kair(['verify']);
kair(['aec', 'rebuild', '--check']);
kair(['aec', 'replay', 'chat-run-1']);

say("Undo what a run did: each step's rollback simulation, in reverse order, exactly once");
kair(['rollback', 'chat-run-1'], 0, alice);
kair(['rollback', 'chat-run-1'], 0, alice);

console.log(`\nartifacts (under ${ws}${keep ? '' : '; removed when the demo ends, KAIR_DEMO_KEEP=1 keeps it'}):`);
for (const f of ['.kair/contracts/chat/plan/PLAN.md', '.kair/contracts/chat/artifacts/run/chat-run-1/run-request.json', '.kair/contracts/chat/artifacts/run/chat-run-1/run-result.json', '.kair/contracts/chat/history.jsonl', '.kair/contracts/chat/dpc/dpc_v1.json', '.kair/kair.db']) {
  console.log(`  ${f}`);
}
console.log('demo finished: every command exited as expected');
