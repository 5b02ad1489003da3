#!/usr/bin/env bash
# CI guardrail of seed 001 §14 (SPEC §9.6): the Agent Execution Core must not bypass the
# SimulationExecutor, must write only its governed audit tables, must never dispatch on a
# MissingSimulationPacket, must require a rollback ref for impactful simulations, and must carry
# its proof refs; then the AT-AGENT-01..13 acceptance tests run by name, and the dispatch SLO
# gate (`kair aec stats --check`) runs on a workspace the built CLI dispatched a workload in.
#
# Usage: scripts/check_agent_execution_core.sh   (from any directory; exits 1 if any check fails)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

failures=0
fail() {
  echo "check_agent_execution_core: FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() {
  echo "check_agent_execution_core: ok: $*"
}
# Prints the ok line only if no check failed since the count BEFORE was taken.
pass_since() {
  local before="$1"
  shift
  if [[ "$failures" == "$before" ]]; then pass "$@"; fi
}

DISPATCHER=src/lanes/aec/dispatcher.ts
EXECUTOR=src/lanes/aec/executor.ts
LEDGER=src/lanes/aec/ledger.ts
GATES=src/domain/aec/gates.ts
SIMULATION=src/domain/aec/simulation.ts
FINDER=src/domain/aec/finder.ts

for f in "$DISPATCHER" "$EXECUTOR" "$LEDGER" "$GATES" "$SIMULATION" "$FINDER"; do
  [[ -f "$f" ]] || fail "$f is missing"
done

# Line number of the first line of FILE matching the extended regex, or 0.
first_line() {
  local n
  n="$(grep -nE -- "$2" "$1" 2>/dev/null | head -n 1 | cut -d: -f1 || true)"
  echo "${n:-0}"
}

# ---- (a) no dispatch outside the executor module ---------------------------------------------
# Only the SimulationExecutor may start processes, and only the dispatcher may call it.
# One other module runs a fixed tool that is not agent work: OpenSSH's ssh-keygen (and git, for
# user.signingKey) to sign and verify approvals. It may be used by the signature code only, never
# by an execution lane, so no plan step can reach it.
SIGNING_TOOL="src/store/ssh-keygen.ts"
spawners="$(grep -rlE "from ['\"](node:)?child_process['\"]|require\(['\"](node:)?child_process['\"]|getBuiltinModule\(['\"](node:)?child_process['\"]|\b(spawnSync|execFileSync|execFile|execSync|spawn|fork)\(" src --include='*.ts' | grep -vxF -e "$EXECUTOR" -e "$SIGNING_TOOL" || true)"
if [[ -n "$spawners" ]]; then
  fail "(a) only $EXECUTOR (and $SIGNING_TOOL, for ssh-keygen) may use node:child_process / spawn / execFile; also: $(echo "$spawners" | tr '\n' ' ')"
else
  pass "(a) only $EXECUTOR starts processes for agent work ($SIGNING_TOOL runs ssh-keygen for signatures)"
fi
tool_users="$(grep -rlE "store/ssh-keygen\.js" src --include='*.ts' | grep -vxF "src/app/signatures.ts" || true)"
if [[ -n "$tool_users" ]]; then
  fail "(a) only src/app/signatures.ts may use $SIGNING_TOOL; also: $(echo "$tool_users" | tr '\n' ' ')"
else
  pass "(a) $SIGNING_TOOL is used by the signature code only, never by a lane"
fi

