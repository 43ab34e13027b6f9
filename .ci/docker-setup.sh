#!/usr/bin/env bash
# Make a Docker engine and a Redis image available for the docker-provider tests.
#
# For CI on a fresh Debian 12 machine, run as root. Idempotent: every step checks first and
# says what it did or skipped. No registry is needed:
#   1. install docker.io if there is no dockerd and no engine answers (apt-get update first);
#   2. start dockerd in the background if no engine answers (log in a temp file; poll
#      `docker info` for up to ~30 s); exit non-zero with the log tail if it will not start;
#   3. install docker-compose (Debian's 1.29) if there is no compose tool; install the
#      redis-server package if /usr/bin/redis-server is missing (its service is kept from
#      starting);
#   4. build local/redis:ci from the host's redis-server binary and the libraries `ldd` lists
#      (`docker import` of a tar, ~18 MB), unless an image built from the same binary exists.
#
# Executed, not sourced: it exports nothing. The CI script sets for the tests itself:
#   THROTTLE_HARNESS_REDIS_IMAGE=local/redis:ci TESTCONTAINERS_RYUK_DISABLED=true
#   TESTCONTAINERS_CONNECTION_MODE=docker_host
set -euo pipefail

IMAGE="local/redis:ci"
REDIS_BINARY="/usr/bin/redis-server"
SHA_LABEL="org.throttle-harness.redis-server-sha256"
ENGINE_WAIT_S=30

say() { printf 'docker-setup: %s\n' "$*"; }
die() { printf 'docker-setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts dockerd)"

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
        || die "apt-get install $* failed"
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

engine_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown; }

# Wait up to ENGINE_WAIT_S for an engine; stop early (return 2) if dockerd PID $1 has exited.
wait_for_engine() {
    local pid="${1:-}" tries=$((ENGINE_WAIT_S * 4))
    for _ in $(seq "$tries"); do
        engine_answers && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 2
        fi
        sleep 0.25
    done
    return 1
}

# --- 1. Docker packages -----------------------------------------------------------------------
if engine_answers; then
    say "a Docker engine already answers (server $(engine_version)); nothing to install or start"
else
    if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
        say "docker.io already installed ($(command -v dockerd))"
    else
        apt_install docker.io
    fi

    # --- 2. The engine ------------------------------------------------------------------------
    if pgrep -x dockerd >/dev/null 2>&1; then
        say "dockerd is already running (pid $(pgrep -x dockerd | head -n1)); waiting for it to answer"
        wait_for_engine || die "dockerd is running but 'docker info' did not answer within ${ENGINE_WAIT_S}s"
    else
        started=0
        for driver in overlay2 vfs; do
            log="$(mktemp /tmp/dockerd.XXXXXX.log)"
            say "starting dockerd --storage-driver=$driver in the background (log: $log)"
            setsid "$(command -v dockerd)" --storage-driver="$driver" >"$log" 2>&1 </dev/null &
            pid=$!
            rc=0
            wait_for_engine "$pid" || rc=$?
            if [ "$rc" -eq 0 ]; then
                started=1
                break
            fi
            if [ "$rc" -eq 2 ]; then
                say "dockerd (storage driver $driver) exited; last lines of $log:"
                tail -n 15 "$log" | sed 's/^/    /'
                continue
            fi
            kill "$pid" 2>/dev/null || true
            say "last lines of $log:"
            tail -n 15 "$log" | sed 's/^/    /'
            die "dockerd started (pid $pid) but 'docker info' did not answer within ${ENGINE_WAIT_S}s"
        done
        [ "$started" -eq 1 ] || die "could not start the Docker engine (see the dockerd logs above)"
        say "Docker engine answers (server $(engine_version), dockerd pid $pid, log $log)"
    fi
fi

# --- 3. A compose tool (the --compose tests): the plugin if present, else Debian's 1.29 --------
if docker compose version >/dev/null 2>&1; then
    say "docker compose $(docker compose version --short) present"
elif command -v docker-compose >/dev/null 2>&1; then
    say "docker-compose $(docker-compose version --short) present"
else
    apt_install docker-compose
    say "docker-compose $(docker-compose version --short) installed"
fi

# --- 3b. The redis-server binary ---------------------------------------------------------------
if [ -x "$REDIS_BINARY" ]; then
    say "$REDIS_BINARY present ($("$REDIS_BINARY" --version | awk '{print $3}'))"
else
    # Only the binary is wanted: keep the package's service from starting (unless a policy exists).
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    rc=0
    ( apt_install redis-server ) || rc=$?
    [ "$created_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || exit "$rc"
    [ -x "$REDIS_BINARY" ] || die "redis-server package installed but $REDIS_BINARY is missing"
fi

# --- 4. The image -----------------------------------------------------------------------------
binary_sha="$(sha256sum "$(readlink -f "$REDIS_BINARY")" | awk '{print $1}')"
existing_sha="$(docker image inspect --format "{{ index .Config.Labels \"$SHA_LABEL\" }}" "$IMAGE" 2>/dev/null || true)"
if [ "$existing_sha" = "$binary_sha" ]; then
    say "image $IMAGE is up to date (built from this redis-server, sha256 ${binary_sha:0:12})"
else
    [ -n "$existing_sha" ] && say "image $IMAGE was built from another binary; rebuilding"
    rootfs="$(mktemp -d /tmp/redis-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/data" "$rootfs/tmp"
    chmod 1777 "$rootfs/tmp"
    # The binary picks its mode from its own name: keep it "redis-server" (cp -L: it is a symlink).
    cp -L "$REDIS_BINARY" "$rootfs/usr/local/bin/redis-server"
    libs="$(ldd "$REDIS_BINARY" | grep -o '/[^ ]*' || true)"
    [ -n "$libs" ] || die "ldd found no libraries for $REDIS_BINARY"
    for lib in $libs; do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
    printf 'root:x:0:0:root:/root:/bin/false\nredis:x:999:999:redis:/data:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nredis:x:999:\n' >"$rootfs/etc/group"
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
        --change 'WORKDIR /data' \
        --change 'EXPOSE 6379' \
        --change "LABEL $SHA_LABEL=$binary_sha" \
        --change 'CMD ["redis-server", "--protected-mode", "no"]' \
        - "$IMAGE" >/dev/null || die "docker import of $IMAGE failed"
    size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
    say "built $IMAGE from $REDIS_BINARY and $(echo "$libs" | wc -w) libraries ($((size / 1000000)) MB)"
fi

# Smoke test: the binary and its libraries load inside the image.
version="$(docker run --rm "$IMAGE" redis-server --version 2>&1)" \
    || die "image $IMAGE does not run: $version"
say "image $IMAGE runs: $version"
say "done"
