#!/usr/bin/env bash
# Dataplane bench (root): new TCP connections per second from a client pod to
# a server pod, both local to one node, routed through the node's network
# namespace (Calico style: /32 routes, proxy ARP), with our table holding
# 0 / 100 / 1,000 generated policies and 10 / 110 local pods, against the
# same topology with no table at all (the physical baseline). Configurations
# are interleaved round by round; medians per configuration are printed with
# their ratio to the baseline median of the same run.
#
# Usage: sudo benches/dataplane.sh [ROUNDS] [SECONDS]   (default 5 rounds x 3 s)
#
# Everything lives in namespaces named fnp-bench-$$-*, removed by name on exit.
# Addresses: IPv4 only, inside 198.18.0.0/15. The generated cluster has 10,000
# pods; the local ones other than the two bench pods exist only in the
# ruleset (map elements and chains), not as namespaces.
set -euo pipefail

ROUNDS=${1:-5}
SECONDS_PER_RUN=${2:-3}
[ "$(id -u)" = 0 ] || { echo "SKIP dataplane bench: needs root"; exit 0; }

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin flock-netpol --example connrate --example bench_cluster
BIN=target/release/flock-netpol
CONNRATE=target/release/examples/connrate
GEN=target/release/examples/bench_cluster

P=fnp-bench-$$
NODE=$P-node
CLI=$P-client
SRV=$P-server
WORK=$(mktemp -d /tmp/$P.XXXXXX)
SERVER_PID=

cleanup() {
    for pid in $SERVER_PID; do kill "$pid" 2>/dev/null || true; done
    for ns in "$CLI" "$SRV" "$NODE"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

CLIENT_IP=198.19.200.1
SERVER_IP=198.19.200.2
PORT=8080

# --- topology -------------------------------------------------------------
ip netns add "$NODE"
ip -n "$NODE" link set lo up
ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$NODE" sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec "$NODE" sysctl -qw net.ipv4.conf.default.rp_filter=0
i=0
for pair in "$CLI:$CLIENT_IP" "$SRV:$SERVER_IP"; do
    ns=${pair%%:*}
    ip4=${pair##*:}
    i=$((i + 1))
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "fnpb$$p$i" netns "$NODE" type veth peer name eth0 netns "$ns"
    ip netns exec "$NODE" sysctl -qw "net.ipv4.conf.fnpb$$p$i.proxy_arp=1"
    ip netns exec "$NODE" sysctl -qw "net.ipv4.conf.fnpb$$p$i.rp_filter=0"
    ip -n "$NODE" link set "fnpb$$p$i" up
    ip -n "$NODE" route add "$ip4/32" dev "fnpb$$p$i"
    ip -n "$ns" addr add "$ip4/32" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default dev eth0
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
done

ip netns exec "$SRV" "$CONNRATE" serve "$SERVER_IP:$PORT" 3600 &
SERVER_PID=$!
# A second server on a port no policy allows, for the sanity check.
ip netns exec "$SRV" "$CONNRATE" serve "$SERVER_IP:$((PORT + 1))" 3600 &
SERVER_PID="$SERVER_PID $!"
sleep 0.3

# --- rulesets ---------------------------------------------------------------
# The two bench pods live in namespace "bench" on node-0, isolated both ways
# by three policies: the client may only reach the server on 8080, the server
# only accept the client on 8080.
cat > "$WORK/bench-pods.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: bench, labels: {role: client}}
spec: {nodeName: node-0, containers: [{name: c, image: x}]}
status: {phase: Running, podIPs: [{ip: $CLIENT_IP}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: bench, labels: {role: server}}
spec: {nodeName: node-0, containers: [{name: s, image: x, ports: [{name: http, containerPort: $PORT}]}]}
status: {phase: Running, podIPs: [{ip: $SERVER_IP}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: bench}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-from-client, namespace: bench}
spec:
  podSelector: {matchLabels: {role: server}}
  ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-to-server, namespace: bench}
spec:
  podSelector: {matchLabels: {role: client}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {role: server}}}], ports: [{port: $PORT}]}]
EOF

CONFIGS="baseline"
for pol in 0 100 1000; do
    for loc in 10 110; do
        c="p${pol}-l${loc}"
        CONFIGS="$CONFIGS $c"
        "$GEN" 10000 "$pol" "$WORK/$c.json" "$loc" > "$WORK/$c.gen.txt"
        if [ "$pol" = 0 ]; then
            # No policies at all: the table holds only the base chain.
            echo "$WORK/$c.json" > "$WORK/$c.files"
        else
            echo "$WORK/$c.json,$WORK/bench-pods.yaml" > "$WORK/$c.files"
        fi
    done
done

apply_config() {
    local c=$1
    if [ "$c" = baseline ]; then
        ip netns exec "$NODE" "$BIN" --node node-0 --cleanup 2>/dev/null
    else
        ip netns exec "$NODE" "$BIN" --node node-0 --once --manifests "$(cat "$WORK/$c.files")" 2>/dev/null
    fi
}

# Sanity: without a table both servers answer; with the 1,000-policy table the
# client still gets through to $PORT and is cut from $((PORT + 1)) (proves the
# table is in the path).
apply_config baseline
ip netns exec "$CLI" timeout 5 "$CONNRATE" client "$SERVER_IP:$((PORT + 1))" 0.2 > /dev/null
apply_config p1000-l110
ip netns exec "$NODE" "$BIN" --node node-0 --manifests "$(cat "$WORK/p1000-l110.files")" --dump-script \
    > "$WORK/p1000-l110.nft" 2>/dev/null
ip netns exec "$CLI" timeout 5 "$CONNRATE" client "$SERVER_IP:$PORT" 0.5 > /dev/null
if ip netns exec "$CLI" timeout 3 bash -c "exec 3<>/dev/tcp/$SERVER_IP/$((PORT + 1))" 2>/dev/null; then
    echo "FAIL: port $((PORT + 1)) was reachable through the 1,000-policy table" >&2
    exit 1
fi
echo "machine: $(nproc) cores, kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $CONFIGS; do
    [ -f "$WORK/$c.gen.txt" ] && echo "$c: $(head -1 "$WORK/$c.gen.txt" | cut -d: -f2-)"
done

# --- interleaved rounds -----------------------------------------------------
for r in $(seq 1 "$ROUNDS"); do
    for c in $CONFIGS; do
        apply_config "$c"
        sleep 0.2
        rate=$(ip netns exec "$CLI" timeout $((SECONDS_PER_RUN + 10)) "$CONNRATE" client "$SERVER_IP:$PORT" "$SECONDS_PER_RUN" | cut -d' ' -f3)
        echo "$c $rate" >> "$WORK/results"
        echo "round $r $c $rate conn/s"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK/results" "$CONFIGS" <<'PY'
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    c, r = line.split()
    rates.setdefault(c, []).append(float(r))
base = statistics.median(rates["baseline"])
print(f"{'config':<14}{'median conn/s':>15}{'vs baseline':>13}   all runs")
for c in sys.argv[2].split():
    m = statistics.median(rates[c])
    print(f"{c:<14}{m:>15.0f}{m / base:>12.1%}   {' '.join(f'{x:.0f}' for x in rates[c])}")
PY
