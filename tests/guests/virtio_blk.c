// SPDX-License-Identifier: GPL-2.0-only
/* Test guest for virtio-blk: a polling ring-3 driver reads, writes, flushes and asks for the ID. */
#include <linux/virtio_blk.h>

#include "tests/guests/libguest.h"
#include "tests/guests/libvirtio.h"

#define T "virtio-blk"
#define SECTOR 512
#define QUEUE_BASE  0x200000ULL
#define REQ_HDR     0x300000ULL
#define REQ_DATA    0x301000ULL
#define REQ_STATUS  0x302000ULL
#define WRITE_SECTOR 3

static const char pattern[] = "vmms-guest-wrote-sector-3";

static uint8_t *data(void)
{
	return (uint8_t *)(uintptr_t)REQ_DATA;
}

/* Runs one request; data_len 0 means no data buffer. Returns the status byte or -1. */
static int blk_request(struct vq *q, uint32_t type, uint64_t sector, uint32_t data_len,
		       int device_writes, uint32_t *ret_len, const char *tname)
{
	struct virtio_blk_outhdr *hdr = (struct virtio_blk_outhdr *)(uintptr_t)REQ_HDR;
	volatile uint8_t *status = (volatile uint8_t *)(uintptr_t)REQ_STATUS;
	struct vq_buf bufs[3];
	unsigned int n = 0;

	hdr->type = type;
	hdr->ioprio = 0;
	hdr->sector = sector;
	*status = 0xee; /* the device must overwrite it */
	bufs[n++] = (struct vq_buf){ .addr = REQ_HDR, .len = sizeof(*hdr), .device_writes = 0 };
	if (data_len)
		bufs[n++] = (struct vq_buf){ .addr = REQ_DATA, .len = data_len,
					     .device_writes = device_writes };
	bufs[n++] = (struct vq_buf){ .addr = REQ_STATUS, .len = 1, .device_writes = 1 };
	if (vq_run(q, bufs, n, ret_len, tname) < 0)
		return -1;
	return *status;
}

static int read_sector(struct vq *q, uint64_t sector)
{
	uint32_t len = 0, sum = 0;
	unsigned int i;
	int st;

	memset(data(), 0xcc, SECTOR);
	st = blk_request(q, VIRTIO_BLK_T_IN, sector, SECTOR, 1, &len, T "-read");
	if (st < 0)
		return -1;
	if (st != VIRTIO_BLK_S_OK) {
		guest_fail(T "-read", "sector %lu: status %d", (unsigned long)sector, st);
		return -1;
	}
	for (i = 0; i < SECTOR; i++)
		sum += data()[i];
	guest_printf("DATA sector=%lu sum=%u len=%u head=", (unsigned long)sector, sum, len);
	for (i = 0; i < 16; i++)
		guest_printf("%02x", data()[i]);
	guest_putc('\n');
	return 0;
}

static void check_isr(struct vpci_dev *d)
{
	/* Our chains did not suppress notifications, so the device set the queue bit; reading
	 * the ISR acknowledges it and a second read sees it clear. */
	uint8_t first = mmio_read8(d->isr), second = mmio_read8(d->isr);

	guest_check((first & 1) && !(second & 1), T "-isr",
		    "ISR read 0x%02x then 0x%02x (want bit 0 set, then clear)", first, second);
}

static void write_and_verify(struct vq *q)
{
	uint32_t len = 0;
	unsigned int i;
	int st;

	for (i = 0; i < SECTOR; i++)
		data()[i] = (uint8_t)pattern[i % (sizeof(pattern) - 1)];
	st = blk_request(q, VIRTIO_BLK_T_OUT, WRITE_SECTOR, SECTOR, 0, &len, T "-write");
	if (st < 0)
		return;
	if (!guest_check(st == VIRTIO_BLK_S_OK, T "-write", "status %d", st))
		return;
	memset(data(), 0, SECTOR);
	st = blk_request(q, VIRTIO_BLK_T_IN, WRITE_SECTOR, SECTOR, 1, &len, T "-readback");
	if (st < 0)
		return;
	for (i = 0; i < SECTOR; i++) {
		if (data()[i] != (uint8_t)pattern[i % (sizeof(pattern) - 1)])
			break;
	}
	guest_check(st == VIRTIO_BLK_S_OK && i == SECTOR, T "-readback",
		    "status %d, first difference at byte %u", st, i);
}

