#!/usr/bin/env bash
# Runs the example configuration end to end with the real binary in a scratch directory and
# checks the states the README's demo promises.
set -euo pipefail
SRC=$1
BIN=${CERTGATE_BIN:?}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/config/example" "$WORK/mappings" "$WORK/out/demo"
cp -r "$SRC/config/example/." "$WORK/config/example/"
cp "$SRC/mappings/"*.yaml "$WORK/mappings/"
CFG="$WORK/config/example/certgate.yaml"
NOW=2026-11-25T12:00:00Z
cg() { "$BIN" --config "$CFG" --now "$NOW" "$@"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

cg validate-config >/dev/null
set +e
cg ingest > "$WORK/ingest1.txt"; rc=$?
set -e
[ $rc -eq 0 ] || { cat "$WORK/ingest1.txt"; fail "first ingest exit $rc"; }
grep -q "moodle-exports" "$WORK/ingest1.txt" || fail "ingest report lacks the source"
cg ingest --format json > "$WORK/ingest2.json"
grep -q '"inserted": 0' "$WORK/ingest2.json" || { cat "$WORK/ingest2.json"; fail "second ingest inserted facts"; }
grep -q '"files_skipped": 2' "$WORK/ingest2.json" || fail "second ingest re-read files"

cg exceptions request C2005 GENAI_USER_PARTNER --requester rita@example.org --start 2026-11-24T08:00:00Z \
  --days 5 --field partnerName=Acme --field changeTicket=CHG-1 --field dataClass=internal >/dev/null
cg exceptions approve 1 --approver tom.lead@example.org --role TeamLead >/dev/null
cg exceptions approve 1 --approver sam.sec@example.org --role Security >/dev/null
if cg exceptions approve 1 --approver rita@example.org --role Security 2>/dev/null; then
  fail "the requester could approve their own exception"
fi

cg status --all --format csv > "$WORK/status.csv"
expect() {  # person track state
  grep -q "^$1,.*,$2,$3," "$WORK/status.csv" || { grep "^$1," "$WORK/status.csv" >&2; fail "$1 $2 expected $3"; }
}
expect E1001 AI_SAFETY_EMPLOYEE certified
expect E1002 AI_SAFETY_EMPLOYEE expiring
expect E1003 AI_SAFETY_EMPLOYEE grace
expect E1004 AI_SAFETY_EMPLOYEE expired
expect E1005 AI_SAFETY_EMPLOYEE locked_out
expect E1006 AI_SAFETY_EMPLOYEE in_progress
expect E1007 AI_SAFETY_EMPLOYEE not_started
expect E1009 AI_SAFETY_EMPLOYEE certified
expect E1010 AI_SAFETY_EMPLOYEE certified
expect E1016 AI_SAFETY_EMPLOYEE in_progress
expect C2001 GENAI_AUTOMATION_PARTNER certified
expect C2002 GENAI_AUTOMATION_PARTNER locked_out
expect C2003 GENAI_USER_PARTNER expired
expect C2005 GENAI_USER_PARTNER exception
expect C2006 GENAI_USER_PARTNER locked_out
expect C2010 GENAI_USER_PARTNER certified
expect I4001 GENAI_USER_PARTNER out_of_scope
expect E1001 GENAI_USER_PARTNER out_of_scope

# Early renewal: E1008 renewed on 2026-11-10, inside the window, so the new expiry extends
# from the old one (2026-12-01 + 365 days).
grep -q "^E1008,.*,AI_SAFETY_EMPLOYEE,certified,true,2026-11-10T08:00:00Z,2027-12-01T08:00:00Z," "$WORK/status.csv" \
  || { grep "^E1008," "$WORK/status.csv" >&2; fail "E1008 early renewal"; }

cg quarantine --format json > "$WORK/quarantine.json"
grep -q "unmatched identity" "$WORK/quarantine.json" || fail "unmatched record not quarantined"
grep -q "exceeds" "$WORK/quarantine.json" || grep -q "130" "$WORK/quarantine.json" || fail "130/100 not quarantined"
grep -q "31/02/2026" "$WORK/quarantine.json" || fail "bad date not quarantined"

cg explain chen.cho@example.org > "$WORK/explain.txt"
grep -q "AI_SAFETY_EMPLOYEE: grace" "$WORK/explain.txt" || { cat "$WORK/explain.txt"; fail "explain grace"; }
grep -q "moodle-completions-2026-11-24.csv" "$WORK/explain.txt" || fail "explain lacks evidence locations"

set +e
cg explain nobody@example.org >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 6 ] || fail "explain of an unknown person exit $rc, expected 6"
echo "demo flow: all checks passed"
