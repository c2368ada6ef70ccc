# SPDX-License-Identifier: GPL-2.0
# Reboots once: the boot count lives on /dev/vda; without a disk every boot reboots.
. /tests/lib.sh
if [ -b /dev/vda ] || disk_wait /dev/vda; then
	disk_mount || exit 1
	n=$(cat /mnt/vmms-boots 2>/dev/null)
	n=$((${n:-0} + 1))
	echo "$n" >/mnt/vmms-boots
	umount /mnt
	sync
	echo "VMMS-TEST: boot=$n"
	if [ "$n" -eq 1 ]; then
		echo "VMMS-TEST: rebooting"
		reboot -f
		sleep 5
	fi
	echo "VMMS-TEST: rebooted"
else
	echo "VMMS-TEST: rebooting (no /dev/vda: the boot count is not kept)"
	reboot -f
	sleep 5
fi
