/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A minimal modern virtio-pci driver for the test guests: find the device, walk its vendor
 * capabilities, negotiate features, set up split virtqueues by polling (no interrupts, no
 * MSI-X vectors), and run one descriptor chain at a time.
 */
#ifndef VMMS_TESTS_GUESTS_LIBVIRTIO_H
#define VMMS_TESTS_GUESTS_LIBVIRTIO_H

#include <stdint.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#define VIRTIO_PCI_VENDOR 0x1af4

/* One modern virtio-pci function: guest-physical MMIO addresses of its config structures. */
struct vpci_dev {
	unsigned int pci_dev, pci_fn;
	uint64_t common;      /* struct virtio_pci_common_cfg */
	uint64_t notify;      /* notification area base */
	uint32_t notify_mult; /* notify_off_multiplier */
	uint64_t isr;         /* ISR status byte */
	uint64_t device;      /* device-specific config, 0 if the device has none */
	uint32_t device_len;
	uint64_t features;    /* negotiated feature bits */
};

/* One split virtqueue driven by polling the used ring. */
struct vq {
	struct vpci_dev *dev;
	unsigned int index, size;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t notify_addr;
	uint16_t avail_idx, used_idx;
};

/* One buffer of a descriptor chain; device_writes marks a buffer the device fills. */
struct vq_buf {
	uint64_t addr;
	uint32_t len;
	int device_writes;
};

/* Each function below reports its own failure as "FAIL <tname>: why" and returns -1. */
int vpci_open(struct vpci_dev *d, uint16_t device_id, const char *tname);
/* Reset, ACKNOWLEDGE, DRIVER, offer want (VERSION_1 always), FEATURES_OK and its check. */
int vpci_negotiate(struct vpci_dev *d, uint64_t want, const char *tname);
int vpci_driver_ok(struct vpci_dev *d, const char *tname);
/* Writes 0 to device_status and waits (bounded) until it reads back 0. */
int vpci_reset(struct vpci_dev *d, const char *tname);
uint8_t vpci_status(struct vpci_dev *d);
/* Reads a 32-bit word of device config, retrying while config_generation changes. */
uint32_t vpci_cfg_read32(struct vpci_dev *d, unsigned int off);

/* Sets up queue index with at most max_size entries in guest memory at base (12 KiB). */
int vq_setup(struct vq *q, struct vpci_dev *d, unsigned int index, uint64_t base,
	     unsigned int max_size, const char *tname);
/* Posts one chain, notifies, polls (bounded) for its completion; ret_len: bytes written. */
int vq_run(struct vq *q, const struct vq_buf *bufs, unsigned int n, uint32_t *ret_len,
	   const char *tname);

#endif