callers="$(grep -rnE "\bexecuteSimulation\(" src --include='*.ts' | grep -vE "function executeSimulation\(" || true)"
caller_files="$(echo "$callers" | sed -e '/^$/d' -e 's/:.*//' | sort -u)"
call_count="$(echo "$callers" | sed '/^$/d' | wc -l | tr -d ' ')"
if [[ "$caller_files" != "$DISPATCHER" ]]; then
  fail "(a) executeSimulation( must be called from $DISPATCHER only; called from: $(echo "$caller_files" | tr '\n' ' ')"
elif [[ "$call_count" != "1" ]]; then
  fail "(a) $DISPATCHER must call executeSimulation( exactly once (found $call_count)"
else
  pass "(a) $DISPATCHER is the only caller of executeSimulation(, once"
fi

# The envelope names a simulation, never a tool: no executor/argv in DispatchEnvelope, and the
# executor runs the definition it reads from the catalog.
envelope_block="$(awk '/interface DispatchEnvelope[[:space:]]*\{/{on=1} on{print} on&&/^\}/{exit}' "$EXECUTOR")"
if [[ -z "$envelope_block" ]]; then
  fail "(a) interface DispatchEnvelope not found in $EXECUTOR"
elif echo "$envelope_block" | grep -qE "^\s*(executor|argv|command|kind)\??:"; then
  fail "(a) DispatchEnvelope must not carry an executor/argv/command (a tool dispatched as a simulation)"
elif ! grep -qE "getSimulation\(env\.simulation_id\)" "$EXECUTOR"; then
  fail "(a) $EXECUTOR must load the simulation (and its executor) from the catalog by env.simulation_id"
else
  pass "(a) the executor runs the catalog's definition, the envelope carries no tool"
fi

# ---- (b) no business-table writes -----------------------------------------------------------
before="$failures"
# SQL writes in the AEC lane modules target only the governed audit tables; the dispatcher and
# the ledger do not touch the file system.
if ! node - "$DISPATCHER" "$LEDGER" "$EXECUTOR" src/lanes/aec/replay.ts <<'NODE'
const fs = require('node:fs');
const GOVERNED = new Set(['aec_refs', 'agent_execution_ledger', 'agent_execution_current', 'agent_execution_confirmation_ledger', 'agent_execution_access_decision_ledger', 'dev_intake']);
const WRITE = /\b(?:INSERT(?:\s+OR\s+(?:REPLACE|IGNORE|ABORT|FAIL|ROLLBACK))?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+["`]?([A-Za-z_][A-Za-z0-9_]*)/g;
let bad = 0;
for (const file of process.argv.slice(2)) {
  if (!fs.existsSync(file)) continue;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, '');
    if (/^\s*(\*|\/\*)/.test(code)) return; // doc comments
    for (const m of code.matchAll(WRITE)) {
      // `UPDATE x SET` is a write; "UPDATE" in prose without SET is not.
      if (/^UPDATE/.test(m[0]) && !new RegExp(`${m[1]}\\s+SET\\b`).test(code.slice(m.index))) continue;
      if (!GOVERNED.has(m[1])) {
        console.error(`check_agent_execution_core: FAIL: (b) ${file}:${i + 1} writes table ${m[1]}, which is not a governed AEC table`);
        bad++;
      }
    }
  });
}
process.exit(bad ? 1 : 0);
NODE
then
  failures=$((failures + 1))
fi

for f in "$DISPATCHER" "$LEDGER"; do
  if grep -qE "from ['\"](node:)?fs(/promises)?['\"]|require\(['\"](node:)?fs" "$f"; then
    fail "(b) $f must not import node:fs"
  fi
  if grep -qE "\bdb\.exec\(" "$f"; then
    fail "(b) $f must not run free-form SQL with exec("
  fi
done
# The dispatcher only reads the catalog and the policy; it never changes them.
if grep -qE "\.(registerSimulation|setStatus|setRule)\(" "$DISPATCHER"; then
  fail "(b) $DISPATCHER must not change the catalog or the access policy"
fi
if grep -qE "\b(INSERT|UPDATE|DELETE|REPLACE)\b[^'\"\`]*\b(INTO|FROM|SET)\b" "$DISPATCHER"; then
  fail "(b) $DISPATCHER must write through the ledger repository, not with its own SQL"
fi
pass_since "$before" "(b) SQL writes only to governed tables; dispatcher and ledger: no node:fs, no catalog/policy writes"

# ---- (c) MissingSimulationPacket never reaches the executor -----------------------------------
halt_line="$(first_line "$DISPATCHER" "if \(!verdict\.dispatch\) return")"
claimed_line="$(first_line "$DISPATCHER" "event: 'CLAIMED'")"
call_line="$(first_line "$DISPATCHER" "[^a-zA-Z]executeSimulation\(")"
other_line="$(first_line "$DISPATCHER" "if \(claim\.kind === 'other'\) return")"
if (( halt_line == 0 || claimed_line == 0 || call_line == 0 )); then
  fail "(c) $DISPATCHER: cannot find the no-dispatch return, the CLAIMED row and the executor call"
elif ! (( halt_line < claimed_line && claimed_line < call_line )); then
  fail "(c) $DISPATCHER: the executor must be called only after the no-dispatch return (line $halt_line) and the CLAIMED claim (line $claimed_line); call at line $call_line"
elif (( other_line == 0 || other_line > call_line )); then
  fail "(c) $DISPATCHER: a claim lost to another process must return before the executor call"
else
  pass "(c) $DISPATCHER calls the executor only after the gates said dispatch and the claim is committed"
fi

nonmatch_line="$(first_line "$GATES" "packet_type !== 'SimulationMatchPacket'\) return")"
idem_line="$(first_line "$GATES" "reached\.push\('idempotency'\)")"
dispatch_line="$(first_line "$GATES" "dispatch: true, attempt")"
if (( nonmatch_line == 0 || idem_line == 0 || dispatch_line == 0 )); then
  fail "(c) $GATES: cannot find the non-match return, the idempotency gate and the dispatch verdict"
elif ! (( nonmatch_line < idem_line && idem_line < dispatch_line )); then
  fail "(c) $GATES must return for every non-SimulationMatchPacket (line $nonmatch_line) before the idempotency gate (line $idem_line) and the dispatch verdict (line $dispatch_line)"
else
  pass "(c) $GATES halts every Clarify/Refuse/Missing packet before the idempotency and dispatch gates"
fi

# ---- (d) rollback reference and proof refs --------------------------------------------------
before="$failures"
if ! grep -q "rollback_simulation_id" "$SIMULATION" || ! grep -qE "impactful|irreversible" "$SIMULATION"; then
  fail "(d) $SIMULATION must require rollback_simulation_id for impactful/irreversible simulations"
fi
if ! grep -q "AEC_ROLLBACK_REF_MISSING" "$GATES"; then
  fail "(d) $GATES must refuse an impactful step without a registered rollback (AEC_ROLLBACK_REF_MISSING)"
fi
for code in AEC_PACKET_INVALID AEC_POLICY_SNAPSHOT_MISSING AEC_ARTIFACT_FINGERPRINT_MISSING; do
  grep -q "$code" "$GATES" || fail "(d) $GATES must fail closed with $code"
done
for field in required_fields_fingerprint catalog_snapshot_ref packet_hash; do
  grep -q "$field" "$FINDER" || fail "(d) $FINDER: the packet must carry and validate $field"
done
for field in correlation_id tenant_id user_id step_id simulation_id required_fields confirmation_proof_ref access_action idempotency_key policy_snapshot_ref artifact_fingerprint_bundle_ref rollback_plan_ref; do
  echo "$envelope_block" | grep -qE "^\s*$field\??:" || fail "(d) DispatchEnvelope lacks seed §2.2 field $field"
done
if ! node - fixtures/simulations <<'NODE'
const fs = require('node:fs');
const path = require('node:path');
const dir = process.argv[2];
let bad = 0;
for (const f of fs.existsSync(dir) ? fs.readdirSync(dir).filter((x) => x.endsWith('.json')) : []) {
  const s = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  if ((s.impact === 'impactful' || s.impact === 'irreversible') && !s.rollback_simulation_id) {
    console.error(`check_agent_execution_core: FAIL: (d) ${dir}/${f} is ${s.impact} without rollback_simulation_id`);
    bad++;
  }
  const sideEffects = s.executor && (s.executor.kind === 'command' || (s.executor.kind === 'builtin' && s.executor.name === 'write_file'));
  if (sideEffects && s.impact === 'none') {
    console.error(`check_agent_execution_core: FAIL: (d) ${dir}/${f} has a side-effecting executor but impact none (declare side_effecting)`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
NODE
then
  failures=$((failures + 1))
fi
pass_since "$before" "(d) rollback refs required for impactful simulations, side effects declared; packet and envelope refs present"

# ---- (e) the acceptance tests --------------------------------------------------------------
TESTS=(
  AT-AGENT-01-single-step-dispatch
  AT-AGENT-02-confirm-required-before-impactful-sim
  AT-AGENT-03-access-deny-fail-closed
  AT-AGENT-04-sim-not-active-fail-closed
  AT-AGENT-05-idempotent-retry-safe
  AT-AGENT-06-clarify-one-question-rule
  AT-AGENT-07-missing-simulation-escalates-to-dev-intake
  AT-AGENT-08-audit-chain-complete
  AT-AGENT-09-finder-top1-is-consumed-without-rerank
  AT-AGENT-10-multilingual-confirmation-lexicon-enforced
  AT-AGENT-11-idempotency-key-includes-sim-and-field-fingerprint
  AT-AGENT-12-missing-simulation-never-calls-simulation-executor
  AT-AGENT-13-current-rebuilds-from-ledger-without-drift
)
files=()
for t in "${TESTS[@]}"; do
  f="test/acceptance/aec/$t.test.ts"
  if [[ ! -f "$f" ]]; then
    fail "(e) $f is missing"
  elif ! grep -qF "describe('$t'" "$f"; then
    fail "(e) $f has no describe('$t')"
  else
    files+=("$f")
  fi
done
if (( ${#files[@]} == ${#TESTS[@]} )); then pass "(e) all ${#TESTS[@]} AT-AGENT test files exist"; fi

if [[ ! -f dist/kair.cjs ]]; then
  echo "check_agent_execution_core: dist/kair.cjs is missing; building"
  node scripts/build.mjs || fail "the build failed"
fi
if (( ${#files[@]} > 0 )); then
  if npx vitest run "${files[@]}"; then
    pass "AT-AGENT acceptance tests"
  else
    fail "AT-AGENT acceptance tests (npx vitest run test/acceptance/aec)"
  fi
fi

# ---- (f) the dispatch SLO gate (seed 001 §14.2) ----------------------------------------------
# A workload dispatched through the built CLI, then `kair aec stats --check` on its workspace:
# a breach of config `slo` (latency from claim to outcome, error rate, duplicate side effects)
# fails CI. scripts/check_slo.sh WORKSPACE checks any other workspace the same way.
if bash scripts/check_slo.sh; then
  pass "(f) aec stats --check: the dispatch SLO holds"
else
  fail "(f) aec stats --check: the dispatch SLO is breached (scripts/check_slo.sh)"
fi

if (( failures > 0 )); then
  echo "check_agent_execution_core: FAILED ($failures check(s))" >&2
  exit 1
fi
echo "check_agent_execution_core: all checks passed"
