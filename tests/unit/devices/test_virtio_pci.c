// SPDX-License-Identifier: GPL-2.0-only
/* virtio-pci transport: capabilities, feature negotiation, queue setup, reset, MSI-X, NEEDS_RESET,
 * with virtio-rng and virtio-console as the devices behind it. The test acts as the driver. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "devices/bus.h"
#include "devices/pci.h"
#include "devices/virtio/console.h"
#include "devices/virtio/rng.h"
#include "hv/mem.h"
#include "tests/unit/support/fake_irq.h"
#include "tests/unit/support/virtio_driver.h"

#define QSZ 16
#define DESC 0x1000ULL
#define AVAIL 0x2000ULL
#define USED 0x3000ULL
#define DATA 0x8000ULL

struct fx {
	struct gmem mem;
	struct fake_irq fi;
	struct virtio_rng rng;
	uint16_t avail_idx;
};

static void msix_w32(struct virtio_dev *v, uint64_t off, uint32_t val)
{
	v->pci.bars[VIRTIO_MSIX_BAR].ops->write(v->pci.bars[VIRTIO_MSIX_BAR].opaque, off, &val, 4);
}

static uint64_t msix_r64(struct virtio_dev *v, uint64_t off)
{
	uint64_t val = 0;

	v->pci.bars[VIRTIO_MSIX_BAR].ops->read(v->pci.bars[VIRTIO_MSIX_BAR].opaque, off, &val, 8);
	return val;
}

/* What pci.c does for a guest config write: store under the mask, then tell the device. */
static void cfg_w16(struct virtio_dev *v, unsigned off, uint16_t val)
{
	memcpy(v->pci.cfg + off, &val, 2);
	v->pci.ops->cfg_write(&v->pci, off, 2);
}

#define WAIT_FOR(cond) VDRV_WAIT_FOR(cond, 2000)

static uint64_t efd_count(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

/* Waits (up to 2 s) for an interrupt eventfd to be signalled; returns its count. */
static uint64_t efd_wait(int fd)
{
	uint64_t n = 0;

	for (int i = 0; i < 2000 && !n; i++) {
		n = efd_count(fd);
		if (!n)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return n;
}

static int setup(void **state)
{
	const struct gmem_layout l[] = { { 0, 0x100000 } };
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gmem_init_anon(&f->mem, l, 1), 0);
	fake_irq_init(&f->fi);
	assert_int_equal(virtio_rng_init(&f->rng, &f->mem, &f->fi.irq, "rng0"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_dev_destroy(&f->rng.vdev);
	fake_irq_destroy(&f->fi);
	gmem_destroy(&f->mem);
	free(f);
	return 0;
}

static void test_pci_identity_and_caps(void **state)
{
	struct fx *f = *state;
	struct pci_dev *p = &f->rng.vdev.pci;
	unsigned seen = 0, off;
	uint16_t v16;
	uint32_t v32;

	memcpy(&v16, p->cfg + 0, 2);
	assert_int_equal(v16, 0x1af4);
	memcpy(&v16, p->cfg + 2, 2);
	assert_int_equal(v16, 0x1044);
	assert_int_equal(p->cfg[8], 1); /* revision 1: modern only */
	assert_true(p->bars[VIRTIO_PCI_BAR].mem64);
	assert_int_equal(p->bars[VIRTIO_PCI_BAR].size, VIRTIO_PCI_BAR_SIZE);
	for (off = p->cfg[0x34]; off; off = p->cfg[off + 1]) {
		if (p->cfg[off] == 0x09) {
			uint8_t type = p->cfg[off + 3];

			assert_int_equal(p->cfg[off + 4], VIRTIO_PCI_BAR);
			memcpy(&v32, p->cfg + off + 8, 4);
			if (type == VIRTIO_PCI_CAP_COMMON_CFG)
				assert_int_equal(v32, VIRTIO_PCI_COMMON_OFF);
			if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
				assert_int_equal(v32, VIRTIO_PCI_NOTIFY_OFF);
				memcpy(&v32, p->cfg + off + 16, 4);
				assert_int_equal(v32, 4);
			}
			if (type == VIRTIO_PCI_CAP_ISR_CFG)
				assert_int_equal(v32, VIRTIO_PCI_ISR_OFF);
			seen |= 1u << type;
		} else if (p->cfg[off] == 0x11) {
			memcpy(&v16, p->cfg + off + 2, 2);
			assert_int_equal(v16 & 0x7ff, 1); /* 2 vectors: config + one queue */
			seen |= 1u << 16;
		}
	}
	/* rng has no device config: common, notify, ISR and MSI-X. */
	assert_int_equal(seen, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 16));
}

static void test_feature_negotiation(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *v = &f->rng.vdev;

	vdrv_write(v, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_DF, 4) & 1, 1); /* VERSION_1 */
	vdrv_write(v, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	assert_true(vdrv_read(v, VIRTIO_PCI_COMMON_DF, 4) & (1u << VIRTIO_RING_F_EVENT_IDX));
	vdrv_write(v, VIRTIO_PCI_COMMON_DFSELECT, 7, 4);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_DF, 4), 0);

	/* No VERSION_1: FEATURES_OK does not stick. */
	vdrv_features(v, 1ULL << VIRTIO_RING_F_EVENT_IDX);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* A feature we do not offer: refused too. */
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	vdrv_features(v, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << 5));
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK, 0);

	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK,
			 VIRTIO_CONFIG_S_FEATURES_OK);
	assert_true(virtio_has_feature(v, VIRTIO_F_VERSION_1));
	/* Frozen after FEATURES_OK. */
	vdrv_write(v, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_GF, 1u << VIRTIO_RING_F_EVENT_IDX, 4);
	assert_false(virtio_has_feature(v, VIRTIO_RING_F_EVENT_IDX));
	/* DRIVER_OK without FEATURES_OK is not taken. */
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DRIVER, 1);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_CONFIG_S_DRIVER);
}

