// SPDX-License-Identifier: GPL-2.0-only
/* virtio-blk: request parsing (guest input), io_uring submission and completion. */
#include "devices/virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/virtio_ids.h>

#include "lib/util.h"

#define SECTOR 512u

struct blk_req {
	uint16_t head;
	uint8_t *status;           /* guest byte, checked writable at pop */
	uint32_t used_len;         /* bytes reported written on success (data + status) */
	int64_t expect;            /* io_uring result meaning success */
	unsigned nr;
	struct iovec iov[];        /* data segments */
};

static struct virtio_blk *to_blk(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_blk, vdev);
}

static void blk_complete(struct virtio_blk *blk, uint16_t head, uint8_t *status, uint8_t st, uint32_t len)
{
	*status = st;
	vq_push(&blk->vdev.queues[0].vq, head, len);
	blk->completed++;
}

/* Copies segments [from, from+n) of the chain, skipping `skip` bytes at the front and `trim` at
 * the back, into out. Returns the number of segments and their byte total in *ret_len. */
static unsigned iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t trim,
			  struct iovec *out, uint64_t *ret_len)
{
	uint64_t total = 0, want;
	unsigned nr = 0;

	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	want = total >= skip + trim ? total - skip - trim : 0;
	*ret_len = want;
	for (unsigned i = 0; i < n && want; i++) {
		size_t len = iov[i].iov_len;
		uint8_t *base = iov[i].iov_base;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		base += skip;
		len -= skip;
		skip = 0;
		if (len > want)
			len = want;
		out[nr++] = (struct iovec){ base, len };
		want -= len;
	}
	return nr;
}

/* Guest input: sector and length are bounded by the capacity without overflow. */
static bool blk_range_ok(const struct virtio_blk *blk, uint64_t sector, uint64_t len)
{
	return len % SECTOR == 0 && sector <= blk->capacity && len / SECTOR <= blk->capacity - sector;
}

static struct io_uring_sqe *blk_sqe(struct virtio_blk *blk)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&blk->ring);

	if (!sqe) {
		(void)io_uring_submit(&blk->ring);
		sqe = io_uring_get_sqe(&blk->ring);
	}
	return sqe;
}

