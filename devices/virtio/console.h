/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-console with a single port (no MULTIPORT): the guest's transmitq goes to a tx
 * callback (like the UART's), host input goes into the receiveq with virtio_console_receive().
 */
#ifndef VMMS_DEVICES_VIRTIO_CONSOLE_H
#define VMMS_DEVICES_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "devices/virtio/pci.h"

#define VIRTIO_CONSOLE_RX 0
#define VIRTIO_CONSOLE_TX 1

struct virtio_console {
	struct virtio_dev vdev; /* first */
	/* Guest output: called on the io thread (emergency writes: a vCPU thread), lock held. */
	void (*tx)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
	struct vq_chain chain;  /* scratch, used under vdev.lock */
};

/* 0 or -errno; torn down by virtio_dev_destroy(&con->vdev). */
int virtio_console_init(struct virtio_console *con, const struct gmem *mem, struct hv_irq *irq,
			const char *id, void (*tx)(void *opaque, const uint8_t *buf, size_t len), void *opaque);
/* Host input (main thread): copies as much of buf as the guest has receive buffers for.
 * Returns the bytes taken (0 when the guest has none posted or the driver is not ready). */
size_t virtio_console_receive(struct virtio_console *con, const uint8_t *buf, size_t len);

#endif
