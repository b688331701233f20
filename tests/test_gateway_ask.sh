#!/usr/bin/env bash
# test_gateway_ask.sh — cairn ask through the gateway against a recording
# loopback upstream (tests/tools/fake_upstream.js): public context goes up
# under cloud-first and the answer says so; a question whose context holds a
# private document (tag, path glob) stays local with the reason, or is refused
# under cloud-only; the upstream's byte record never holds private text; a
# redaction rule hides e-mail addresses; the audit log names the routes;
# --gateway FILE; bad rules are errors that name the key.
set -euo pipefail
: "${CAIRN:?}" "${CAIRN_SRC:?}" "${CAIRN_TEST_TMP:=/tmp}"
command -v node >/dev/null || { echo "SKIP: node not found"; exit 77; }
T="$CAIRN_TEST_TMP/test_gateway_ask.$$"
rm -rf "$T" && mkdir -p "$T/proj/pub" "$T/proj/secret" "$T/proj/tagged"
FAKE=""
trap '[ -n "$FAKE" ] && kill $FAKE 2>/dev/null; rm -rf "$T"' EXIT
cd "$T/proj"
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "Zebras migrate across the plains every spring; write to herd@zoo.example for maps." > pub/zebra.md
echo "Otters hold hands while they sleep on the river." > pub/otter.md
echo "The vault combination is QX-PRIVATE-7781 and the zebra herd is safe." > secret/vault.md
echo "The otter sanctuary budget is QX-TAGGED-4410 dollars this year." > tagged/budget.md
"$CAIRN" init >/dev/null
"$CAIRN" add pub secret --quiet >/dev/null
"$CAIRN" add tagged --tag private=true --quiet >/dev/null

node "$CAIRN_SRC/tests/tools/fake_upstream.js" "$T/record.txt" > "$T/port" &
FAKE=$!
for i in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
PORT=$(awk '{print $2}' "$T/port")
[ -n "$PORT" ] || fail "fake upstream did not start"
cat >> .cairn/config <<EOF

[upstream cloud]
url = http://127.0.0.1:$PORT/v1
models = big
timeout = 2s

[privacy]
paths = secret/*

[redact]
email = [a-z]+@[a-z.]+
EOF

# public context: upstream, said in the answer
out=$("$CAIRN" ask --route cloud-first "plains migrate spring")
echo "$out" | grep -q "^up0 up1" || fail "no upstream answer: $out"
echo "$out" | grep -q "^Route: upstream cloud" || fail "route not shown: $out"
grep -q "plains" "$T/record.txt" || fail "public context did not reach the upstream"
grep -q "herd@zoo" "$T/record.txt" && fail "an e-mail address reached the upstream"
grep -q "REDACTED:email" "$T/record.txt" || fail "redaction not applied"

# private by path glob, and by tag: local, with the reason
for q in "vault combination zebra" "otter sanctuary budget"; do
  out=$("$CAIRN" ask --route cloud-first "$q")
  echo "$out" | grep -q "^Route: local .*is private -> local only" || fail "private context not kept local: $out"
  out=$("$CAIRN" ask --json --route local-first "$q")
  echo "$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["cairn"]["route"]=="local", j["cairn"]'
  set +e
  err=$("$CAIRN" ask --route cloud-only "$q" 2>&1 >/dev/null); rc=$?
  set -e
  [ $rc -eq 2 ] || fail "cloud-only with private context: rc $rc"
  echo "$err" | grep -q "private" || fail "refusal without a reason: $err"
done
grep -q "QX-PRIVATE\|QX-TAGGED" "$T/record.txt" && fail "private text reached the upstream"

# default private store-wide: nothing grounded goes up
cp .cairn/config "$T/gw.ini"
printf '\n[privacy]\ndefault = private\n' >> "$T/gw.ini"
n0=$(grep -c '^POST' "$T/record.txt")
out=$("$CAIRN" ask --gateway "$T/gw.ini" --route cloud-first "otters hold hands")
echo "$out" | grep -q "^Route: local" || fail "store-wide private default ignored: $out"
[ "$(grep -c '^POST' "$T/record.txt")" = "$n0" ] || fail "a request reached the upstream under default = private"

# the audit log: one line per question, routes and rules, no content
A=$(ls .cairn/gateway/audit-*.jsonl)
python3 - "$A" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
routes = [l["route"] for l in lines]
assert "upstream" in routes and "local" in routes and "refused" in routes, routes
for l in lines:
    for k in ("ts", "route", "rule", "policy", "tokens_in", "tokens_out", "cost_nano", "latency_ms"):
        assert k in l, (k, l)
    assert "plains" not in json.dumps(l) and "QX-" not in json.dumps(l), l
EOF

# cairn status: the upstream and what it used today
st=$("$CAIRN" status)
echo "$st" | grep -q "^  upstream cloud  http://127.0.0.1:$PORT/v1  today [1-9][0-9]* tokens" || fail "status lacks the gateway: $st"
"$CAIRN" status --json | python3 -c 'import json,sys; g=json.load(sys.stdin)["gateway"]; assert g["upstreams"][0]["tokens_used_today"] > 0, g'

# bad rules: clear errors naming the key, exit 2
printf '[upstream x]\nurl = http://127.0.0.1:1/v1\nbudget_tokenz = 5\n' > "$T/bad.ini"
set +e
err=$("$CAIRN" ask --gateway "$T/bad.ini" "otters" 2>&1); rc=$?
set -e
[ $rc -eq 2 ] || fail "bad gateway file: rc $rc"
echo "$err" | grep -q "budget_tokenz" || fail "error does not name the key: $err"
set +e
err=$("$CAIRN" ask --route sometimes "otters" 2>&1); rc=$?
set -e
[ $rc -eq 2 ] || fail "bad --route accepted"
echo "ok"
