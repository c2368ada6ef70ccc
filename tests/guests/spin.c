// SPDX-License-Identifier: GPL-2.0-only
/* Test guest that never ends: a banner, then a numbered line on COM1 every few million
 * iterations, so a host test sees whether the vCPU runs (pause, resume, reset, stop). */
#include "tests/guests/libguest.h"

/* About 10-40 ms of ring-3 work per line: lines come often enough for a test to see
 * progress within a second, rarely enough to cost little host time in port exits. */
#define SPIN_ITERS 20000000UL

int main(void)
{
	unsigned long n;

	guest_puts("vmms test guest spin: started\n");
	for (n = 0;; n++) {
		volatile unsigned long i;

		for (i = 0; i < SPIN_ITERS; i++)
			;
		guest_printf("spin %lu\n", n);
	}
	return 0;
}
