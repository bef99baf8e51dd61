# Sourced by scripts/run and scripts/test: installs the Debian packages the build and the
# tests need, when any is missing, and configures the build directory.
set -euo pipefail

VNET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VNET_BUILD=${VNET_BUILD:-$VNET_ROOT/build}

VNET_PACKAGES=(
  cmake g++ make pkg-config clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libssl-dev libcrypt-dev
  prometheus-cpp-dev libprotobuf-dev protobuf-compiler libyaml-cpp-dev libgtest-dev libtinyxml2-dev nlohmann-json3-dev
  iproute2 nftables procps curl openssl prometheus openvswitch-switch systemd dpkg-dev lintian adduser nodejs
  qemu-system-x86 busybox-static cpio kmod xz-utils zstd debian-archive-keyring
)
# Debian's nodejs comes without npm (a package of its own); a Node.js from elsewhere brings its own.
command -v npm >/dev/null || VNET_PACKAGES+=(npm)

vnet_install_deps() {
  local missing=()
  for p in "${VNET_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

vnet_build() {
  cmake -S "$VNET_ROOT" -B "$VNET_BUILD" "$@" >/dev/null
  cmake --build "$VNET_BUILD" -j"$(nproc)"
}
