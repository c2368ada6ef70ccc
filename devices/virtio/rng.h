/* SPDX-License-Identifier: GPL-2.0-only */
/* virtio-rng: fills the guest's writable buffers with bytes from getrandom(). */
#ifndef VMMS_DEVICES_VIRTIO_RNG_H
#define VMMS_DEVICES_VIRTIO_RNG_H

#include "devices/virtio/pci.h"

struct virtio_rng {
	struct virtio_dev vdev; /* first */
	struct vq_chain chain;  /* scratch for the io thread */
};

/* 0 or -errno; torn down by virtio_dev_destroy(&rng->vdev). */
int virtio_rng_init(struct virtio_rng *rng, const struct gmem *mem, struct hv_irq *irq, const char *id);

#endif
