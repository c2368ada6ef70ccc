# SPDX-License-Identifier: GPL-2.0
# Writes data to /dev/vda on the first boot and reads it back (disk-data) on the next one.
. /tests/lib.sh
disk_mount || exit 1
if [ -f /mnt/vmms-test ]; then
	echo "VMMS-TEST: disk-data $(cat /mnt/vmms-test)"
	if [ "$(md5sum </mnt/vmms-blob)" = "$(cat /mnt/vmms-blob.md5)" ]; then
		echo "VMMS-TEST: disk-verify ok"
	else
		echo "VMMS-TEST: FAIL disk-verify"
	fi
else
	data=$(cmdline_value vmms.data)
	echo "${data:-hello-from-vmms}" >/mnt/vmms-test
	# 1 MiB of random data too, so a wrong sector mapping cannot pass unnoticed.
	dd if=/dev/urandom of=/mnt/vmms-blob bs=64k count=16 2>/dev/null
	md5sum </mnt/vmms-blob >/mnt/vmms-blob.md5
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
	if [ "$(cat /mnt/vmms-test)" = "${data:-hello-from-vmms}" ]; then
		echo "VMMS-TEST: disk-write ok"
	else
		echo "VMMS-TEST: FAIL disk-write readback"
	fi
fi
umount /mnt
