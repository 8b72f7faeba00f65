#!/usr/bin/env bash
# deploy_validate: installs deploy/tools (package-lock.json, exact versions) into a
# folder of the build tree, once, then
#   1. validates deploy/ (every Dockerfile; every Kustomize base and overlay,
#      rendered, against the Kubernetes schemas): must pass;
#   2. validates deliberately broken copies: each must fail, naming the fault (proof
#      that the validators are not a formality).
# Usage: validate_deploy_test.sh DEPLOY_DIR TOOLS_DIR
# Exit 77 (ctest: skipped) only when the tools are not installed and npm cannot
# reach its registry.
set -euo pipefail
deploy="$1"
tools="$2"
mkdir -p "$tools"
cp "$deploy/tools/package.json" "$deploy/tools/package-lock.json" "$deploy/tools/validate.mjs" "$tools/"

if ! cmp -s "$tools/package-lock.json" "$tools/node_modules/.installed-lock.json" 2>/dev/null; then
  echo "deploy_validate: installing the validators (npm ci) into $tools"
  if ! (cd "$tools" && npm ci --offline --no-audit --no-fund --cache "$tools/.npm-cache" >/dev/null 2>&1); then
    if ! (cd "$tools" && npm ci --no-audit --no-fund --cache "$tools/.npm-cache" 2>&1 | tail -5); then
      if ! (cd "$tools" && timeout 20 npm ping --cache "$tools/.npm-cache" >/dev/null 2>&1); then
        echo "SKIPPED: deploy_validate: npm registry unreachable and the validators (kubernetes-models," \
             "dockerfile-utils) are not cached in $tools; nothing was validated" >&2
        exit 77
      fi
      echo "deploy_validate: npm ci failed with the registry reachable" >&2
      exit 1
    fi
  fi
  [[ -d "$tools/node_modules" ]] || { echo "deploy_validate: npm ci installed nothing" >&2; exit 1; }
  cp "$tools/package-lock.json" "$tools/node_modules/.installed-lock.json"
fi

echo "== deploy/ as committed"
VALIDATE_DEPLOY_DIR="$deploy" node "$tools/validate.mjs"

# Broken copies: each must be rejected with the expected message.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
expect_failure() {
  local what="$1" pattern="$2" out
  echo "== broken copy: $what"
  if out="$(VALIDATE_DEPLOY_DIR="$work/deploy" node "$tools/validate.mjs" 2>&1)"; then
    echo "$out"
    echo "deploy_validate: the broken copy ($what) passed validation" >&2
    exit 1
  fi
  if ! grep -q -- "$pattern" <<<"$out"; then
    echo "$out"
    echo "deploy_validate: the broken copy ($what) failed without '$pattern'" >&2
    exit 1
  fi
  grep -- "$pattern" <<<"$out" | head -2
}
fresh_copy() {
  rm -rf "$work/deploy"
  mkdir -p "$work/deploy"
  (cd "$deploy" && tar --exclude=node_modules -cf - .) | (cd "$work/deploy" && tar -xf -)
}

fresh_copy
sed -i '0,/              port: 50051/s//              port: grpc-port/' "$work/deploy/k8s/base/native-server.yaml"
expect_failure "a gRPC probe port that is not an integer" "grpc/port must be integer"

fresh_copy
sed -i 's/concurrencyPolicy: Forbid/concurrencyPolicy: Sometimes/' "$work/deploy/k8s/base/nightly-cronjob.yaml"
expect_failure "a concurrencyPolicy outside the enum" "concurrencyPolicy"

fresh_copy
sed -i 's/      completions: 4/      completions: 3/' "$work/deploy/k8s/base/nightly-cronjob.yaml"
expect_failure "completions differing from SHARDS" "SHARDS 4 differ"

fresh_copy
sed -i 's/^USER 10001:10001$/USER root/' "$work/deploy/docker/native-server.Dockerfile"
expect_failure "a Dockerfile whose final stage runs as root" "runs as 'root'"

fresh_copy
sed -i 's/^HEALTHCHECK --interval=15s/HEALTHCHECK --intervall=15s/' "$work/deploy/docker/native-server.Dockerfile"
expect_failure "a Dockerfile syntax error (unknown HEALTHCHECK flag)" "intervall"

echo "deploy_validate: passed (deploy/ valid; 5 broken copies rejected)"
