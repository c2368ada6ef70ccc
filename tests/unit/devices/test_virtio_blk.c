// SPDX-License-Identifier: GPL-2.0-only
/* virtio-blk end to end in process: the test is the driver, requests go to a temporary raw file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "devices/virtio/blk.h"
#include "hv/mem.h"
#include "tests/unit/support/fake_irq.h"
#include "tests/unit/support/virtio_driver.h"

#define QSZ 16
#define DESC 0x1000ULL
#define AVAIL 0x2000ULL
#define USED 0x3000ULL
#define HDR 0x4000ULL
#define STATUS 0x4100ULL
#define DATA 0x10000ULL
#define DISK_SIZE (1024 * 1024)

struct fx {
	struct gmem mem;
	struct fake_irq fi;
	struct virtio_blk *blk;
	int fd;
	uint16_t avail_idx;
	uint16_t used_seen;
};

#define WAIT_FOR(cond) VDRV_WAIT_FOR(cond, 2000)

static void blk_open(struct fx *f, bool ro)
{
	struct virtio_dev *v;

	f->blk = calloc(1, sizeof(*f->blk));
	assert_non_null(f->blk);
	assert_int_equal(virtio_blk_init(f->blk, &f->mem, &f->fi.irq, "vda", f->fd, ro, "vmms-serial-0123456789"), 0);
	v = &f->blk->vdev;
	assert_int_equal(virtio_dev_start(v), 0);
	vdrv_features(v, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_FLUSH) |
		     (ro ? 1ULL << VIRTIO_BLK_F_RO : (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES)));
	assert_true(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	vdrv_queue(v, 0, QSZ, DESC, AVAIL, USED);
	vdrv_ok(v);
}

static int setup(void **state)
{
	const struct gmem_layout l[] = { { 0, 0x200000 } };
	char path[] = "/tmp/vmms-test-blk-XXXXXX";
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t *pat = malloc(DISK_SIZE);

	assert_non_null(f);
	assert_non_null(pat);
	assert_int_equal(gmem_init_anon(&f->mem, l, 1), 0);
	fake_irq_init(&f->fi);
	f->fd = mkstemp(path);
	assert_true(f->fd >= 0);
	unlink(path);
	for (unsigned i = 0; i < DISK_SIZE; i++)
		pat[i] = (uint8_t)(i / 512 + i);
	assert_int_equal(pwrite(f->fd, pat, DISK_SIZE, 0), DISK_SIZE);
	free(pat);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->blk) {
		virtio_dev_destroy(&f->blk->vdev);
		free(f->blk);
	}
	close(f->fd);
	fake_irq_destroy(&f->fi);
	gmem_destroy(&f->mem);
	free(f);
	return 0;
}

/* One request: header, optional data (device-writable for reads), status. Returns the status
 * byte; *ret_used gets the used length. */
static uint8_t blk_req(struct fx *f, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
		       bool data_in, uint32_t *ret_used)
{
	struct virtio_blk_outhdr hdr = { .type = type, .sector = sector };
	uint8_t *status = gmem_ptr(&f->mem, STATUS, 1);
	unsigned n = 0;

	memcpy(gmem_ptr(&f->mem, HDR, sizeof(hdr)), &hdr, sizeof(hdr));
	*status = 0xee;
	vdrv_put_desc(&f->mem, DESC, n, HDR, sizeof(hdr), VRING_DESC_F_NEXT, (uint16_t)(n + 1));
	n++;
	if (len) {
		vdrv_put_desc(&f->mem, DESC, n, data, len, VRING_DESC_F_NEXT | (data_in ? VRING_DESC_F_WRITE : 0),
			 (uint16_t)(n + 1));
		n++;
	}
	vdrv_put_desc(&f->mem, DESC, n, STATUS, 1, VRING_DESC_F_WRITE, 0);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	vdrv_write(&f->blk->vdev, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	f->used_seen++;
	WAIT_FOR(vdrv_used_idx(&f->mem, USED) == f->used_seen);
	if (ret_used)
		*ret_used = *(uint32_t *)gmem_ptr(&f->mem, USED + 4 + 8 * ((f->used_seen - 1) % QSZ) + 4, 4);
	return *status;
}

static void test_config(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *v;

	blk_open(f, false);
	v = &f->blk->vdev;
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_DEVCFG_OFF + offsetof(struct virtio_blk_config, capacity), 8),
			 DISK_SIZE / 512);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_DEVCFG_OFF + offsetof(struct virtio_blk_config, seg_max), 4), 254);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_DEVCFG_OFF + offsetof(struct virtio_blk_config, max_discard_seg), 4), 1);
	/* Past the end of config space reads as zero. */
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_DEVCFG_OFF + sizeof(struct virtio_blk_config) - 2, 4), 0);
}

static void test_read_write(void **state)
{
	struct fx *f = *state;
	uint8_t *g = gmem_ptr(&f->mem, DATA, 4096), buf[4096];
	uint32_t used;

	blk_open(f, false);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_IN, 8, DATA, 4096, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 4097);
	assert_int_equal(pread(f->fd, buf, 4096, 8 * 512), 4096);
	assert_memory_equal(g, buf, 4096);

	memset(g, 0x5a, 1024);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_OUT, 100, DATA, 1024, false, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(pread(f->fd, buf, 1024, 100 * 512), 1024);
	assert_memory_equal(g, buf, 1024);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	/* Last sector is fine, one past is not; nor is a huge sector that would wrap. */
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, DATA, 512, true, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, DATA, 1024, true, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_OUT, DISK_SIZE / 512, DATA, 512, false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_IN, UINT64_MAX, DATA, 512, true, NULL), VIRTIO_BLK_S_IOERR);
	/* Length not a sector multiple. */
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_OUT, 0, DATA, 100, false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_req(f, 0x77, 0, 0, 0, false, NULL), VIRTIO_BLK_S_UNSUPP);
	assert_false(f->blk->vdev.broken);
}

