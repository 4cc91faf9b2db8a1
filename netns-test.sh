#!/usr/bin/env bash
# netns-test.sh: the root-in-netns suite of flock-netpol, and its demo.
#
#   ./netns-test.sh [OPTIONS]   build, run `cargo test`, then every case of
#                               tests/netns/cases/ against the real agent in a
#                               simulated two-node cluster made of network
#                               namespaces, with real TCP/UDP traffic over
#                               IPv4 and IPv6, in --once mode then daemon mode.
#   ./netns-test.sh demo        a small cluster from examples/cluster.yaml: the
#                               reachability matrix without policy, then under
#                               the example policies, and the agent's script.
#
# Options:
#   --mode once|daemon|both     which agent modes to run (default: both)
#   --case SUBSTRING            only the cases whose file name contains it
#   --apply netlink|nft         how --once mode commits: the agent's own
#                               netlink path (default), or its --dump-script
#                               piped to `nft -f` (checks the renderer alone)
#   --no-cargo-test             skip `cargo test`
#   --keep-going                (default) run every case even after failures
#
# Environment: FLOCK_NETPOL_BIN=PATH runs that agent binary instead of the one
# just built (e.g. a deliberately broken build, to see the suite fail);
# NETNS_DAEMON_MODE=off skips daemon mode.
#
# Needs root (it creates network namespaces). Everything it creates is named
# fnp-<pid>-... and removed by name on exit, also when interrupted. Traffic
# stays inside those namespaces: IPv4 in 198.18.0.0/15, IPv6 in fd00:198:18::/48.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX="fnp-$$-"
WORK=""
SERVER_PID=""
DRIVER_PID=""
CREATED_NS=()
CLEANED=0

MODE=both
CASE_FILTER=""
APPLY=netlink
CARGO_TEST=1
SUBCOMMAND=suite
# Daemon mode (the agent watching --manifests files) runs unless NETNS_DAEMON_MODE=off.
DAEMON_READY=${NETNS_DAEMON_MODE:-on}

log() { printf '%s\n' "$*" >&2; }
die() { log "netns-test.sh: $*"; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            demo) SUBCOMMAND=demo ;;
            --mode) MODE=${2:?--mode needs once, daemon or both}; shift ;;
            --case) CASE_FILTER=${2:?--case needs a substring}; shift ;;
            --apply) APPLY=${2:?--apply needs netlink or nft}; shift ;;
            --no-cargo-test) CARGO_TEST=0 ;;
            --keep-going) ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
        shift
    done
    case "$MODE" in once|daemon|both) ;; *) die "--mode must be once, daemon or both" ;; esac
    case "$APPLY" in netlink|nft) ;; *) die "--apply must be netlink or nft" ;; esac
}

# ---------------------------------------------------------------- cleanup

# Stop our processes (by pid), then remove our namespaces (by name), killing
# anything still inside them (by pid, from `ip netns pids`).
cleanup() {
    [ "$CLEANED" = 1 ] && return 0
    CLEANED=1
    set +e
    for pid in $DRIVER_PID $SERVER_PID; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    local ns pids
    for ns in "${CREATED_NS[@]}"; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    done
    for ns in "${CREATED_NS[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    local left
    left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -F -- "$PREFIX")
    [ -n "$left" ] && log "netns-test.sh: WARNING: namespaces left behind: $left"
    [ -n "$WORK" ] && rm -rf "$WORK"
    set -e
}

on_signal() {
    log "netns-test.sh: interrupted, cleaning up"
    cleanup
    exit 130
}

# ---------------------------------------------------------------- setup

need_root() {
    if [ "$(id -u)" != 0 ]; then
        die "must run as root: it creates network namespaces and nftables tables inside them (try: sudo $0 $*)"
    fi
}

