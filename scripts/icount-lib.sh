# Sourced by icount.sh and icount-scale.sh. ic CMD…: the instructions (millions) CMD executes under
# callgrind, minus Node's random start-up prime search (detail::sprp), which varies run to run.
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
