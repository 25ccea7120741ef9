# local-api.sh - sourced by demo.sh and try.sh (from the repository's root,
# with $kind set to dune or redash): builds execfs unless EXECFS_BIN names
# one, makes a work directory with a mount point, starts the bundled local
# API (tests/fake_$kind.py) with a key of its own, and on exit unmounts,
# stops the API and removes the work directory.
#
# Sets: EXECFS_BIN, work, mnt, key, port.

if [ -z "${EXECFS_BIN:-}" ]; then
    bash tests/install-deps.sh --run
    [ -f build/build.ninja ] || meson setup build >/dev/null
    ninja -C build >/dev/null
    EXECFS_BIN=$PWD/build/execfs
fi

work=$(mktemp -d "/tmp/execfs-$(basename "$0" .sh).XXXXXX")
mnt=$work/mnt
mkdir -p "$mnt"
key="local-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
fake_pid=""
cleanup() {
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
    echo "unmounted; removed $work"
}
trap cleanup EXIT

/usr/bin/python3 "tests/fake_$kind.py" --port 0 --port-file "$work/port" --key "$key" >/dev/null &
fake_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