static int blk_discard_zero(struct virtio_blk *blk, uint32_t type, const struct iovec *data, unsigned nr,
			    uint64_t len)
{
	struct virtio_blk_discard_write_zeroes seg;
	int mode;

	/* One segment (max_discard_seg = max_write_zeroes_seg = 1). */
	if (len != sizeof(seg))
		return VIRTIO_BLK_S_UNSUPP;
	(void)vq_iov_read(data, nr, 0, &seg, sizeof(seg));
	uint64_t sector = le64toh(seg.sector);
	uint32_t num = le32toh(seg.num_sectors), flags = le32toh(seg.flags);

	if (type == VIRTIO_BLK_T_DISCARD ? flags != 0 : (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
		return VIRTIO_BLK_S_UNSUPP;
	if (num > VIRTIO_BLK_MAX_DISCARD_SECTORS || !blk_range_ok(blk, sector, (uint64_t)num * SECTOR))
		return VIRTIO_BLK_S_IOERR;
	if (num == 0)
		return VIRTIO_BLK_S_OK;
	mode = FALLOC_FL_KEEP_SIZE | (type == VIRTIO_BLK_T_DISCARD ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
	if (fallocate(blk->fd, mode, (off_t)(sector * SECTOR), (off_t)num * SECTOR) == 0)
		return VIRTIO_BLK_S_OK;
	/* Some file systems lack ZERO_RANGE; a punched hole reads back as zeroes too. */
	if (type == VIRTIO_BLK_T_WRITE_ZEROES &&
	    fallocate(blk->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, (off_t)(sector * SECTOR),
		      (off_t)num * SECTOR) == 0)
		return VIRTIO_BLK_S_OK;
	/* A discard that cannot be done is harmless; write-zeroes must not silently fail. */
	return type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

/* Parses one request (guest input) and either completes it at once or submits it. */
static void blk_request(struct virtio_blk *blk, const struct vq_chain *c)
{
	const struct iovec *in = c->iov + c->nr_out, *last;
	struct virtio_blk_outhdr hdr;
	struct io_uring_sqe *sqe;
	struct blk_req *req;
	uint8_t *status;
	uint64_t len;
	uint32_t type;
	uint8_t st;

	if (c->nr_in == 0) {
		/* Nowhere to put a status: hand the buffer back untouched. */
		vq_push(&blk->vdev.queues[0].vq, c->head, 0);
		blk->completed++;
		return;
	}
	last = &in[c->nr_in - 1];
	status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (c->out_len < sizeof(hdr)) {
		blk_complete(blk, c->head, status, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	(void)vq_iov_read(c->iov, c->nr_out, 0, &hdr, sizeof(hdr));
	type = le32toh(hdr.type);
	uint64_t sector = le64toh(hdr.sector);

	req = malloc(sizeof(*req) + sizeof(struct iovec) * (c->nr_out + c->nr_in));
	if (!req) {
		blk_complete(blk, c->head, status, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	*req = (struct blk_req){ .head = c->head, .status = status, .used_len = 1 };
	if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID)
		req->nr = iov_slice(in, c->nr_in, 0, 1, req->iov, &len);
	else
		req->nr = iov_slice(c->iov, c->nr_out, sizeof(hdr), 0, req->iov, &len);

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if ((type == VIRTIO_BLK_T_OUT && blk->read_only) || !blk_range_ok(blk, sector, len)) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (len == 0) {
			st = VIRTIO_BLK_S_OK;
			break;
		}
		sqe = blk_sqe(blk);
		if (!sqe) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (type == VIRTIO_BLK_T_IN) {
			io_uring_prep_readv(sqe, blk->fd, req->iov, req->nr, sector * SECTOR);
			req->used_len = (uint32_t)len + 1;
		} else {
			io_uring_prep_writev(sqe, blk->fd, req->iov, req->nr, sector * SECTOR);
		}
		req->expect = (int64_t)len;
		io_uring_sqe_set_data(sqe, req);
		blk->inflight++;
		return;
	case VIRTIO_BLK_T_FLUSH:
		sqe = blk_sqe(blk);
		if (!sqe) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		io_uring_prep_fsync(sqe, blk->fd, IORING_FSYNC_DATASYNC);
		req->expect = 0;
		io_uring_sqe_set_data(sqe, req);
		blk->inflight++;
		return;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = MIN(len, (uint64_t)VIRTIO_BLK_ID_BYTES);

		(void)vq_iov_write(req->iov, req->nr, 0, blk->serial, n);
		req->used_len = (uint32_t)n + 1;
		st = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st = blk->read_only ? VIRTIO_BLK_S_IOERR : (uint8_t)blk_discard_zero(blk, type, req->iov, req->nr, len);
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	blk_complete(blk, req->head, req->status, st, st == VIRTIO_BLK_S_OK ? req->used_len : 1);
	free(req);
}

/* Reaps finished I/O. deliver false (device reset): the queue is gone, only free. */
static void blk_reap(struct virtio_blk *blk, bool wait, bool deliver)
{
	struct io_uring_cqe *cqe;
	bool any = false;

	while (blk->inflight) {
		int r = wait ? io_uring_wait_cqe(&blk->ring, &cqe) : io_uring_peek_cqe(&blk->ring, &cqe);
		struct blk_req *req;

		if (r == -EINTR)
			continue;
		if (r < 0)
			break;
		req = io_uring_cqe_get_data(cqe);
		if (deliver) {
			bool ok = cqe->res == req->expect;

			blk_complete(blk, req->head, req->status, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR,
				     ok ? req->used_len : 1);
			any = true;
		}
		io_uring_cqe_seen(&blk->ring, cqe);
		free(req);
		blk->inflight--;
	}
	if (any)
		virtio_queue_interrupt(&blk->vdev, 0);
}

static void blk_completion_ready(struct virtio_dev *vdev, void *opaque)
{
	struct virtio_blk *blk = to_blk(vdev);
	uint64_t cnt;

	(void)!read(blk->ring_efd, &cnt, sizeof(cnt));
	blk_reap(blk, false, true);
}

static void blk_queue_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_blk *blk = to_blk(vdev);
	bool any = false;

	while (virtio_queue_pop(vdev, q, &blk->chain) == 1) {
		blk_request(blk, &blk->chain);
		any = true;
	}
	if (any) {
		(void)io_uring_submit(&blk->ring);
		virtio_queue_interrupt(vdev, q); /* for requests completed without I/O */
	}
}

static void blk_config_read(struct virtio_dev *vdev, unsigned offset, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&to_blk(vdev)->cfg + offset, len);
}

static void blk_reset(struct virtio_dev *vdev)
{
	/* Wait for the kernel to finish with guest buffers; nothing is reported any more. */
	(void)io_uring_submit(&to_blk(vdev)->ring);
	blk_reap(to_blk(vdev), true, false);
}

static void blk_quiesce(struct virtio_dev *vdev)
{
	(void)io_uring_submit(&to_blk(vdev)->ring);
	blk_reap(to_blk(vdev), true, true);
}

static void blk_destroy(struct virtio_dev *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	if (blk->ring_ok) {
		blk_reap(blk, true, false);
		io_uring_queue_exit(&blk->ring);
		blk->ring_ok = false;
	}
	if (blk->ring_efd >= 0)
		close(blk->ring_efd);
	blk->ring_efd = -1;
}

#define BLK_FEATURES ((1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) | \
		      (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH))

static const struct virtio_dev_ops blk_ops_rw = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.class_code = 0x018000,
	.features = BLK_FEATURES | (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES),
	.nr_queues = 1,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_blk_config),
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.quiesce = blk_quiesce,
	.destroy = blk_destroy,
};

static const struct virtio_dev_ops blk_ops_ro = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.class_code = 0x018000,
	.features = BLK_FEATURES | (1ULL << VIRTIO_BLK_F_RO),
	.nr_queues = 1,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_blk_config),
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.quiesce = blk_quiesce,
	.destroy = blk_destroy,
};

