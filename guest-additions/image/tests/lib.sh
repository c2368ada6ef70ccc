# SPDX-License-Identifier: GPL-2.0
# Helpers the guest test scripts source: find, format and mount the test disk.

# disk_wait [DEV]: waits up to 5 s for the block device (a module's probe may be late).
disk_wait() {
	dev=${1:-/dev/vda}
	i=0
	while [ ! -b "$dev" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -b "$dev" ]
}

# disk_is_ext DEV: true when DEV carries an ext2/3/4 superblock (magic 0xEF53 at 1080).
disk_is_ext() {
	[ "$(dd if="$1" bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "53ef" ]
}

# disk_mount [DEV]: mounts DEV at /mnt, making an ext4 file system first if it has none.
disk_mount() {
	dev=${1:-/dev/vda}
	if ! disk_wait "$dev"; then
		echo "VMMS-TEST: FAIL no $dev"
		return 1
	fi
	if disk_is_ext "$dev"; then
		/usr/sbin/e2fsck -p "$dev" >/dev/null 2>&1
		if [ $? -ge 4 ]; then
			echo "VMMS-TEST: FAIL e2fsck $dev"
			return 1
		fi
	else
		echo "VMMS-TEST: disk-mkfs $dev"
		if ! /usr/sbin/mke2fs -q -F -t ext4 "$dev" >/tmp/mke2fs.log 2>&1; then
			echo "VMMS-TEST: FAIL mke2fs $dev: $(tr '\n' ' ' </tmp/mke2fs.log)"
			return 1
		fi
	fi
	if ! mount -t ext4 "$dev" /mnt; then
		echo "VMMS-TEST: FAIL mount $dev"
		return 1
	fi
}

# cmdline_value KEY: the value of KEY=... on the kernel command line, empty if absent.
cmdline_value() {
	for a in $(cat /proc/cmdline); do
		case "$a" in "$1"=*) echo "${a#*=}" ;; esac
	done
}