static void test_queue_setup_and_reset(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *v = &f->rng.vdev;

	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_NUMQ, 2), 1);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0); /* no such queue */
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_SIZE, 8, 2);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	vdrv_queue(v, 0, QSZ, DESC, AVAIL, USED);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_SIZE, 2), QSZ);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_DESCLO, 8), DESC);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
	assert_true(v->queues[0].vq.ready);
	/* Address writes after enable are ignored. */
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_DESCLO, 0x5000, 4);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_DESCLO, 4), DESC);
	/* MSI-X vector beyond the table reads back as NO_VECTOR. */
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_MSIX, 9, 2);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_NO_VECTOR);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
	vdrv_ok(v);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_DRIVER_OK);

	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_NO_VECTOR);
	assert_false(v->queues[0].vq.ready);
	assert_int_equal(v->guest_features, 0);
}

static void test_bad_queue_enable_needs_reset(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *v = &f->rng.vdev;

	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	vdrv_queue(v, 0, 12, DESC, AVAIL, USED); /* not a power of two */
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_true(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	vdrv_queue(v, 0, QSZ, 0xfff80, AVAIL, USED); /* table runs past the end of guest RAM */
	assert_true(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Drives rng with MSI-X: a good request completes with an interrupt, a malformed one puts the
 * device in NEEDS_RESET and raises the config vector. */
static void test_rng_msix_and_needs_reset(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *v = &f->rng.vdev;
	uint8_t *buf = gmem_ptr(&f->mem, DATA, 64), zero[64] = { 0 };
	uint64_t addr;
	uint32_t data;
	unsigned gsi;

	assert_int_equal(virtio_dev_start(v), 0);
	/* MSI-X: vector 0 config, vector 1 queue. */
	for (unsigned i = 0; i < 2; i++) {
		msix_w32(v, 16 * i, 0xfee00000);
		msix_w32(v, 16 * i + 4, 0);
		msix_w32(v, 16 * i + 8, 0x40 + i);
		msix_w32(v, 16 * i + 12, 0); /* unmask */
	}
	cfg_w16(v, (unsigned)v->msix_cap + 2, 0x8000);
	assert_int_equal(fake_irq_msi_count(&f->fi), 2);
	gsi = (unsigned)v->vectors[1].gsi;
	assert_int_equal(fake_irq_msi_route(&f->fi, gsi, &addr, &data), 0);
	assert_int_equal(addr, 0xfee00000);
	assert_int_equal(data, 0x41);
	assert_int_equal(fake_irq_irqfd_for(&f->fi, gsi), v->vectors[1].fd);

	vdrv_features(v, (1ULL << VIRTIO_F_VERSION_1));
	vdrv_write(v, VIRTIO_PCI_COMMON_MSIX, 0, 2);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
	vdrv_queue(v, 0, QSZ, DESC, AVAIL, USED);
	vdrv_ok(v);

	vdrv_put_desc(&f->mem, DESC, 0, DATA, 64, VRING_DESC_F_WRITE, 0);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	vdrv_write(v, VIRTIO_PCI_NOTIFY_OFF, 0, 2); /* kick through the BAR (no ioeventfd here) */
	WAIT_FOR(vdrv_used_idx(&f->mem, USED) == 1);
	assert_int_equal(*(uint32_t *)gmem_ptr(&f->mem, USED + 8, 4), 64);
	assert_memory_not_equal(buf, zero, 64);
	assert_int_equal(efd_wait(v->vectors[1].fd), 1);

	/* Masked vector: pending bit instead of an interrupt, delivered on unmask. */
	msix_w32(v, 16 + 12, 1);
	assert_int_equal(fake_irq_irqfd_for(&f->fi, gsi), -1);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	vdrv_write(v, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	WAIT_FOR(vdrv_used_idx(&f->mem, USED) == 2);
	WAIT_FOR(msix_r64(v, VIRTIO_MSIX_PBA_OFF) == 2);
	assert_int_equal(efd_count(v->vectors[1].fd), 0);
	msix_w32(v, 16 + 12, 0);
	assert_int_equal(msix_r64(v, VIRTIO_MSIX_PBA_OFF), 0);
	assert_int_equal(efd_count(v->vectors[1].fd), 1);

	/* Malformed: next index out of range. */
	vdrv_put_desc(&f->mem, DESC, 1, DATA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 99);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 1);
	vdrv_write(v, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	WAIT_FOR(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(v->last_error, VQ_E_INDEX);
	assert_int_equal(efd_wait(v->vectors[0].fd), 1); /* config change interrupt */
	assert_int_equal(vdrv_used_idx(&f->mem, USED), 2);
	/* Further kicks are ignored until reset. */
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	vdrv_write(v, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	usleep(20000);
	assert_int_equal(vdrv_used_idx(&f->mem, USED), 2);
	/* Reset brings the device back. */
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	assert_false(v->broken);
}

static void test_intx_when_msix_off(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *v = &f->rng.vdev;

	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	vdrv_queue(v, 0, QSZ, DESC, AVAIL, USED);
	vdrv_ok(v);
	vdrv_put_desc(&f->mem, DESC, 0, DATA, 8, VRING_DESC_F_WRITE, 0);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	pthread_mutex_lock(&v->lock);
	v->ops->queue_notify(v, 0); /* as the io thread would */
	pthread_mutex_unlock(&v->lock);
	assert_int_equal(vdrv_used_idx(&f->mem, USED), 1);
	assert_true(v->intx_level);
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_ISR_OFF, 1), 1);
	assert_false(v->intx_level); /* read acknowledges */
	assert_int_equal(vdrv_read(v, VIRTIO_PCI_ISR_OFF, 1), 0);
}

/* With a real PCI host: the BAR gets an address and enabled queues get ioeventfds there. */
static void test_ioeventfd_follows_bar(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *v = &f->rng.vdev;
	struct bus pio, mmio;
	struct pci_host host;
	struct fake_irq_ioeventfd ev;
	uint64_t notify;

	assert_int_equal(bus_init(&pio, "pio"), 0);
	assert_int_equal(bus_init(&mmio, "mmio"), 0);
	assert_int_equal(pci_host_init(&host, &pio, &mmio, 0xe0000000, 0xc0000000, 0x20000000, 0xc000, 0x4000), 0);
	assert_int_equal(pci_host_add(&host, &v->pci, -1), 0);
	assert_true(v->bar_enabled);
	assert_int_not_equal(v->bar_addr, 0);
	notify = v->bar_addr + VIRTIO_PCI_NOTIFY_OFF;

	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	assert_false(fake_irq_ioeventfd_at(&f->fi, notify, false, &ev));
	vdrv_queue(v, 0, QSZ, DESC, AVAIL, USED);
	assert_true(fake_irq_ioeventfd_at(&f->fi, notify, false, &ev));
	assert_int_equal(ev.fd, v->queues[0].kick_fd);

	/* The guest moves the BAR: the ioeventfd moves with it. */
	v->pci.ops->bar_update(&v->pci, VIRTIO_PCI_BAR, v->bar_addr + 0x100000, true);
	assert_false(fake_irq_ioeventfd_at(&f->fi, notify, false, &ev));
	assert_true(fake_irq_ioeventfd_at(&f->fi, notify + 0x100000, false, &ev));
	v->pci.ops->bar_update(&v->pci, VIRTIO_PCI_BAR, v->bar_addr, false);
	assert_int_equal(f->fi.nr_ioeventfds, 0);
	v->pci.ops->bar_update(&v->pci, VIRTIO_PCI_BAR, v->bar_addr, true);
	/* Reset drops it. */
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(f->fi.nr_ioeventfds, 0);
	pci_host_destroy(&host);
	bus_destroy(&mmio);
	bus_destroy(&pio);
}

static void test_pause_resume(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *v = &f->rng.vdev;

	assert_int_equal(virtio_dev_start(v), 0);
	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	vdrv_queue(v, 0, QSZ, DESC, AVAIL, USED);
	vdrv_ok(v);
	virtio_dev_pause(v);
	vdrv_put_desc(&f->mem, DESC, 0, DATA, 8, VRING_DESC_F_WRITE, 0);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &f->avail_idx, 0);
	vdrv_write(v, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	usleep(20000);
	assert_int_equal(vdrv_used_idx(&f->mem, USED), 0); /* guest memory untouched while paused */
	virtio_dev_resume(v);
	WAIT_FOR(vdrv_used_idx(&f->mem, USED) == 1);
}

struct con_out {
	char buf[64];
	size_t len;
};

static void con_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct con_out *o = opaque;

	if (o->len + len <= sizeof(o->buf)) {
		memcpy(o->buf + o->len, buf, len);
		o->len += len;
	}
}

static void test_console(void **state)
{
	struct fx *f = *state;
	struct virtio_console *con = calloc(1, sizeof(*con));
	struct con_out out = { .len = 0 };
	struct virtio_dev *v;
	uint16_t rx_idx = 0, tx_idx = 0;

	assert_non_null(con);
	assert_int_equal(virtio_console_init(con, &f->mem, &f->fi.irq, "hvc0", con_tx, &out), 0);
	v = &con->vdev;
	assert_int_equal(virtio_dev_start(v), 0);
	assert_int_equal(virtio_console_receive(con, (const uint8_t *)"x", 1), 0); /* not ready */
	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	vdrv_queue(v, 0, QSZ, DESC, AVAIL, USED);
	vdrv_queue(v, 1, QSZ, 0x4000, 0x5000, 0x6000);
	vdrv_ok(v);

	memcpy(gmem_ptr(&f->mem, DATA, 5), "hello", 5);
	vdrv_put_desc(&f->mem, 0x4000, 0, DATA, 5, 0, 0);
	vdrv_add_avail(&f->mem, 0x5000, QSZ, &tx_idx, 0);
	vdrv_write(v, VIRTIO_PCI_NOTIFY_OFF + 4, 1, 2);
	WAIT_FOR(vdrv_used_idx(&f->mem, 0x6000) == 1);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.buf, "hello", 5);

	vdrv_put_desc(&f->mem, DESC, 0, DATA + 0x100, 4, VRING_DESC_F_WRITE, 0);
	vdrv_add_avail(&f->mem, AVAIL, QSZ, &rx_idx, 0);
	assert_int_equal(virtio_console_receive(con, (const uint8_t *)"abcdef", 6), 4);
	assert_int_equal(vdrv_used_idx(&f->mem, USED), 1);
	assert_int_equal(*(uint32_t *)gmem_ptr(&f->mem, USED + 8, 4), 4);
	assert_memory_equal(gmem_ptr(&f->mem, DATA + 0x100, 4), "abcd", 4);
	assert_int_equal(virtio_console_receive(con, (const uint8_t *)"ef", 2), 0); /* no buffers */
	virtio_dev_destroy(v);
	free(con);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_pci_identity_and_caps),
		T(test_feature_negotiation),
		T(test_queue_setup_and_reset),
		T(test_bad_queue_enable_needs_reset),
		T(test_rng_msix_and_needs_reset),
		T(test_intx_when_msix_off),
		T(test_ioeventfd_follows_bar),
		T(test_pause_resume),
		T(test_console),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
