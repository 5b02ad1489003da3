#!/bin/bash
# Needs valgrind. usage: scripts/icount-scale.sh <a kair checkout with a fresh build> [contracts…] (default 100 10000)
# Instruction counts (millions, minus Node's random start-up prime search, as icount.sh) of `kair grant`
# and `kair list --json --limit 50` in workspaces of each size, built by scripts/bench-scale-build.mjs.
T=$(cd "$1" && pwd); shift
HERE=$(cd "$(dirname "$0")" && pwd)
export KAIR_ACTOR=bench NO_COLOR=1; unset NODE_EXTRA_CA_CERTS
ic() { local f=$(mktemp); valgrind --tool=callgrind --callgrind-out-file=$f "$@" >/dev/null 2>&1; callgrind_annotate --inclusive=no --threshold=100 $f 2>/dev/null | python3 -c "
import re,sys
tot=0;sp=0
for l in sys.stdin:
  m=re.match(r'\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)',l)
  if not m: continue
  n=int(m.group(1).replace(',',''))
  if 'PROGRAM TOTALS' in m.group(2): tot=n
  elif 'sprp' in m.group(2): sp+=n
print(round((tot-sp)/1e6,1))"; rm -f $f; }
for n in ${@:-100 10000}; do
  W=$(mktemp -d)
  node "$HERE/bench-scale-build.mjs" "$T" "$W" "$n"
  node "$T/bin/kair.js" grant c000002 warm:up --dir "$W" >/dev/null 2>&1
  for i in 1 2; do echo "grant $n $(ic node "$T/bin/kair.js" grant c000002 ns:q$i --dir "$W")"; done
  echo "list-limit-50 $n $(ic node "$T/bin/kair.js" list --json --limit 50 --dir "$W")"
  rm -rf "$W"
done
echo "node0 $(ic node -e 0)"
