#!/usr/bin/env bash
# Installs what scripts/ceph/start.sh needs: a one-node Ceph (mon, osd) and its RADOS Gateway.
# Debian/Ubuntu packages, ~1 min; a no-op when the binaries are already there. Needs root (or sudo).
set -Eeuo pipefail

missing=0
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph curl; do
  command -v "$b" >/dev/null || missing=1
done
if [ "$missing" = 0 ]; then
  echo "ceph already installed: $(ceph --version 2>/dev/null | head -n 1)" >&2
  exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install.sh: needs root or sudo to apt-get install" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends ceph-mon ceph-osd radosgw curl >/dev/null
echo "installed: $(ceph --version | head -n 1)" >&2
