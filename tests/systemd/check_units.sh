#!/usr/bin/env bash
# Checks the systemd units in systemd/ as CI does:
#  - `systemd-analyze verify` accepts them with no message at all (an unknown key or a bad value
#    is only a warning there, so any output fails the check);
#  - `systemd-analyze security --offline=true` rates each service's exposure at 2.0 or better.
# verify requires every ExecStart=/ExecStartPre= binary to exist: the units are copied into a
# scratch directory with /usr/bin/certgate replaced by the binary this build produced (the
# units themselves are checked unchanged otherwise).
# Usage: check_units.sh SOURCE_DIR CERTGATE_BINARY [MAX_EXPOSURE_TIMES_10]
set -euo pipefail

src="$1/systemd"
bin="$2"
threshold="${3:-20}"   # systemd-analyze's --threshold is exposure x 10: 20 = 2.0

if ! command -v systemd-analyze >/dev/null; then
  echo "FAIL: systemd-analyze not found; install the Debian package systemd (scripts/setup)" >&2
  exit 1
fi
[ -x "$bin" ] || { echo "FAIL: certgate binary $bin is not executable" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
units=(certgate.service certgate-sync.service certgate-sync.timer)
for u in "${units[@]}"; do
  [ -f "$src/$u" ] || { echo "FAIL: $src/$u is missing" >&2; exit 1; }
  sed "s#/usr/bin/certgate#$bin#g" "$src/$u" > "$work/$u"
done

fail=0
out="$(cd "$work" && systemd-analyze verify --man=no "${units[@]/#/$work/}" 2>&1)" || {
  echo "FAIL: systemd-analyze verify exited non-zero" >&2
  fail=1
}
if [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify reported:" >&2
  echo "$out" >&2
  fail=1
else
  echo "ok: systemd-analyze verify ${units[*]}"
fi

for u in certgate.service certgate-sync.service; do
  report="$(systemd-analyze security --offline=true --threshold="$threshold" "$work/$u" 2>&1)" && rc=0 || rc=$?
  level="$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
  if [ "$rc" -ne 0 ] || [ -z "$level" ]; then
    printf '%s\n' "$report" | grep -v '^✓' >&2 || true
    echo "FAIL: $u exposure ${level:-unknown} is worse than $((threshold / 10)).$((threshold % 10))" >&2
    fail=1
  else
    echo "ok: $u exposure $level (at most $((threshold / 10)).$((threshold % 10)))"
  fi
done
exit "$fail"
