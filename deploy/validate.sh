#!/usr/bin/env bash
# Validate the deployment, as CI does (called from .ci/run; safe to re-run):
#   1. every manifest in deploy/ against the Kubernetes schemas, offline
#      (kubernetes-validate from PyPI, installed when missing);
#   2. `kubectl kustomize deploy/` renders (Debian's kubernetes-client when
#      kubectl is missing), and its output validates too;
#   3. the static binary, built with deploy/build-static.sh (the Containerfile's
#      command), is statically linked;
#   4. that binary prints the dump of examples/cluster.yaml with an empty PATH
#      and an empty environment;
#   5. as root, in a throwaway network namespace: that binary commits the
#      example's ruleset (--once) and deletes it again (--cleanup).
# Every step is bounded by a timeout; the first failure stops the script.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-1.33.0}"   # matches k8s-openapi's v1_33 feature
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '\n== deploy/validate.sh: %s\n' "$*"; }
fail() { printf 'deploy/validate.sh: FAILED: %s\n' "$*" >&2; exit 1; }

step "1/5 schema validation (Kubernetes $K8S_VERSION, strict)"
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
    echo "installing kubernetes-validate from PyPI"
    timeout 300 python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate \
        || fail "cannot install kubernetes-validate"
fi
manifests=()
for f in deploy/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
timeout 120 python3 -m kubernetes_validate --strict -k "$K8S_VERSION" "${manifests[@]}" \
    || fail "schema validation of ${manifests[*]}"

step "2/5 kubectl kustomize deploy/"
if ! command -v kubectl >/dev/null; then
    echo "installing kubectl (Debian's kubernetes-client)"
    timeout 300 apt-get update -qq || fail "apt-get update"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq kubernetes-client \
        || fail "cannot install kubernetes-client"
fi
timeout 60 kubectl kustomize deploy/ >"$work/kustomized.yaml" || fail "kubectl kustomize deploy/"
kinds="$(grep -E '^kind: ' "$work/kustomized.yaml" | sort | tr '\n' ' ')"
echo "rendered: $kinds"
[ "$kinds" = "kind: ClusterRole kind: ClusterRoleBinding kind: DaemonSet kind: ServiceAccount " ] \
    || fail "unexpected objects in the kustomization: $kinds"
timeout 120 python3 -m kubernetes_validate --strict -k "$K8S_VERSION" "$work/kustomized.yaml" \
    || fail "schema validation of the kustomize output"

step "3/5 static build (deploy/build-static.sh, as in deploy/Containerfile)"
bin="$(timeout 3600 deploy/build-static.sh)" || fail "static build"
file_out="$(file -b "$bin")"
echo "file: $file_out"
case "$file_out" in
    *"static-pie linked"* | *"statically linked"*) ;;
    *) fail "$bin is not statically linked" ;;
esac
ldd_out="$(ldd "$bin" 2>&1 || true)"
echo "ldd: $ldd_out"
case "$ldd_out" in
    *"not a dynamic executable"* | *"statically linked"*) ;;
    *) fail "ldd lists shared libraries for $bin" ;;
esac

step "4/5 --dump-script with an empty environment and PATH"
timeout 60 env -i PATH= "$bin" --node node-1 --manifests examples/cluster.yaml --dump-script \
    >"$work/dump.nft" 2>"$work/dump.err" \
    || { cat "$work/dump.err" >&2; fail "--dump-script exited non-zero"; }
head -n 1 "$work/dump.nft"
grep -q '^table inet flock-netpol {$' "$work/dump.nft" || fail "the dump holds no table"
echo "dump: $(wc -l <"$work/dump.nft") lines"

step "5/5 --once then --cleanup in a throwaway network namespace"
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
    echo "SKIP: needs root and unshare"
else
    # One process tree in a new, empty network namespace: gone when it exits.
    timeout 60 unshare --net sh -c '
        env -i PATH= "$1" --node node-1 --manifests examples/cluster.yaml --once &&
        env -i PATH= "$1" --node node-1 --cleanup' sh "$bin" >"$work/once.log" 2>&1 \
        || { cat "$work/once.log" >&2; fail "--once/--cleanup in a network namespace"; }
    grep -E 'committed|deleted table' "$work/once.log" | sed 's/\x1b\[[0-9;]*m//g'
    grep -q 'deleted table inet flock-netpol' "$work/once.log" \
        || { cat "$work/once.log" >&2; fail "--cleanup did not find the table --once committed"; }
fi

printf '\n== deploy/validate.sh: OK\n'