static void flush(struct vq *q, struct vpci_dev *d)
{
	int st;

	if (!(d->features & (1ULL << VIRTIO_BLK_F_FLUSH))) {
		guest_puts("SKIP " T "-flush: VIRTIO_BLK_F_FLUSH not offered\n");
		return;
	}
	st = blk_request(q, VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL, T "-flush");
	if (st >= 0)
		guest_check(st == VIRTIO_BLK_S_OK, T "-flush", "status %d", st);
}

static void get_id(struct vq *q)
{
	char id[VIRTIO_BLK_ID_BYTES + 1];
	unsigned int i;
	int st;

	memset(data(), 0, VIRTIO_BLK_ID_BYTES);
	st = blk_request(q, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, 1, NULL, T "-id");
	if (st < 0)
		return;
	if (!guest_check(st == VIRTIO_BLK_S_OK, T "-id", "status %d", st))
		return;
	/* The serial is NUL-padded and not NUL-terminated when it is 20 bytes long. */
	for (i = 0; i < VIRTIO_BLK_ID_BYTES && data()[i]; i++)
		id[i] = (data()[i] >= 0x20 && data()[i] < 0x7f) ? (char)data()[i] : '?';
	id[i] = '\0';
	guest_printf("ID %s\n", id);
}

static uint64_t capacity(struct vpci_dev *d)
{
	uint64_t cap;

	if (!d->device || d->device_len < 8) {
		guest_fail(T "-capacity", "no device config (length %u)", d->device_len);
		return 0;
	}
	cap = vpci_cfg_read32(d, 0) | ((uint64_t)vpci_cfg_read32(d, 4) << 32);
	guest_printf("CAPACITY %lu\n", (unsigned long)cap);
	return cap;
}

/* Requests the device must refuse without harm: past the end, and an unknown type. */
static void bad_requests(struct vq *q, uint64_t cap)
{
	int st;

	st = blk_request(q, VIRTIO_BLK_T_IN, cap, SECTOR, 1, NULL, T "-past-end");
	if (st >= 0)
		guest_check(st == VIRTIO_BLK_S_IOERR, T "-past-end",
			    "read of sector %lu (capacity) gave status %d, want IOERR",
			    (unsigned long)cap, st);
	st = blk_request(q, 0x7777, 0, SECTOR, 1, NULL, T "-unsupported");
	if (st >= 0)
		guest_check(st == VIRTIO_BLK_S_UNSUPP, T "-unsupported",
			    "request type 0x7777 gave status %d, want UNSUPP", st);
}

int main(void)
{
	struct vpci_dev dev;
	struct vq q;
	uint64_t cap;

	guest_puts("vmms test guest virtio-blk\n");
	if (vpci_open(&dev, 0x1042, T) < 0 ||
	    vpci_negotiate(&dev, 1ULL << VIRTIO_BLK_F_FLUSH, T) < 0 ||
	    vq_setup(&q, &dev, 0, QUEUE_BASE, 8, T) < 0 || vpci_driver_ok(&dev, T) < 0)
		goto out;
	guest_pass(T "-init");
	cap = capacity(&dev);
	if (read_sector(&q, 0) == 0)
		check_isr(&dev);
	read_sector(&q, 7);
	write_and_verify(&q);
	flush(&q, &dev);
	get_id(&q);
	if (cap)
		bad_requests(&q, cap);
	if (vpci_reset(&dev, T "-reset") == 0)
		guest_pass(T "-reset");
out:
	guest_printf("DONE virtio-blk failures=%u\n", guest_failures());
	return 0;
}