static int blk_size(int fd, uint64_t *ret)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, ret) < 0 ? -errno : 0;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*ret = (uint64_t)st.st_size;
	return 0;
}

int virtio_blk_init(struct virtio_blk *blk, const struct gmem *mem, struct hv_irq *irq, const char *id,
		    int fd, bool read_only, const char *serial)
{
	struct virtio_blk_config *cfg = &blk->cfg;
	uint64_t size;
	int r;

	r = blk_size(fd, &size);
	if (r < 0)
		return r;
	r = virtio_dev_init(&blk->vdev, read_only ? &blk_ops_ro : &blk_ops_rw, mem, irq, id);
	if (r < 0)
		return r;
	blk->fd = fd;
	blk->read_only = read_only;
	blk->capacity = size / SECTOR;
	blk->inflight = 0;
	blk->completed = 0;
	blk->ring_ok = false;
	memset(blk->serial, 0, sizeof(blk->serial));
	if (serial)
		memcpy(blk->serial, serial, MIN(strlen(serial), sizeof(blk->serial)));

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = htole64(blk->capacity);
	cfg->size_max = htole32(VIRTIO_BLK_SIZE_MAX);
	/* Two descriptors go to the header and the status byte (as QEMU does). */
	cfg->seg_max = htole32(VIRTIO_BLK_QUEUE_SIZE - 2);
	cfg->blk_size = htole32(SECTOR);
	cfg->num_queues = htole16(1);
	cfg->max_discard_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
	cfg->max_discard_seg = htole32(1);
	cfg->discard_sector_alignment = htole32(1);
	cfg->max_write_zeroes_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
	cfg->max_write_zeroes_seg = htole32(1);
	cfg->write_zeroes_may_unmap = 1;

	blk->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (blk->ring_efd < 0) {
		r = -errno;
		goto fail;
	}
	r = io_uring_queue_init(VIRTIO_BLK_QUEUE_SIZE, &blk->ring, 0);
	if (r < 0)
		goto fail;
	blk->ring_ok = true;
	r = io_uring_register_eventfd(&blk->ring, blk->ring_efd);
	if (r < 0)
		goto fail;
	r = virtio_dev_watch(&blk->vdev, blk->ring_efd, blk_completion_ready, NULL);
	if (r < 0)
		goto fail;
	return 0;

fail:
	virtio_dev_destroy(&blk->vdev);
	return r;
}
