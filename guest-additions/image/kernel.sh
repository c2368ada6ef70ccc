#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Builds (or takes from the cache) the bundled guest kernel: tinyconfig + kernel.config.
#
# Usage: kernel.sh OUTDIR
# Puts bzImage, vmlinux (ELF with the PVH note) and config into OUTDIR. The result is cached
# in ${VMMS_CACHE:-$HOME/.cache/vmms}/kernel-<hash>/, where the hash covers every input:
# the fragment, the linux-source package version, the compiler and this script.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
outdir=${1:?usage: kernel.sh OUTDIR}
cache=${VMMS_CACHE:-$HOME/.cache/vmms}
fragment=$here/kernel.config
tarball=/usr/src/linux-source-6.1.tar.xz

say() { echo "guest-image: $*"; }
die() { echo "guest-image: error: $*" >&2; exit 1; }

# --- prerequisites --------------------------------------------------------------------------
missing=()
for pair in flex:flex bison:bison bc:bc gcc:gcc make:make xz:xz-utils perl:perl \
            readelf:binutils; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
for pkg in libelf-dev libssl-dev linux-source-6.1; do
	dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] || die "missing packages, install with: apt-get install ${missing[*]}"
[ -r "$tarball" ] || die "$tarball not readable (package linux-source-6.1)"

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
hash=$( { cat "$fragment"; echo "linux-source-6.1 $srcver"; gcc --version | head -n1;
	  cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
kdir=$cache/kernel-$hash
mkdir -p "$cache" "$outdir"

install_out() {
	for f in bzImage vmlinux config; do
		# Hardlink when on the same filesystem (instant), copy otherwise.
		ln -f "$kdir/$f" "$outdir/$f" 2>/dev/null || cp -f "$kdir/$f" "$outdir/$f"
	done
}

if [ -f "$kdir/.done" ]; then
	say "[kernel] cached: $kdir"
	install_out
	exit 0
fi

# Several engineers may build at once: one builder per cache, the others wait for it.
exec 9>"$cache/.kernel.lock"
if ! flock -n 9; then
	say "[kernel] another build holds $cache/.kernel.lock; waiting"
	flock 9
fi
if [ -f "$kdir/.done" ]; then
	say "[kernel] cached: $kdir"
	install_out
	exit 0
fi

src=$cache/linux-source-$srcver
if [ ! -f "$src/.extracted" ]; then
	say "[kernel] extracting $tarball (linux-source-6.1 $srcver) into $src"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	tar -xJf "$tarball" -C "$src.tmp" --strip-components=1
	touch "$src.tmp/.extracted"
	mv "$src.tmp" "$src"
fi

rm -rf "$kdir"
mkdir -p "$kdir/obj"
log=$kdir/build.log
: >"$log"
fail() {
	echo "guest-image: error: $1; last lines of $log:" >&2
	tail -n 30 "$log" >&2
	exit 1
}
kmake() { make -C "$src" O="$kdir/obj" "$@" >>"$log" 2>&1; }

say "[kernel] configuring: tinyconfig + $(basename "$fragment") (log: $log)"
kmake tinyconfig || fail "make tinyconfig failed"
(cd "$kdir/obj" && "$src/scripts/kconfig/merge_config.sh" -m -O "$kdir/obj" .config \
	"$fragment") >>"$log" 2>&1 || fail "merge_config.sh failed"
kmake olddefconfig || fail "make olddefconfig failed"

# Kconfig silently drops options whose dependencies are unmet: check each one survived.
lost=() kept=()
while IFS= read -r line; do
	case $line in
	CONFIG_*=y)
		grep -qx "$line" "$kdir/obj/.config" || lost+=("${line%=y}") ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt% is not set}
		! grep -q "^$opt=" "$kdir/obj/.config" || kept+=("$opt") ;;
	esac
done <"$fragment"
[ ${#lost[@]} -eq 0 ] ||
	die "options from $fragment not set after olddefconfig (unmet dependencies?): ${lost[*]}"
[ ${#kept[@]} -eq 0 ] ||
	die "options $fragment turns off are still on after olddefconfig (selected?): ${kept[*]}"

jobs=$(nproc)
say "[kernel] building bzImage with make -j$jobs (a few minutes; log: $log)"
start=$SECONDS
kmake -j"$jobs" bzImage || fail "kernel build failed"
say "[kernel] built in $((SECONDS - start)) s"

readelf -n "$kdir/obj/vmlinux" 2>/dev/null | grep -q 'Xen' ||
	die "vmlinux has no Xen/PVH ELF note (CONFIG_PVH lost?)"
cp "$kdir/obj/arch/x86/boot/bzImage" "$kdir/bzImage"
cp "$kdir/obj/vmlinux" "$kdir/vmlinux"
cp "$kdir/obj/.config" "$kdir/config"
rm -rf "$kdir/obj"
touch "$kdir/.done"
say "[kernel] cached: $kdir ($(stat -c %s "$kdir/bzImage") byte bzImage)"
install_out
