// SPDX-License-Identifier: GPL-2.0-only
/* virtio-rng: one request queue, each writable buffer filled from the host's getrandom(). */
#include "devices/virtio/rng.h"

#include <errno.h>
#include <sys/random.h>

#include <linux/virtio_ids.h>

#include "lib/util.h"

/* Bytes handed out per request at most: a guest cannot make us spin on one huge buffer. */
#define RNG_MAX_PER_REQUEST (64 * 1024)

static size_t rng_fill(const struct iovec *iov, unsigned nr)
{
	size_t done = 0;

	for (unsigned i = 0; i < nr && done < RNG_MAX_PER_REQUEST; i++) {
		size_t want = MIN(iov[i].iov_len, RNG_MAX_PER_REQUEST - done), got = 0;

		while (got < want) {
			ssize_t n = getrandom((uint8_t *)iov[i].iov_base + got, want - got, 0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				return done + got;
			}
			got += (size_t)n;
		}
		done += got;
	}
	return done;
}

static void rng_queue_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_rng *rng = container_of(vdev, struct virtio_rng, vdev);
	bool any = false;

	while (virtio_queue_pop(vdev, q, &rng->chain) == 1) {
		size_t n = rng_fill(rng->chain.iov + rng->chain.nr_out, rng->chain.nr_in);

		vq_push(&vdev->queues[q].vq, rng->chain.head, (uint32_t)n);
		any = true;
	}
	if (any)
		virtio_queue_interrupt(vdev, q);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.class_code = 0x00ff00,
	.nr_queues = 1,
	.queue_max = 64,
	.queue_notify = rng_queue_notify,
};

int virtio_rng_init(struct virtio_rng *rng, const struct gmem *mem, struct hv_irq *irq, const char *id)
{
	return virtio_dev_init(&rng->vdev, &rng_ops, mem, irq, id);
}