install_packages() {
    local missing=()
    command -v nft >/dev/null || missing+=(nftables)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v conntrack >/dev/null || missing+=(conntrack)
    command -v cc >/dev/null || missing+=(build-essential)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
    if [ ${#missing[@]} -gt 0 ]; then
        command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them"
        log "netns-test.sh: installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
    command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (https://rustup.rs) first"
}

target_dir() {
    printf '%s\n' "${CARGO_TARGET_DIR:-$ROOT/target}"
}

build() {
    log "netns-test.sh: cargo build --all-targets"
    (cd "$ROOT" && cargo build --all-targets)
    PROBE="$(target_dir)/debug/netns-probe"
    AGENT="${FLOCK_NETPOL_BIN:-$(target_dir)/debug/flock-netpol}"
    [ -x "$PROBE" ] || die "$PROBE was not built"
    [ -x "$AGENT" ] || die "agent binary $AGENT not found"
    [ -n "${FLOCK_NETPOL_BIN:-}" ] && log "netns-test.sh: using the agent FLOCK_NETPOL_BIN=$AGENT"
    return 0
}

# new_ns NAME: an empty namespace with lo up and the sysctls we rely on set
# explicitly (new namespaces inherit some IPv4 defaults from the root one).
new_ns() {
    local ns=$1
    shift
    ip netns add "$ns"
    CREATED_NS+=("$ns")
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -q -w \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        "$@" >/dev/null
}

# build_topology PLAN: nodes (joined pairwise by veths), then one namespace
# per pod with a veth to its node and host routes; no bridge, nothing in the
# root namespace. See src/bin/netns-probe/plan.rs for the addressing.
build_topology() {
    local plan=$1 kind ns num v4 v6 node_ns ifname pns pv4 pv6
    local -a node_names=() node_v4=() node_v6=()
    while read -r kind ns num v4 v6; do
        [ "$kind" = node ] || continue
        new_ns "$ns" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
        ip -n "$ns" addr add "$v4/32" dev lo
        ip -n "$ns" addr add "$v6/128" dev lo nodad
        node_names[num]=$ns node_v4[num]=$v4 node_v6[num]=$v6
    done <"$plan"
    local i j
    for i in "${!node_names[@]}"; do
        for j in "${!node_names[@]}"; do
            [ "$i" -lt "$j" ] || continue
            ip -n "${node_names[i]}" link add "t$j" type veth peer name "t$i" netns "${node_names[j]}"
            ip -n "${node_names[i]}" addr add "fe80::$i/64" dev "t$j" nodad
            ip -n "${node_names[j]}" addr add "fe80::$j/64" dev "t$i" nodad
            ip -n "${node_names[i]}" link set "t$j" up
            ip -n "${node_names[j]}" link set "t$i" up
            ip -n "${node_names[i]}" route add "${node_v4[j]}/32" dev "t$j" src "${node_v4[i]}"
            ip -n "${node_names[j]}" route add "${node_v4[i]}/32" dev "t$i" src "${node_v4[j]}"
            ip -n "${node_names[i]}" -6 route add "${node_v6[j]}/128" via "fe80::$j" dev "t$j" src "${node_v6[i]}"
            ip -n "${node_names[j]}" -6 route add "${node_v6[i]}/128" via "fe80::$i" dev "t$i" src "${node_v6[j]}"
        done
    done
    while read -r kind pns node_ns ifname num pv4 pv6; do
        [ "$kind" = pod ] || continue
        new_ns "$pns"
        ip -n "$node_ns" link add "$ifname" type veth peer name eth0 netns "$pns"
        ip -n "$node_ns" addr add "fe80::$num/64" dev "$ifname" nodad
        ip -n "$node_ns" link set "$ifname" up
        ip -n "$pns" link set eth0 up
        if [ "$pv4" != - ]; then
            ip -n "$pns" addr add "$pv4/32" dev eth0
            ip -n "$pns" route add "${node_v4[num]}/32" dev eth0
            ip -n "$pns" route add default via "${node_v4[num]}" dev eth0 src "$pv4"
            ip -n "$node_ns" route add "$pv4/32" dev "$ifname" src "${node_v4[num]}"
            for j in "${!node_names[@]}"; do
                [ "$j" = "$num" ] && continue
                ip -n "${node_names[j]}" route add "$pv4/32" via "${node_v4[num]}" dev "t$num" src "${node_v4[j]}"
            done
        fi
        if [ "$pv6" != - ]; then
            ip -n "$pns" addr add "$pv6/128" dev eth0 nodad
            ip -n "$pns" -6 route add default via "fe80::$num" dev eth0 src "$pv6"
            ip -n "$node_ns" -6 route add "$pv6/128" dev "$ifname" src "${node_v6[num]}"
            for j in "${!node_names[@]}"; do
                [ "$j" = "$num" ] && continue
                ip -n "${node_names[j]}" -6 route add "$pv6/128" via "fe80::$num" dev "t$num" src "${node_v6[j]}"
            done
        fi
    done <"$plan"
}

# start_servers CLUSTER_ARGS...: echo servers in every pod namespace.
start_servers() {
    rm -f "$WORK/ready"
    "$PROBE" serve --prefix "$PREFIX" --ready "$WORK/ready" "$@" &
    SERVER_PID=$!
    local i
    for i in $(seq 100); do
        [ -f "$WORK/ready" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "the echo servers failed to start"
        sleep 0.1
    done
    die "the echo servers did not become ready within 10 s"
}

# cluster CLUSTER_ARGS...: plan, namespaces, servers.
cluster() {
    "$PROBE" plan --prefix "$PREFIX" "$@" >"$WORK/plan"
    build_topology "$WORK/plan"
    start_servers "$@"
}

# run_driver ARGS...: the probe driver in the background, so that a signal
# reaches our trap at once instead of after it ends. Returns its status.
run_driver() {
    "$PROBE" "$@" &
    DRIVER_PID=$!
    local rc=0
    wait "$DRIVER_PID" || rc=$?
    DRIVER_PID=""
    return "$rc"
}

# ---------------------------------------------------------------- suite

PASSED=0
FAILED=0

count() {
    local summary=$1 p f
    p=$(sed -n 's/^passed=\([0-9]*\) failed=\([0-9]*\)$/\1/p' "$summary")
    f=$(sed -n 's/^passed=\([0-9]*\) failed=\([0-9]*\)$/\2/p' "$summary")
    PASSED=$((PASSED + ${p:-0}))
    FAILED=$((FAILED + ${f:-1}))
}

suite() {
    if [ "$CARGO_TEST" = 1 ]; then
        log "netns-test.sh: cargo test"
        if (cd "$ROOT" && cargo test); then
            echo "PASS cargo test"
            PASSED=$((PASSED + 1))
        else
            echo "FAIL cargo test"
            FAILED=$((FAILED + 1))
        fi
    fi
    cluster
    local modes=()
    case "$MODE" in
        both) modes=(once daemon) ;;
        *) modes=("$MODE") ;;
    esac
    local m
    for m in "${modes[@]}"; do
        if [ "$m" = daemon ] && [ "$DAEMON_READY" != on ]; then
            log "netns-test.sh: daemon mode is switched off (NETNS_DAEMON_MODE=on to run it)"
            continue
        fi
        local args=(run --prefix "$PREFIX" --agent "$AGENT" --mode "$m" --apply "$APPLY"
            --work "$WORK/$m" --summary "$WORK/summary-$m" "$ROOT/tests/netns/cases")
        [ -n "$CASE_FILTER" ] && args+=(--filter "$CASE_FILTER")
        log "netns-test.sh: netns suite, agent mode $m"
        run_driver "${args[@]}" || true
        count "$WORK/summary-$m"
    done
}

# ---------------------------------------------------------------- demo

demo() {
    local example="$ROOT/examples/cluster.yaml"
    [ -f "$example" ] || die "$example not found"
    cluster --cluster "$example"
    echo "== Reachability with no policy enforced (rows: from, columns: to)"
    run_driver matrix --prefix "$PREFIX" --cluster "$example"
    local node_ns node
    while read -r kind node_ns _; do
        [ "$kind" = node ] || continue
        node=${node_ns#"${PREFIX}n_"}
        echo "== flock-netpol --node $node --manifests examples/cluster.yaml --once (in $node_ns)"
        ip netns exec "$node_ns" "$AGENT" --node "$node" --manifests "$example" --once
    done <"$WORK/plan"
    echo "== Reachability under the example policies"
    run_driver matrix --prefix "$PREFIX" --cluster "$example"
    local first
    first=$(awk '$1 == "node" {print $2; exit}' "$WORK/plan")
    first=${first#"${PREFIX}n_"}
    echo "== The script the agent committed on $first (flock-netpol --node $first --manifests examples/cluster.yaml --dump-script)"
    "$AGENT" --node "$first" --manifests "$example" --dump-script
}

# ---------------------------------------------------------------- main

main() {
    parse_args "$@"
    need_root "$@"
    trap cleanup EXIT
    trap on_signal INT TERM
    WORK=$(mktemp -d "/tmp/${PREFIX}XXXXXX")
    install_packages
    build
    if [ "$SUBCOMMAND" = demo ]; then
        demo
        return 0
    fi
    suite
    cleanup
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
}

main "$@"
