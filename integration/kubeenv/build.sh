#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from the Go module proxy, once, into a
# cache folder named by version, and prints that folder. A second run with the
# binaries present does nothing. The build happens in throw-away wrapper
# modules so none of Kubernetes' dependencies touch Rosen's go.mod.
#
#   integration/kubeenv/build.sh            # build (≈12 min cold on 2 cores)
#   ROSEN_KUBE_BIN=/some/dir build.sh       # use another cache folder
#
# The Kubernetes tests find the binaries through the same folder (see
# kubeenv.BinDir) or through ROSEN_KUBE_BIN / KUBEBUILDER_ASSETS.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
STAGING_VERSION=${STAGING_VERSION:-v0.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
DEST=${ROSEN_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/rosen-kube/$KUBE_VERSION}

export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off
unset GOOS GOARCH

if [ -x "$DEST/kube-apiserver" ] && [ -x "$DEST/etcd" ]; then
  echo "$DEST"
  exit 0
fi
mkdir -p "$DEST"

# One builder at a time (CI and a developer, or two test packages).
exec 9>"$DEST/.lock"
flock 9
if [ -x "$DEST/kube-apiserver" ] && [ -x "$DEST/etcd" ]; then
  echo "$DEST"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log() { echo "kube-binaries: $*" >&2; }

if [ ! -x "$DEST/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  mkdir -p "$work/etcd"
  (
    cd "$work/etcd"
    go mod init rosen.local/etcdbuild >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    go build -o "$DEST/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$DEST/etcd.tmp" "$DEST/etcd"
fi

if [ ! -x "$DEST/kube-apiserver" ]; then
  log "building kube-apiserver $KUBE_VERSION (staging modules at $STAGING_VERSION)"
  mkdir -p "$work/kube"
  # (from the empty work folder, so no go.mod or go.sum of a caller is touched)
  modfile=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$modfile" ] || { log "cannot download k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
  # k8s.io/kubernetes replaces its staging modules with ./staging folders that
  # are not in the module zip; point each one at its published copy instead.
  staging=$(sed -n 's#^\s*\(k8s\.io/[a-z0-9.-]*\) => \./staging/.*#\1#p' "$modfile")
  [ -n "$staging" ] || { log "no staging modules found in $modfile"; exit 1; }
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  (
    cd "$work/kube"
    {
      echo "module rosen.local/kubebuild"
      echo
      echo "go $(sed -n 's/^go //p' "$modfile")"
      echo
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo
      echo "replace ("
      for m in $staging; do echo "	$m => $m $STAGING_VERSION"; done
      echo ")"
    } >go.mod
    log "$(echo "$staging" | wc -l) staging modules replaced"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >&2
    ld=""
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    go build -ldflags "$ld" -o "$DEST/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "$DEST/kube-apiserver.tmp" "$DEST/kube-apiserver"
fi

log "done: $("$DEST/kube-apiserver" --version 2>/dev/null || true), $("$DEST/etcd" --version 2>/dev/null | head -1 || true)"
echo "$DEST"
