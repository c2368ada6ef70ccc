// SPDX-License-Identifier: GPL-2.0-only
/* Test guest that resets the machine through the FADT reset port; with on_reboot=destroy the
 * worker exits 3. */
#include "tests/guests/libguest.h"

int main(void)
{
	unsigned int i;

	guest_puts("vmms test guest reset: writing the reset port\n");
	outb(LAYOUT_PORT_RESET, 1);
	/* The reset may take effect only once the vCPU comes back to the worker; give it a
	 * few more exits before calling it a failure. */
	for (i = 0; i < 1000; i++)
		(void)inb(LAYOUT_PORT_COM1 + 5);
	guest_puts("FAIL reset: still running after writing the reset port\n");
	return 0;
}
