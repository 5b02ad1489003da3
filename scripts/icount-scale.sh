#!/bin/bash
# Needs valgrind. usage: scripts/icount-scale.sh <a kair checkout with a fresh build> [contracts…] (default 100 10000)
# Instruction counts (millions, minus Node's random start-up prime search, as icount.sh) of `kair grant`
# and `kair list --json --limit 50` in workspaces of each size, built by scripts/bench-scale-build.mjs.
T=$(cd "$1" && pwd); shift
HERE=$(cd "$(dirname "$0")" && pwd)
export KAIR_ACTOR=bench NO_COLOR=1; unset NODE_EXTRA_CA_CERTS
. "$(dirname "$0")/icount-lib.sh"
for n in ${@:-100 10000}; do
  W=$(mktemp -d)
  node "$HERE/bench-scale-build.mjs" "$T" "$W" "$n"
  node "$T/bin/kair.js" grant c000002 warm:up --dir "$W" >/dev/null 2>&1
  for i in 1 2; do echo "grant $n $(ic node "$T/bin/kair.js" grant c000002 ns:q$i --dir "$W")"; done
  echo "list-limit-50 $n $(ic node "$T/bin/kair.js" list --json --limit 50 --dir "$W")"
  rm -rf "$W"
done
echo "node0 $(ic node -e 0)"
