#!/usr/bin/env bash
# Prepare a Debian/Ubuntu machine for building and testing this repo. Idempotent: every step
# checks first and skips what is already done, so a second run takes well under 2 s.
#
#   scripts/setup.sh            (as root, or as a user with sudo for the apt step)
#
# Steps:
#   1. apt: install missing system packages (apt-get update only if something is missing)
#   2. Rust: install rustup (minimal profile) if absent; add clippy and rustfmt if missing
#   3. Python venv .venv with the pinned tools: chdb-core (pip --no-deps: it would otherwise
#      pull pandas and pyarrow, which the local ClickHouse server does not use), then
#      requirements-dev.txt. Skipped when .venv/.setup-stamp matches a hash of
#      requirements-dev.txt, the chdb pin and the Python version.
#
# Environment: PYTHON (interpreter for the venv, default python3), SETUP_FORCE=1 (redo the
# venv step even if the stamp matches).
set -euo pipefail

CHDB_PIN="chdb-core==26.9.0"
APT_PACKAGES=(
    ca-certificates curl git jq zstd # fetching, fixtures, scripts
    gcc libc6-dev pkg-config         # linker and C toolchain for cargo builds
    python3 python3-venv             # the tools venv
    procps iproute2 util-linux       # ps/pgrep, ss, setsid/flock (infra/local/stack.sh)
    pebble openssl                   # local ACME CA + DNS, its TLS cert (rotation tests, smoke)
)

REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="$REPO_ROOT/.venv"
STAMP="$VENV/.setup-stamp"
REQS="$REPO_ROOT/requirements-dev.txt"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) for: $*"
    fi
}

# --- 1. system packages -------------------------------------------------------------------
step_apt() {
    if ! command -v dpkg-query >/dev/null; then
        say "apt: not a Debian-like system, skipping; make sure these exist: ${APT_PACKAGES[*]}"
        return 0
    fi
    local missing=() pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        say "apt: all ${#APT_PACKAGES[@]} packages present"
        return 0
    fi
    say "apt: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- 2. Rust toolchain --------------------------------------------------------------------
step_rust() {
    if [[ -x "$HOME/.cargo/bin/rustup" ]] && ! command -v rustup >/dev/null; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v rustup >/dev/null; then
        say "rust: installing rustup (stable, minimal profile)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal --default-toolchain stable
        export PATH="$HOME/.cargo/bin:$PATH"
        say "rust: add \$HOME/.cargo/bin to PATH in your shell profile"
    fi
    local installed want=() comp
    installed="$(rustup component list --installed 2>/dev/null || true)"
    for comp in clippy rustfmt; do
        grep -q "^$comp-" <<<"$installed" || want+=("$comp")
    done
    if ((${#want[@]} == 0)); then
        say "rust: $(rustc --version 2>/dev/null || echo rustc), clippy and rustfmt present"
    else
        say "rust: adding components ${want[*]}"
        rustup component add "${want[@]}"
    fi
}

# --- 3. Python tools venv -----------------------------------------------------------------
step_venv() {
    [[ -f "$REQS" ]] || die "missing $REQS"
    local python="${PYTHON:-python3}" want have=""
    command -v "$python" >/dev/null || die "$python not found"
    # The stamp covers what decides the venv's content: the pins and the interpreter version.
    want="$({ cat "$REQS"; echo "$CHDB_PIN"; "$python" -c 'import sys; print(sys.version)'; } |
        sha256sum | cut -d' ' -f1)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    if [[ "$have" == "$want" && -x "$VENV/bin/python" && "${SETUP_FORCE:-0}" != 1 ]]; then
        say "venv: .venv up to date (stamp ${want:0:12})"
        return 0
    fi
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "venv: creating .venv with $("$python" --version 2>&1)"
        "$python" -m venv "$VENV"
    fi
    say "venv: installing $CHDB_PIN (--no-deps)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$CHDB_PIN"
    say "venv: installing requirements-dev.txt"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
    "$VENV/bin/python" -c 'import chdb._chdb' || die "chdb does not import in .venv"
    for tool in moto_server waitress-serve sam cargo-lambda; do
        [[ -x "$VENV/bin/$tool" ]] || die ".venv/bin/$tool missing after install"
    done
    printf '%s\n' "$want" >"$STAMP"
    say "venv: done (stamp ${want:0:12})"
}

start=$(date +%s%3N)
step_apt
step_rust
step_venv
say "ready in $(($(date +%s%3N) - start)) ms. Next: infra/local/stack.sh start"
