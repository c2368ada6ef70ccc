# SPDX-License-Identifier: GPL-2.0
# Reports how many CPUs the guest kernel brought up.
n=$(grep -c '^processor' /proc/cpuinfo)
echo "VMMS-TEST: cpus=$n"
echo "VMMS-TEST: cpus-online=$(cat /sys/devices/system/cpu/online)"
