#!/usr/bin/env bash
# TLS audit of a Weir HTTPS listener with testssl.sh (Debian package testssl.sh, /usr/bin/testssl).
#
#   scripts/tls-audit.sh                    # or: make tls-audit
#   WEIR_BIN=.build/release/weir TLS_AUDIT_PROFILE=modern TLS_AUDIT_OUT=/tmp/audit.json scripts/tls-audit.sh
#
# Makes a throw-away CA and a P-256 ECDSA certificate (weir.test, *.weir.test, IP 127.0.0.1) in a temp
# dir, starts a demo backend and a Weir TLS listener (profile "intermediate" unless TLS_AUDIT_PROFILE,
# HSTS on) on 127.0.0.1, and runs testssl.sh against it: protocols, cipher categories, forward secrecy,
# server preferences, server defaults, HTTP headers and vulnerabilities. Everything stays on loopback:
# --ip 127.0.0.1 --nodns none (no DNS), no --phone-out (no CRL/OCSP fetches), the test CA is passed with
# --add-ca.
#
# Exit status: 0 = no finding rated HIGH or CRITICAL (apart from those caused only by the test CA being
# untrusted, which are listed but do not count); 1 = at least one such finding; 2 = the audit could not
# run (missing tool, Weir did not start, testssl.sh produced no JSON or timed out).
# Environment: WEIR_BIN (default .build/release/weir), TESTSSL (default /usr/bin/testssl),
# TLS_AUDIT_TIMEOUT (seconds for testssl.sh, default 900), TLS_AUDIT_PROFILE, TLS_AUDIT_OUT (copy of the
# JSON findings), TLS_AUDIT_KEEP=1 (keep the temp dir), TLS_AUDIT_ACCEPT (finding ids, separated by spaces
# or commas, that you have decided to accept: still listed, marked "accepted", not counted; default none).
set -euo pipefail

cd "$(dirname "$0")/.."
WEIR_BIN=${WEIR_BIN:-.build/release/weir}
TESTSSL=${TESTSSL:-/usr/bin/testssl}
TIMEOUT=${TLS_AUDIT_TIMEOUT:-900}
PROFILE=${TLS_AUDIT_PROFILE:-intermediate}

die() { echo "tls-audit: $*" >&2; exit 2; }
[ -x "$WEIR_BIN" ] || die "weir binary not found at $WEIR_BIN (swift build -c release, or set WEIR_BIN)"
[ -x "$TESTSSL" ] || die "testssl.sh not found at $TESTSSL (make tls-deps: apt-get install testssl.sh)"
command -v openssl >/dev/null || die "openssl CLI not found"
WEIR_BIN=$(readlink -f "$WEIR_BIN")

tmp=$(mktemp -d /tmp/weir-tls-audit.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "${TLS_AUDIT_KEEP:-0}" = 1 ]; then echo "tls-audit: temp dir kept: $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {   # wait_port PORT PID LOG
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "process $2 exited before listening on $1"; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  cat "$3" >&2; die "nothing listening on 127.0.0.1:$1 after 10 s"
}

# --- test CA and certificate -------------------------------------------------------------------
ossl() { openssl "$@" >>"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log" >&2; die "openssl $1 failed"; }; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.pem" \
  -days 30 -subj "/CN=Weir TLS Audit Test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash"
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/site.key"
ossl req -new -key "$tmp/site.key" -subj "/CN=weir.test" -out "$tmp/site.csr"
cat >"$tmp/site.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=DNS:weir.test,DNS:*.weir.test,IP:127.0.0.1
EOF
ossl x509 -req -in "$tmp/site.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -set_serial "0x7$(openssl rand -hex 15)" -days 90 -sha256 \
  -extfile "$tmp/site.ext" -out "$tmp/site.pem"

# --- demo backend and Weir ---------------------------------------------------------------------
backend_port=$(free_port)
"$WEIR_BIN" demo-backend --port "$backend_port" --name audit --host 127.0.0.1 </dev/null >"$tmp/backend.log" 2>&1 &
pids+=($!)
wait_port "$backend_port" "${pids[-1]}" "$tmp/backend.log"

port=$(free_port)
mkdir "$tmp/conf"
cat >"$tmp/conf/00-audit.toml" <<EOF
[global]
workers = 1
access_log = "off"
state_dir = "$tmp/state"

[admin]
address = "off"

[[listener]]
name = "audit"
address = "127.0.0.1:$port"
[listener.tls]
cert = "$tmp/site.pem"
key = "$tmp/site.key"
profile = "$PROFILE"
hsts = "max-age=63072000"

[[pool]]
name = "p"
policy = "round-robin"
[pool.health]
type = "none"
[[pool.server]]
id = "audit"
address = "127.0.0.1:$backend_port"

