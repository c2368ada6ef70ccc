# SPDX-License-Identifier: GPL-2.0
# Waits for the VMM's ACPI power button; /etc/acpi/PWRF/00000080 then powers off.
echo "VMMS-TEST: waiting for power button"
sleep 120
echo "VMMS-TEST: FAIL no power button in 120 s"
