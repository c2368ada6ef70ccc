// SPDX-License-Identifier: GPL-2.0-only
/* Test guest for virtio-rng: two 64-byte requests must be filled, non-zero and different. */
#include "tests/guests/libguest.h"
#include "tests/guests/libvirtio.h"

#define T "virtio-rng"
#define QUEUE_BASE 0x200000ULL
#define BUF_BASE   0x300000ULL
#define BLOCK 64
#define MAX_REQUESTS 32

int main(void)
{
	struct vpci_dev dev;
	struct vq q;
	uint8_t a[BLOCK], b[BLOCK];
	uint8_t *buf = (uint8_t *)(uintptr_t)BUF_BASE;
	uint32_t got[2] = { 0, 0 };
	unsigned int blk, i, reqs = 0, zero_a = 1, zero_b = 1;

	guest_puts("vmms test guest virtio-rng\n");
	if (vpci_open(&dev, 0x1044, T) < 0 || vpci_negotiate(&dev, 0, T) < 0 ||
	    vq_setup(&q, &dev, 0, QUEUE_BASE, 8, T) < 0 || vpci_driver_ok(&dev, T) < 0)
		goto out;
	guest_pass(T "-init");
	for (blk = 0; blk < 2; blk++) {
		uint8_t *dst = blk ? b : a;

		/* The device may return fewer bytes than asked; ask again for the rest. */
		while (got[blk] < BLOCK && reqs < MAX_REQUESTS) {
			uint32_t want = BLOCK - got[blk], len = 0;
			struct vq_buf vb = { .addr = BUF_BASE, .len = want, .device_writes = 1 };

			memset(buf, 0, BLOCK);
			reqs++;
			if (vq_run(&q, &vb, 1, &len, T) < 0)
				goto out;
			memcpy(dst + got[blk], buf, len);
			got[blk] += len;
		}
	}
	if (!guest_check(got[0] == BLOCK && got[1] == BLOCK, T "-fill",
			 "got %u and %u bytes in %u requests", got[0], got[1], reqs))
		goto out;
	for (i = 0; i < BLOCK; i++) {
		zero_a &= a[i] == 0;
		zero_b &= b[i] == 0;
	}
	guest_check(!zero_a && !zero_b, T "-nonzero", "a block of 64 bytes is all zero");
	guest_check(memcmp(a, b, BLOCK) != 0, T "-differ", "two 64-byte blocks are equal");
	guest_printf("INFO " T ": %u requests, first bytes %02x%02x%02x%02x\n", reqs, a[0], a[1],
		     a[2], a[3]);
	if (vpci_reset(&dev, T "-reset") == 0)
		guest_pass(T "-reset");
out:
	guest_printf("DONE virtio-rng failures=%u\n", guest_failures());
	return 0;
}
