#!/usr/bin/env bash
# The image's install, rehearsed where Apptainer cannot run: a fresh Debian bookworm root file
# system (debootstrap, the image's base distribution), containers/install.sh run in it through
# chroot exactly as %post runs it, then `watergee info` and the self-test (a tiny classify)
# inside it. Needs root and Debian's package archive; takes several minutes.
#
#   containers/rehearse.sh [ROOT_FOLDER]      (default /tmp/watergee-rehearsal; reused if there)
#
# WATERGEE_TF picks the TensorFlow requirement (default here tensorflow-cpu: the CUDA wheels of
# the real image are several GB and need a GPU to matter).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/tmp/watergee-rehearsal}
started=$(date +%s)
[ "$(id -u)" = 0 ] || { echo "$0: needs root (debootstrap, chroot)" >&2; exit 3; }
command -v debootstrap >/dev/null || {
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
if [ ! -x "$root/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
fi
cleanup() { for m in dev/pts dev proc; do umount "$root/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# the files %files copies, at the paths %post expects
rm -rf "$root/opt/watergee-src" && mkdir -p "$root/opt/watergee-src/containers"
cp -r "$here/pyproject.toml" "$here/README.md" "$here/watergee" "$root/opt/watergee-src/"
cp "$here/containers/install.sh" "$here/containers/selftest.sh" "$root/opt/watergee-src/containers/"
find "$root/opt/watergee-src" -name __pycache__ -prune -exec rm -rf {} +

# a site's package index and certificate authority (a proxy that re-signs TLS) go in too
pip_env=()
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT; do
  [ -n "${!name:-}" ] && pip_env+=("$name=${!name}")
done
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  cp "$PIP_CERT" "$root/etc/host-ca-certificates.crt"
  pip_env+=("PIP_CERT=/etc/host-ca-certificates.crt")
fi
in_root() {
  chroot "$root" env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "${pip_env[@]}" "$@"
}
in_root env WATERGEE_TF="${WATERGEE_TF:-tensorflow-cpu}" \
  bash /opt/watergee-src/containers/install.sh /opt/watergee-src
installed=$(date +%s)
in_root bash /opt/watergee-src/containers/selftest.sh
echo "rehearsal passed: install $((installed - started)) s, self-test $(( $(date +%s) - installed )) s"
