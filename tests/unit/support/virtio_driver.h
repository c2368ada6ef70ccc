/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A minimal virtio-pci driver for device unit tests: the test plays the guest, writing the
 * common config through the device's BAR and building split rings in guest memory.
 *
 * Usage:
 *	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
 *	vdrv_queue(v, 0, 16, DESC, AVAIL, USED);
 *	vdrv_ok(v);
 *	vdrv_put_desc(mem, DESC, 0, buf, len, VRING_DESC_F_WRITE, 0);
 *	vdrv_add_avail(mem, AVAIL, 16, &avail_idx, 0);
 *	vdrv_write(v, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
 *	VDRV_WAIT_FOR(vdrv_used_idx(mem, USED) == 1, 2000);
 */
#ifndef VMMS_TESTS_VIRTIO_DRIVER_H
#define VMMS_TESTS_VIRTIO_DRIVER_H

#include <stdint.h>
#include <time.h>

#include "devices/virtio/pci.h"
#include "hv/mem.h"

/* A guest access of len bytes at off in the device's virtio BAR. */
void vdrv_write(struct virtio_dev *v, uint64_t off, uint64_t val, unsigned len);
uint64_t vdrv_read(struct virtio_dev *v, uint64_t off, unsigned len);

/* ACKNOWLEDGE | DRIVER, write both driver feature words, then set FEATURES_OK (the test
 * checks whether it stuck). */
void vdrv_features(struct virtio_dev *v, uint64_t features);
/* Selects queue q, sets its size and ring addresses and enables it. */
void vdrv_queue(struct virtio_dev *v, unsigned q, uint16_t size, uint64_t desc, uint64_t avail,
		uint64_t used);
/* Sets DRIVER_OK on top of ACKNOWLEDGE | DRIVER | FEATURES_OK. */
void vdrv_ok(struct virtio_dev *v);

/* Writes descriptor i of the table at guest address table. */
void vdrv_put_desc(struct gmem *m, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		   uint16_t flags, uint16_t next);
/* Puts head in the next avail slot, then publishes *idx + 1 with release order. */
void vdrv_add_avail(struct gmem *m, uint64_t avail, uint16_t qsz, uint16_t *idx, uint16_t head);
/* The used ring's idx, read with acquire order. */
uint16_t vdrv_used_idx(struct gmem *m, uint64_t used);

/* Waits (up to ms milliseconds) for a device thread to make cond true, then asserts it
 * (cmocka must be included before this is used). */
#define VDRV_WAIT_FOR(cond, ms)                                                      \
	do {                                                                         \
		for (int _i = 0; _i < (ms) && !(cond); _i++)                          \
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);            \
		assert_true(cond);                                                   \
	} while (0)

#endif
