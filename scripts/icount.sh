#!/bin/bash
# Needs valgrind (apt-get install valgrind); usage: scripts/icount.sh <a kair checkout with a fresh build>. Counts are stable to ~0.5% run to run, unlike wall-clock ratios on a busy VM.
# instruction counts minus Node's random start-up prime search (detail::sprp): status, grant, run (Kimi), mixed, node -e 0
T=$1
export KAIR_ACTOR=bench NO_COLOR=1; unset NODE_EXTRA_CA_CERTS
W=$(mktemp -d)
k() { node $T/bin/kair.js "$@" --dir $W >/dev/null 2>&1 || echo "fail $*"; }
k init
for s in send-invoice void-invoice; do k sim register --file $T/fixtures/simulations/$s.json; k sim activate $s; done
k access allow bench invoice:send
k propose x --id b
for i in 1 2 3 4 5; do k grant b ns:p$i; done
for i in 1 2 3; do k propose r --id r$i; k plan r$i --file $T/fixtures/plans/custom-kimi.json; k request-approval r$i; k approve r$i; k propose m --id m$i; k plan m$i --file $T/fixtures/plans/mixed-lanes.json; k request-approval m$i; k approve m$i; done
. "$(dirname "$0")/icount-lib.sh"
for i in 1 2 3; do
  echo "status $(ic node $T/bin/kair.js status b --json --dir $W)"
  echo "grant $(ic node $T/bin/kair.js grant b ns:q$i --dir $W)"
  echo "run $(ic node $T/bin/kair.js run r$i --json --dir $W)"
  echo "mixed $(ic node $T/bin/kair.js run m$i --json --confirm yes --dir $W)"
done
echo "node0 $(ic node -e 0)"
rm -rf $W