[[route]]
name = "all"
pool = "p"
path = "/"
EOF
"$WEIR_BIN" run -c "$tmp/conf" </dev/null >"$tmp/weir.log" 2>&1 &
pids+=($!)
wait_port "$port" "${pids[-1]}" "$tmp/weir.log"
curl -sS --max-time 10 --cacert "$tmp/ca.pem" --resolve "weir.test:$port:127.0.0.1" -o /dev/null \
  "https://weir.test:$port/" || { cat "$tmp/weir.log" >&2; die "HTTPS smoke request to Weir failed"; }

# --- testssl.sh --------------------------------------------------------------------------------
echo "tls-audit: testssl.sh $("$TESTSSL" --version 2>/dev/null | grep -o 'testssl *[0-9][0-9.a-z-]*' | head -1 \
  | awk '{print $2}') against Weir (profile $PROFILE) on 127.0.0.1:$port, timeout ${TIMEOUT}s ..."
json="$tmp/testssl.json"
set +e
timeout --kill-after=10 "$TIMEOUT" "$TESTSSL" --quiet --color 0 --warnings batch --nodns none --ip 127.0.0.1 \
  --add-ca "$tmp/ca.pem" --connect-timeout 5 --openssl-timeout 10 --jsonfile "$json" \
  -p -s -f -P -S -h -U "weir.test:$port" </dev/null >"$tmp/testssl.log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  tail -20 "$tmp/testssl.log" >&2; die "testssl.sh did not finish within ${TIMEOUT}s"
fi
[ -s "$json" ] || { tail -30 "$tmp/testssl.log" >&2; die "testssl.sh (exit $rc) wrote no JSON findings"; }
[ -n "${TLS_AUDIT_OUT:-}" ] && cp "$json" "$TLS_AUDIT_OUT"
kill -0 "${pids[-1]}" 2>/dev/null || { cat "$tmp/weir.log" >&2; die "Weir exited during the audit"; }

python3 - "$json" "$rc" "${TLS_AUDIT_ACCEPT:-}" <<'PY'
import json, sys
from collections import Counter

findings = json.load(open(sys.argv[1]))
if isinstance(findings, dict):            # --jsonfile-pretty layout, just in case
    findings = [f for s in findings.get("scanResult", []) for v in s.values() if isinstance(v, list) for f in v]
# Findings that only say our throw-away CA is not a public one (no revocation info, not in a trust store):
# listed, never counted against the server's TLS configuration.
TEST_CA_IDS = ("cert_chain_of_trust", "cert_trust", "cert_caIssuers", "cert_crlDistributionPoints",
               "cert_ocspURL", "cert_revocation", "OCSP_stapling", "cert_mustStapleExtension",
               "DNS_CAArecord", "cert_certificatePolicies_EV", "certificate_transparency")
def test_ca_only(f):
    return any(f.get("id", "").startswith(i) for i in TEST_CA_IDS)
accepted_ids = set(sys.argv[3].replace(",", " ").split())

order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "INFO", "OK", "DEBUG"]
counts = Counter(f.get("severity", "?") for f in findings)
print("tls-audit summary (testssl.sh exit %s): %d findings: " % (sys.argv[2], len(findings))
      + ", ".join(f"{s} {counts[s]}" for s in order + sorted(set(counts) - set(order)) if counts[s]))
bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL")]
accepted = [f for f in bad if f.get("id") in accepted_ids and not test_ca_only(f)]
real = [f for f in bad if not test_ca_only(f) and f not in accepted]
ca = [f for f in bad if test_ca_only(f)]
for f in findings:
    if f.get("severity") in ("MEDIUM", "LOW", "WARN"):
        tag = " (test CA only, not counted)" if test_ca_only(f) else ""
        print(f"  {f['severity']:8} {f['id']}: {f.get('finding', '')[:150]}{tag}")
for f in ca:
    print(f"  {f['severity']:8} {f['id']}: {f.get('finding', '')[:150]} (caused by the test CA only: NOT counted)")
for f in accepted:
    print(f"  {f['severity']:8} {f['id']}: {f.get('finding', '')[:150]} (accepted by TLS_AUDIT_ACCEPT: NOT counted)")
for f in real:
    print(f"  {f['severity']:8} {f['id']}: {f.get('finding', '')[:150]}")
if real:
    print(f"tls-audit: FAIL: {len(real)} HIGH/CRITICAL finding(s): " + ", ".join(f["id"] for f in real))
    sys.exit(1)
print("tls-audit: PASS: no HIGH/CRITICAL findings" + (f" (besides {len(ca)} caused only by the test CA: "
      + ", ".join(f["id"] for f in ca) + ")" if ca else "")
      + (f" (accepted: {', '.join(f['id'] for f in accepted)})" if accepted else ""))
PY
