# Shared by scripts/setup, scripts/test and scripts/develop. Sourced, not run.
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything provisioned lives outside the work tree, so clones on the same machine
# (and CI's fresh clone) reuse it.
CACHE=${WMBUS_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wmbusmeters-ha-dev}
ROOT=$CACHE/sid-root

# The environments, each a venv from requirements/<name>.txt on ENV_PYTHON[name].
# pytest runs on ENVS (scripts/test; the first also holds ruff and mypy). scripts/develop and
# the browser smoke test run on DEMO_ENVS, newest first (develop's default): the newest Home
# Assistant may have no pytest-homeassistant-custom-component release yet, so it can be a demo
# environment before it is a pytest one. A name in both lists is one venv.
ENVS=(ha-2026.10 ha-2026.2)
DEMO_ENVS=(ha-2026.11 ha-2026.10)
declare -A ENV_PYTHON=([ha-2026.11]=python3.14 [ha-2026.10]=python3.14 [ha-2026.2]=python3.13)
# Every venv scripts/setup builds: ENVS, then the DEMO_ENVS not among them.
ALL_ENVS=("${ENVS[@]}")
for _env in "${DEMO_ENVS[@]}"; do
    [[ " ${ALL_ENVS[*]} " == *" $_env "* ]] || ALL_ENVS+=("$_env")
done
unset _env

# The Home Assistant version an environment pins (its requirements file's homeassistant==).
env_ha_version() { sed -n 's/^homeassistant==\([^[:space:]#]*\).*/\1/p' "$REPO/requirements/$1.txt"; }

# A demo environment from what a user types: 2026.11, ha-2026.11 (scripts/develop --ha).
demo_env() {
    local name=ha-${1#ha-} env
    for env in "${DEMO_ENVS[@]}"; do [[ $env == "$name" ]] && { echo "$env"; return; }; done
    die "no demo environment $1 (choose one of: ${DEMO_ENVS[*]#ha-})"
}

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# A Python for the scripts' small stdlib helpers, outside the dev environment (a native
# machine may have python3.14 without a `python3` name).
host_python() {
    local p
    for p in python3 python3.14 python3.13; do command -v "$p" && return; done
    die "no python3 on PATH"
}

# Native mode: a machine that already has both Pythons and wmbusmeters (the normal laptop case)
# needs no root. WMBUS_DEV_MODE=root|native forces a choice.
dev_mode() {
    if [[ -n ${WMBUS_DEV_MODE:-} ]]; then
        echo "$WMBUS_DEV_MODE"
    elif command -v python3.14 >/dev/null && command -v python3.13 >/dev/null \
        && command -v wmbusmeters >/dev/null; then
        echo native
    else
        echo root
    fi
}

# Where extra programs (wmbusmeters-3.0.0) are linked, as seen by the commands that run in it.
wmbus_bindir() {
    if [[ $(dev_mode) == native ]]; then echo "$CACHE/bin"; else echo /usr/local/bin; fi
}

# Where an environment's venv lives, as seen by the commands that run in it.
venv_dir() {
    if [[ $(dev_mode) == native ]]; then echo "$CACHE/venvs/$1"; else echo "/opt/venvs/$1"; fi
}

# Run a command in the dev environment: in the sid root (private mount namespace, so every
# mount disappears with the command, even when it is killed) or natively.
# The repo, the shared material beside it and the folders in WMBUS_DEV_BIND (space-separated)
# keep their absolute paths inside the root.
in_env() {
    if [[ $(dev_mode) == native ]]; then
        (cd "$PWD" && PATH="$CACHE/bin:$PATH" "$@")
        return
    fi
    local shared
    shared=$(cd "$REPO/.." && pwd)/shared
    unshare --mount --propagation private -- /bin/bash -c "$_IN_ROOT" in-root \
        "$ROOT" "$REPO" "$shared" "${WMBUS_DEV_BIND:-}" "$PWD" "$@"
}

# Runs inside the private mount namespace; keeps stdin (a terminal for scripts/develop).
# shellcheck disable=SC2016
_IN_ROOT='
set -e
root=$1 repo=$2 shared=$3 extra=$4 cwd=$5; shift 5
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mkdir -p "$root$repo"
mount --bind "$repo" "$root$repo"
for dir in "$shared" $extra; do
    if [[ -d $dir ]]; then mkdir -p "$root$dir"; mount --bind "$dir" "$root$dir"; fi
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Start from a clean environment: the host PIP_* variables name host paths.
exec chroot "$root" /usr/bin/env -i \
    HOME=/root LANG=C.UTF-8 TZ=UTC TERM="${TERM:-dumb}" CI="${CI:-}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PYTHONDONTWRITEBYTECODE=1 \
    /bin/bash -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
'

# Run a command from an environment's venv, e.g. `in_venv ha-2026.10 pytest -q`.
in_venv() {
    local name=$1; shift
    local dir
    dir=$(venv_dir "$name")
    in_env /usr/bin/env VIRTUAL_ENV="$dir" PATH="$dir/bin:/usr/local/bin:/usr/bin:/bin" "$@"
}

# Up to date? Each stage writes a stamp holding the hash of what it was built from.
stamp_ok() { [[ -f $1 && $(cat "$1") == "$2" ]]; }
