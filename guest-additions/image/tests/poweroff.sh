# SPDX-License-Identifier: GPL-2.0
# Powers the guest off at once (the VMM must see the ACPI/hardware power-off).
echo "VMMS-TEST: powering off"
sync
poweroff -f