static void test_get_id(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	blk_open(f, false);
	memset(gmem_ptr(&f->mem, DATA, 32), 0, 32);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_GET_ID, 0, DATA, 32, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(gmem_ptr(&f->mem, DATA, 20), "vmms-serial-01234567", 20);
	assert_int_equal(*(uint8_t *)gmem_ptr(&f->mem, DATA + 20, 1), 0);
}

static void test_discard_write_zeroes(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_discard_write_zeroes seg = { .sector = 16, .num_sectors = 8, .flags = 0 };
	uint8_t buf[4096], zero[4096] = { 0 };

	blk_open(f, false);
	memcpy(gmem_ptr(&f->mem, DATA, sizeof(seg)), &seg, sizeof(seg));
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, sizeof(seg), false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(f->fd, buf, 4096, 16 * 512), 4096);
	assert_memory_equal(buf, zero, 4096);
	assert_int_equal(pread(f->fd, buf, 512, 24 * 512), 512);
	assert_memory_not_equal(buf, zero, 512); /* the next sector is untouched */

	seg.sector = 64;
	memcpy(gmem_ptr(&f->mem, DATA, sizeof(seg)), &seg, sizeof(seg));
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_DISCARD, 0, DATA, sizeof(seg), false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(f->fd, buf, 4096, 64 * 512), 4096);
	assert_memory_equal(buf, zero, 4096); /* punched hole */

	/* Beyond the disk, and unknown flags. */
	seg.sector = DISK_SIZE / 512 - 4;
	memcpy(gmem_ptr(&f->mem, DATA, sizeof(seg)), &seg, sizeof(seg));
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, sizeof(seg), false, NULL), VIRTIO_BLK_S_IOERR);
	seg.sector = 0;
	seg.flags = 2;
	memcpy(gmem_ptr(&f->mem, DATA, sizeof(seg)), &seg, sizeof(seg));
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_DISCARD, 0, DATA, sizeof(seg), false, NULL), VIRTIO_BLK_S_UNSUPP);
	struct stat st;
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, DISK_SIZE);
}

static void test_read_only(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_discard_write_zeroes seg = { .sector = 0, .num_sectors = 8 };
	uint8_t before[512], after[512];

	blk_open(f, true);
	assert_true(virtio_has_feature(&f->blk->vdev, VIRTIO_BLK_F_RO));
	assert_false(f->blk->vdev.host_features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_int_equal(pread(f->fd, before, 512, 0), 512);
	memset(gmem_ptr(&f->mem, DATA, 512), 0x11, 512);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_OUT, 0, DATA, 512, false, NULL), VIRTIO_BLK_S_IOERR);
	memcpy(gmem_ptr(&f->mem, DATA, sizeof(seg)), &seg, sizeof(seg));
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, sizeof(seg), false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(pread(f->fd, after, 512, 0), 512);
	assert_memory_equal(before, after, 512);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_IN, 0, DATA, 512, true, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem_ptr(&f->mem, DATA, 512), before, 512);
}

static void test_malformed_requests(void **state)
{
	struct fx *f = *state;

	blk_open(f, false);
	/* Short header: IOERR in the status byte. */
	vdrv_put_desc(&f->mem, DESC, 0, HDR, 8, VRING_DESC_F_NEXT, 1);
	vdrv_put_desc(&f->mem, DESC, 1, STATUS, 1, VRING_DESC_F_WRITE, 0);
	*(uint8_t *)gmem_ptr(&f->mem, STATUS, 1) = 0xee;
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	vdrv_write(&f->blk->vdev, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	WAIT_FOR(vdrv_used_idx(&f->mem, USED) == 1);
	assert_int_equal(*(uint8_t *)gmem_ptr(&f->mem, STATUS, 1), VIRTIO_BLK_S_IOERR);
	/* No writable segment: returned with length 0, nothing written. */
	vdrv_put_desc(&f->mem, DESC, 0, HDR, 16, 0, 0);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	vdrv_write(&f->blk->vdev, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	WAIT_FOR(vdrv_used_idx(&f->mem, USED) == 2);
	assert_int_equal(*(uint32_t *)gmem_ptr(&f->mem, USED + 4 + 8 + 4, 4), 0);
	/* A broken chain: NEEDS_RESET, and a reset brings the disk back. */
	vdrv_put_desc(&f->mem, DESC, 0, HDR, 16, VRING_DESC_F_NEXT, 0);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	vdrv_write(&f->blk->vdev, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	WAIT_FOR(vdrv_read(&f->blk->vdev, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(f->blk->vdev.last_error, VQ_E_LOOP);
	vdrv_write(&f->blk->vdev, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	memset(gmem_ptr(&f->mem, AVAIL, 0x2000), 0, 0x2000); /* fresh rings */
	f->avail_idx = 0;
	f->used_seen = 0;
	vdrv_features(&f->blk->vdev, 1ULL << VIRTIO_F_VERSION_1);
	vdrv_queue(&f->blk->vdev, 0, QSZ, DESC, AVAIL, USED);
	vdrv_ok(&f->blk->vdev);
	assert_int_equal(blk_req(f, VIRTIO_BLK_T_IN, 0, DATA, 512, true, NULL), VIRTIO_BLK_S_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_config),
		T(test_read_write),
		T(test_get_id),
		T(test_discard_write_zeroes),
		T(test_read_only),
		T(test_malformed_requests),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
