#!/bin/sh
# Installs epochd as a systemd service: the binary, the unit (and the GPU
# drop-in with --gpu, the dashboard's with --http), a config file, the `epochd` system user and group, the
# experiments folder (group-writable: add users to group epochd to let them
# drop specs), then enables and starts the service.
#
#   sudo packaging/install.sh [--build DIR] [--prefix DIR] [--gpu] [--http] [--no-start]
#
# --build   the meson build folder holding epochd (default: build)
# --prefix  where the binary goes: PREFIX/bin/epochd, and a CUDA build's backend
#           PREFIX/lib/epochd/epochd-cuda.so (default: /usr/local)
# --gpu     also install the drop-in that gives the service the NVIDIA devices
# --http    also install the drop-in that lets the dashboard listen (loopback
#           only; set http.listen in the config, docs/web.md)
# --no-start  install and enable, but do not start (or restart) it
# DESTDIR=/some/root stages every file under that root instead and skips the
# user, ownership and systemctl steps (for packages and for tests).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=build
prefix=/usr/local
gpu=0
http=0
start=1
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --gpu) gpu=1; shift ;;
    --http) http=1; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 64 ;;
    esac
done
case "$build" in /*) ;; *) build="$src/$build" ;; esac
dest=${DESTDIR:-}
staged=0
[ -n "$dest" ] && staged=1

bin="$build/epochd"
if [ ! -x "$bin" ]; then
    echo "install.sh: $bin not found: build first (scripts/build)" >&2
    exit 66
fi
if [ "$staged" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (or set DESTDIR to stage the files)" >&2
    exit 77
fi

say() { echo "install.sh: $*"; }

# the user and group the service runs as
if [ "$staged" = 0 ] && ! getent passwd epochd >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/epochd --no-create-home \
        --shell /usr/sbin/nologin --comment "epochd training service" epochd
    say "created the system user epochd"
fi

install -d "$dest$prefix/bin" "$dest/etc/epochd" "$dest/etc/systemd/system" \
    "$dest$prefix/share/doc/epochd"
install -m 0755 "$bin" "$dest$prefix/bin/epochd"
say "installed $prefix/bin/epochd"
# the CUDA backend, which epochd loads from ../lib/epochd/ when it needs a GPU
if [ -f "$build/epochd-cuda.so" ]; then
    install -d "$dest$prefix/lib/epochd"
    install -m 0644 "$build/epochd-cuda.so" "$dest$prefix/lib/epochd/epochd-cuda.so"
    say "installed $prefix/lib/epochd/epochd-cuda.so"
fi

# the unit, pointing at the installed binary
sed "s|/usr/local/bin/epochd|$prefix/bin/epochd|" "$here/epochd.service" \
    >"$dest/etc/systemd/system/epochd.service"
chmod 0644 "$dest/etc/systemd/system/epochd.service"
say "installed /etc/systemd/system/epochd.service"
if [ "$gpu" = 1 ]; then
    install -d "$dest/etc/systemd/system/epochd.service.d"
    install -m 0644 "$here/epochd-gpu.conf" "$dest/etc/systemd/system/epochd.service.d/gpu.conf"
    say "installed the GPU drop-in epochd.service.d/gpu.conf"
fi
if [ "$http" = 1 ]; then
    install -d "$dest/etc/systemd/system/epochd.service.d"
    install -m 0644 "$here/epochd-http.conf" "$dest/etc/systemd/system/epochd.service.d/http.conf"
    say "installed the dashboard's drop-in epochd.service.d/http.conf (set http.listen in the config)"
fi

# the config: never overwrite one that is there
if [ ! -e "$dest/etc/epochd/epochd.yaml" ]; then
    install -m 0644 "$here/epochd.yaml" "$dest/etc/epochd/epochd.yaml"
    say "installed /etc/epochd/epochd.yaml (edit data_roots and devices)"
else
    say "kept the existing /etc/epochd/epochd.yaml"
fi
for doc in service.md worker-protocol.md database.md spec.md web.md; do
    if [ -f "$src/docs/$doc" ]; then
        install -m 0644 "$src/docs/$doc" "$dest$prefix/share/doc/epochd/$doc"
    fi
done

# /var/lib/epochd is the unit's StateDirectory; the experiments folder in it
# is writable by the group, setgid so that dropped files stay in the group
install -d -m 0750 "$dest/var/lib/epochd"
install -d -m 2775 "$dest/var/lib/epochd/experiments"
if [ "$staged" = 0 ]; then
    chown epochd:epochd /var/lib/epochd /var/lib/epochd/experiments
fi

# the unit's syntax and references
if [ "$staged" = 0 ] && command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /etc/systemd/system/epochd.service || say "systemd-analyze verify reported the above"
fi

if [ "$staged" = 1 ]; then
    say "staged under $dest"
    exit 0
fi
if ! command -v systemctl >/dev/null || [ ! -d /run/systemd/system ]; then
    say "systemd is not running here: start it by hand with"
    say "  sudo -u epochd $prefix/bin/epochd serve --config /etc/epochd/epochd.yaml"
    exit 0
fi
systemctl daemon-reload
systemctl enable epochd.service
if [ "$start" = 1 ]; then
    systemctl restart epochd.service
    say "started: systemctl status epochd; journalctl -u epochd -f"
fi
say "users in group epochd may drop specs into /var/lib/epochd/experiments"
