// SPDX-License-Identifier: GPL-2.0-only
/* virtio-console, one port: transmitq to a callback, host input into the receiveq. */
#include "devices/virtio/console.h"

#include <endian.h>
#include <string.h>

#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include "lib/util.h"

static struct virtio_console *to_con(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_console, vdev);
}

static void con_queue_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_console *con = to_con(vdev);
	bool any = false;

	if (q != VIRTIO_CONSOLE_TX)
		return; /* new receive buffers: taken when the host has input */
	while (virtio_queue_pop(vdev, q, &con->chain) == 1) {
		for (unsigned i = 0; i < con->chain.nr_out; i++)
			if (con->tx)
				con->tx(con->opaque, con->chain.iov[i].iov_base, con->chain.iov[i].iov_len);
		vq_push(&vdev->queues[q].vq, con->chain.head, 0);
		any = true;
	}
	if (any)
		virtio_queue_interrupt(vdev, q);
}

static void con_config_read(struct virtio_dev *vdev, unsigned offset, void *data, unsigned len)
{
	struct virtio_console_config cfg = {
		.cols = htole16(80),
		.rows = htole16(25),
		.max_nr_ports = htole32(1),
	};

	memcpy(data, (uint8_t *)&cfg + offset, len);
}

static void con_config_write(struct virtio_dev *vdev, unsigned offset, const void *data, unsigned len)
{
	struct virtio_console *con = to_con(vdev);

	/* Emergency write: one character, usable before the queues are set up. */
	if (offset == offsetof(struct virtio_console_config, emerg_wr) && con->tx &&
	    virtio_has_feature(vdev, VIRTIO_CONSOLE_F_EMERG_WRITE))
		con->tx(con->opaque, data, 1);
}

static const struct virtio_dev_ops console_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.class_code = 0x078000,
	.features = (1ULL << VIRTIO_CONSOLE_F_SIZE) | (1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE),
	.nr_queues = 2,
	.queue_max = 128,
	.config_size = sizeof(struct virtio_console_config),
	.config_read = con_config_read,
	.config_write = con_config_write,
	.queue_notify = con_queue_notify,
};

int virtio_console_init(struct virtio_console *con, const struct gmem *mem, struct hv_irq *irq,
			const char *id, void (*tx)(void *opaque, const uint8_t *buf, size_t len), void *opaque)
{
	int r = virtio_dev_init(&con->vdev, &console_ops, mem, irq, id);

	if (r < 0)
		return r;
	con->tx = tx;
	con->opaque = opaque;
	return 0;
}

size_t virtio_console_receive(struct virtio_console *con, const uint8_t *buf, size_t len)
{
	struct virtio_dev *vdev = &con->vdev;
	size_t done = 0;

	pthread_mutex_lock(&vdev->lock);
	while (done < len && virtio_queue_pop(vdev, VIRTIO_CONSOLE_RX, &con->chain) == 1) {
		size_t n = vq_iov_write(con->chain.iov + con->chain.nr_out, con->chain.nr_in, 0,
					buf + done, len - done);

		vq_push(&vdev->queues[VIRTIO_CONSOLE_RX].vq, con->chain.head, (uint32_t)n);
		done += n;
	}
	if (done)
		virtio_queue_interrupt(vdev, VIRTIO_CONSOLE_RX);
	pthread_mutex_unlock(&vdev->lock);
	return done;
}
