/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-blk over a raw image file descriptor: reads, writes and flushes through io_uring,
 * discard and write-zeroes with fallocate, GET_ID, read-only disks. Requests are parsed and
 * completed on the device's io thread.
 */
#ifndef VMMS_DEVICES_VIRTIO_BLK_H
#define VMMS_DEVICES_VIRTIO_BLK_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_blk.h>

#include "devices/virtio/pci.h"

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SIZE_MAX (1u << 20)   /* largest segment the guest should send */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1u << 22)

struct virtio_blk {
	struct virtio_dev vdev;            /* first */
	int fd;                            /* the image; owned by the caller */
	bool read_only;
	uint64_t capacity;                 /* 512-byte sectors */
	char serial[VIRTIO_BLK_ID_BYTES];  /* zero padded, not terminated when 20 long */
	struct virtio_blk_config cfg;      /* little-endian, as the guest reads it */
	struct io_uring ring;
	bool ring_ok;
	int ring_efd;                      /* io_uring completion eventfd, watched by the io thread */
	unsigned inflight;
	struct vq_chain chain;             /* scratch for the io thread */
	uint64_t completed;                /* requests completed, for tests */
};

/* Sets the device up over fd (regular file or block device); serial may be NULL. The caller
 * plugs &blk->vdev.pci into the PCI host and starts it with virtio_dev_start(). Torn down by
 * virtio_dev_destroy(&blk->vdev). 0 or -errno. */
int virtio_blk_init(struct virtio_blk *blk, const struct gmem *mem, struct hv_irq *irq, const char *id,
		    int fd, bool read_only, const char *serial);

#endif
