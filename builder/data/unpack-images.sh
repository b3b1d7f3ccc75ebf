#!/bin/sh
# kubeinit-build: import and unpack image archives into a scratch containerd root
# (builder/containerd_store.py). Runs as PID 1 of its own PID, mount and network namespaces
# (`unshare --pid --mount --net --fork --kill-child`): containerd cannot outlive it (the kernel
# kills every process of the namespace when this script ends or is killed), no mount it makes is
# seen by the host, and nothing can be pulled (loopback only). A tmpfs over /run keeps paths
# compiled into containerd (/run/containerd/...) off the host's /run.
#
# Usage: unpack-images.sh BINDIR CONFIG ADDRESS PLATFORM SNAPSHOTTER LOG ARCHIVE...
#   The real containerd and ctr from BINDIR (hack/k8s-binaries), never the image's own.
# Prints `ctr images check` and `ctr images ls` of namespace k8s.io between marker lines, then
# stops containerd with SIGTERM and waits for it, so its bolt databases are closed cleanly.
set -eu
bin=$1 config=$2 address=$3 platform=$4 snapshotter=$5 log=$6
shift 6
mount -t tmpfs -o mode=0755 tmpfs /run
ip link set lo up 2>/dev/null || true

"$bin/containerd" --config "$config" >"$log" 2>&1 &
pid=$!
ctr() { "$bin/ctr" --address "$address" --namespace k8s.io "$@"; }

n=0
until ctr version >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "containerd exited at start (log: $log): $(tail -n 3 "$log" | tr '\n' ' ')" >&2
    exit 1
  fi
  n=$((n + 1))
  if [ "$n" -gt 600 ]; then
    echo "containerd did not answer within 60 s (log: $log)" >&2
    exit 1
  fi
  sleep 0.1
done

# --local: the client imports and unpacks (the transfer service's unpack platform and
# snapshotter would come from the daemon's config instead). The labels are containerd CRI's
# (internal/cri/labels): `managed` as a CRI pull sets it, `pinned` as containerd pins the
# sandbox image, so the kubelet's image garbage collector never removes them.
for archive in "$@"; do
  ctr images import --local --platform "$platform" --snapshotter "$snapshotter" \
    --label io.cri-containerd.image=managed --label io.cri-containerd.pinned=pinned \
    "$archive" >&2
done

echo "--- images check"
ctr images check --snapshotter "$snapshotter"
echo "--- images ls"
ctr images ls
echo "--- snapshots"
"$bin/ctr" --address "$address" --namespace k8s.io snapshots --snapshotter "$snapshotter" ls
echo "--- end"

kill -TERM "$pid"
wait "$pid" || {
  rc=$?
  # 143: terminated by the SIGTERM it was sent (containerd's normal shutdown exits 0)
  [ "$rc" -eq 143 ] || { echo "containerd exited $rc on shutdown (log: $log)" >&2; exit 1; }
}
