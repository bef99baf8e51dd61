# Debian's stock kernels and initramfs images for guests, sourced by tests/vm/run and
# tests/vm/vnic-guest. Needs CACHE set. Kernel packages come from Debian through an apt
# configuration of this file's own (the system's sources are not touched), kept in $CACHE.

APT=$CACHE/apt
APT_OPTS=(-o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o Dir::State="$APT/state" -o Dir::State::status="$APT/state/status"
          -o Dir::Cache="$APT/cache" -o Debug::NoLocking=1)

# The Debian archive this machine's own apt sources use (deb822 or one-line format).
debian_mirror() {
  local m
  m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources 2>/dev/null |
      tr ' ' '\n' | grep -v security | grep . | head -1)
  [[ -n $m ]] || m=$(sed -n -E 's/^deb (\[[^]]*\] )?([^ ]+) .*/\2/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                     2>/dev/null | grep -v security | head -1)
  [[ -n $m ]] || { echo "no Debian archive in this machine's apt sources" >&2; return 1; }
  echo "$m"
}

apt_update() {
  mkdir -p "$APT/state/lists/partial" "$APT/cache/archives/partial"
  touch "$APT/state/status"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg mirror
  mirror=$(debian_mirror)
  : > "$APT/sources.list"
  for suite in bullseye bookworm trixie; do
    echo "deb [signed-by=$keyring] $mirror $suite main" >> "$APT/sources.list"
  done
  # Package lists are refreshed once a day; the kernels themselves are kept.
  if [[ -z $(find "$APT/state/lists" -name '*Packages*' -mtime -1 2>/dev/null | head -1) ]]; then
    apt-get "${APT_OPTS[@]}" update -qq
  fi
}

# Prints the kernel release (uname -r) of SUITE's current amd64 kernel, fetching and unpacking
# it into $CACHE/$suite/<release> when not there yet.
fetch_kernel() {
  local suite=$1 version pkg release dir
  version=$(apt-cache "${APT_OPTS[@]}" madison linux-image-amd64 | awk -v s="$suite/main" '$0 ~ s {print $3; exit}')
  [[ -n $version ]] || { echo "no linux-image-amd64 in $suite" >&2; return 1; }
  pkg=$(apt-cache "${APT_OPTS[@]}" show "linux-image-amd64=$version" | sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -1)
  release=${pkg#linux-image-}
  dir=$CACHE/$suite/$release
  if [[ ! -e $dir/.done ]]; then
    echo "fetching $pkg ($suite)" >&2
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && apt-get "${APT_OPTS[@]}" download "$pkg" >/dev/null 2>&1)
    dpkg-deb -x "$dir"/*.deb "$dir/root"
    rm -f "$dir"/*.deb
    # Merged-/usr packages (trixie) keep modules in usr/lib; modprobe -d looks in lib/.
    [[ -e $dir/root/lib ]] || ln -s usr/lib "$dir/root/lib"
    depmod -b "$dir/root" "$release"
    touch "$dir/.done"
  fi
  echo "$release"
}

# A guest's initramfs: busybox, INIT as /init, and MODULE... of the kernel unpacked in KROOT
# with their dependencies, in load order in /modules.order (INIT loads them).
#   make_initramfs KROOT RELEASE OUT INIT MODULE...
make_initramfs() {
  local kroot=$1 release=$2 out=$3 init=$4 tmp line path name
  shift 4
  tmp=$(mktemp -d)
  mkdir -p "$tmp"/{bin,dev,proc,sys,host,lib/modules}
  cp /bin/busybox "$tmp/bin/busybox"
  : > "$tmp/modules.order"
  while read -r line; do
    [[ $line == insmod* ]] || continue
    path=${line#insmod }
    path=${path%% *}
    name=$(basename "$path")
    case $name in
      *.xz) xz -dc "$path" > "$tmp/lib/modules/${name%.xz}"; name=${name%.xz} ;;
      *.zst) zstd -qdc "$path" > "$tmp/lib/modules/${name%.zst}"; name=${name%.zst} ;;
      *) cp "$path" "$tmp/lib/modules/$name" ;;
    esac
    grep -qx "$name" "$tmp/modules.order" || echo "$name" >> "$tmp/modules.order"
  done < <(modprobe -d "$kroot" -S "$release" --show-depends -a "$@" 2>/dev/null)
  cp "$init" "$tmp/init"
  chmod +x "$tmp/init"
  (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
  rm -rf "$tmp"
}
