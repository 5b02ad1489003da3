#!/usr/bin/env bash
# The dispatch SLO gate of the Agent Execution Core: `kair aec stats --check` on a workspace.
#
# Usage: scripts/check_slo.sh [WORKSPACE]
#   With WORKSPACE (a folder holding .kair/), checks its dispatches of the last KAIR_SLO_WINDOW
#   (default 24h) against its config `slo`. Without, builds a throwaway workspace, dispatches a
#   small workload through the built CLI (a no-impact and a confirmed impactful simulation, three
#   contracts) and checks that. Exits 0 when the SLO is met (or waived), 1 when it is breached or
#   the check cannot run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAIR=(node "$ROOT/bin/kair.js")
WINDOW="${KAIR_SLO_WINDOW:-24h}"

ws="${1:-}"
if [[ -z "$ws" ]]; then
  ws="$(mktemp -d "${TMPDIR:-/tmp}/kair-slo-XXXXXX")"
  trap 'rm -rf "$ws"' EXIT
  k() { KAIR_ACTOR=ci "${KAIR[@]}" --dir "$ws" "$@" >/dev/null; }
  k init
  for s in ping send-invoice void-invoice; do
    k sim register --file "$ROOT/fixtures/simulations/$s.json"
    k sim activate "$s"
  done
  k access allow ci system:ping
  k access allow ci invoice:send
  plan='{"version":"kair.plan.v1","title":"SLO workload","steps":[{"id":"ping","summary":"ping","simulation":{"utterance":"ping"}},{"id":"send","summary":"send","simulation":{"utterance":"send invoice","fields":{"customer":"acme","amount":"120"}}}]}'
  for i in 1 2 3; do
    k propose "SLO workload $i" --id "slo-$i"
    k plan "slo-$i" --plan-json "$plan"
    k request-approval "slo-$i"
    k approve "slo-$i"
    k run "slo-$i" --confirm yes
  done
fi

if "${KAIR[@]}" --dir "$ws" aec stats --check --window "$WINDOW"; then
  echo "check_slo: ok: the dispatch SLO holds over the last $WINDOW"
else
  echo "check_slo: FAIL: the dispatch SLO is breached over the last $WINDOW (or the check could not run); see above" >&2
  exit 1
fi
