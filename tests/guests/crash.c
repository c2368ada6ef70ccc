// SPDX-License-Identifier: GPL-2.0-only
/* Test guest that crashes on purpose: ud2 with no IDT is a triple fault, the worker exits 4. */
#include "tests/guests/libguest.h"

int main(void)
{
	guest_puts("vmms test guest crash: executing ud2\n");
	__asm__ volatile("ud2");
	guest_puts("FAIL crash: still running after ud2\n");
	return 0;
}
