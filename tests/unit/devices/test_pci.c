// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the PCI host: 0xCF8/0xCFC, ECAM, header masks, BAR sizing and decode, capabilities, INTx. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/pci_regs.h>
#include <string.h>

#include "devices/pci.h"
#include "lib/util.h"
#include "tests/unit/support/fake_irq.h"

#define ECAM 0xe0000000ULL
#define MMIO 0xc0000000ULL
#define MMIO_SIZE 0x20000000ULL
#define PIO 0xc000u
#define PIO_SIZE 0x4000u
#define GSI 10

struct tdev {
	struct pci_dev pdev;
	struct pci_host *host;
	unsigned bar_updates;
	unsigned last_bar;
	uint64_t last_addr;
	bool last_enabled;
	unsigned cfg_writes, last_off, last_len;
	unsigned bar_reads, bar_writes;
	uint64_t last_bar_off;
	bool host_lock_free; /* host->lock was free inside the BAR op */
	uint8_t mem[0x4000];
};

struct fixture {
	struct bus pio, mmio;
	struct fake_irq fi;
	struct pci_host host;
	struct tdev dev, dev2;
};

static void tdev_bar_update(struct pci_dev *pdev, unsigned bar, uint64_t addr, bool enabled)
{
	struct tdev *t = container_of(pdev, struct tdev, pdev);

	t->bar_updates++;
	t->last_bar = bar;
	t->last_addr = addr;
	t->last_enabled = enabled;
}

static void tdev_cfg_write(struct pci_dev *pdev, unsigned offset, unsigned len)
{
	struct tdev *t = container_of(pdev, struct tdev, pdev);

	t->cfg_writes++;
	t->last_off = offset;
	t->last_len = len;
}

static const struct pci_dev_ops tdev_ops = {
	.cfg_write = tdev_cfg_write,
	.bar_update = tdev_bar_update,
};

static void tdev_check_lock(struct tdev *t)
{
	if (pthread_mutex_trylock(&t->host->lock) == 0) {
		t->host_lock_free = true;
		pthread_mutex_unlock(&t->host->lock);
	} else {
		t->host_lock_free = false;
	}
}

static void tdev_bar_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct tdev *t = opaque;

	tdev_check_lock(t);
	t->bar_reads++;
	t->last_bar_off = offset;
	if (offset < sizeof(t->mem) && len <= sizeof(t->mem) - offset)
		memcpy(data, &t->mem[offset], len);
}

static void tdev_bar_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct tdev *t = opaque;

	tdev_check_lock(t);
	t->bar_writes++;
	t->last_bar_off = offset;
	if (offset < sizeof(t->mem) && len <= sizeof(t->mem) - offset)
		memcpy(&t->mem[offset], data, len);
}

static const struct bus_ops tdev_bar_ops = { .read = tdev_bar_read, .write = tdev_bar_write };

/* A function with an I/O BAR0 (0x40), a 32-bit memory BAR1 (4 KiB) and a 64-bit BAR2/3 (16 KiB). */
static void tdev_setup(struct tdev *t, struct pci_host *host)
{
	memset(t, 0, sizeof(*t));
	t->host = host;
	pci_dev_init(&t->pdev, 0x1af4, 0x1041, 0x020000, 0x1af4, 0x0001, 1);
	t->pdev.ops = &tdev_ops;
	assert_int_equal(pci_dev_set_bar(&t->pdev, 0, 0x40, true, false, &tdev_bar_ops, t), 0);
	assert_int_equal(pci_dev_set_bar(&t->pdev, 1, 0x1000, false, false, &tdev_bar_ops, t), 0);
	assert_int_equal(pci_dev_set_bar(&t->pdev, 2, 0x4000, false, true, &tdev_bar_ops, t), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(bus_init(&f->pio, "pio"), 0);
	assert_int_equal(bus_init(&f->mmio, "mmio"), 0);
	fake_irq_init(&f->fi);
	assert_int_equal(pci_host_init(&f->host, &f->pio, &f->mmio, ECAM, MMIO, MMIO_SIZE, PIO, PIO_SIZE), 0);
	pci_host_set_irq(&f->host, &f->fi.irq, GSI);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pci_host_destroy(&f->host);
	/* Everything the host mapped is gone. */
	assert_int_equal(f->pio.nr, 0);
	assert_int_equal(f->mmio.nr, 0);
	bus_destroy(&f->pio);
	bus_destroy(&f->mmio);
	fake_irq_destroy(&f->fi);
	free(f);
	return 0;
}

static uint32_t conf_addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

/* Configuration mechanism #1 as a guest does it: latch the address, access 0xCFC + (reg & 3). */
static uint32_t cfg1_read(struct fixture *f, uint32_t addr, unsigned reg, unsigned len)
{
	uint32_t v = 0;

	assert_true(bus_write(&f->pio, 0xcf8, &addr, 4));
	(void)bus_read(&f->pio, 0xcfc + (reg & 3), &v, len);
	return v;
}

static void cfg1_write(struct fixture *f, uint32_t addr, unsigned reg, uint32_t v, unsigned len)
{
	assert_true(bus_write(&f->pio, 0xcf8, &addr, 4));
	(void)bus_write(&f->pio, 0xcfc + (reg & 3), &v, len);
}

static uint32_t cfg_read(struct fixture *f, unsigned slot, unsigned reg, unsigned len)
{
	return cfg1_read(f, conf_addr(0, slot, 0, reg), reg, len);
}

static void cfg_write(struct fixture *f, unsigned slot, unsigned reg, uint32_t v, unsigned len)
{
	cfg1_write(f, conf_addr(0, slot, 0, reg), reg, v, len);
}

static uint32_t ecam_read(struct fixture *f, uint64_t off, unsigned len)
{
	uint32_t v = 0;

	(void)bus_read(&f->mmio, ECAM + off, &v, len);
	return v;
}

static void ecam_write(struct fixture *f, uint64_t off, uint32_t v, unsigned len)
{
	(void)bus_write(&f->mmio, ECAM + off, &v, len);
}

static uint64_t ecam_off(unsigned slot, unsigned fn, unsigned reg)
{
	return (uint64_t)slot << 15 | fn << 12 | reg;
}

static void test_host_bridge_ids(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cfg_read(f, 0, PCI_VENDOR_ID, 4), 0x29c08086);
	assert_int_equal(cfg_read(f, 0, PCI_CLASS_REVISION, 4) >> 8, 0x060000);
	assert_int_equal(cfg_read(f, 0, PCI_HEADER_TYPE, 1), PCI_HEADER_TYPE_NORMAL);
	assert_int_equal(cfg_read(f, 0, PCI_INTERRUPT_PIN, 1), 0);
	assert_int_equal(ecam_read(f, ecam_off(0, 0, 0), 4), 0x29c08086);
	/* Byte and word accesses at 0xCFC + n. */
	assert_int_equal(cfg_read(f, 0, 1, 1), 0x80);
	assert_int_equal(cfg_read(f, 0, 2, 2), 0x29c0);
	assert_int_equal(cfg_read(f, 0, 3, 1), 0x29);
	assert_int_equal(cfg_read(f, 0, 1, 2), 0xc080);
}

static void test_conf_addr_register(void **state)
{
	struct fixture *f = *state;
	uint32_t v = 0x80000000u, r = 0;
	uint8_t b = 1;

	/* Linux's type-1 probe: byte to 0xCFB, dword write and read back of 0xCF8. */
	assert_true(bus_write(&f->pio, 0xcfb, &b, 1));
	assert_true(bus_write(&f->pio, 0xcf8, &v, 4));
	assert_true(bus_read(&f->pio, 0xcf8, &r, 4));
	assert_int_equal(r, 0x80000000u);
	/* Reserved bits 24-30 and the low two bits do not latch. */
	v = 0xff00ff03u;
	assert_true(bus_write(&f->pio, 0xcf8, &v, 4));
	assert_true(bus_read(&f->pio, 0xcf8, &r, 4));
	assert_int_equal(r, 0x8000ff00u);
	/* Narrow accesses to CONFIG_ADDRESS neither latch nor read it. */
	b = 0;
	assert_true(bus_write(&f->pio, 0xcf8, &b, 1));
	assert_true(bus_read(&f->pio, 0xcf8, &r, 4));
	assert_int_equal(r, 0x8000ff00u);
	assert_true(bus_read(&f->pio, 0xcf9, &b, 1));
	assert_int_equal(b, 0xff);
}

static void test_absent_functions_read_all_ones(void **state)
{
	struct fixture *f = *state;

	/* Enable bit clear. */
	assert_int_equal(cfg1_read(f, conf_addr(0, 0, 0, 0) & ~0x80000000u, 0, 4), 0xffffffff);
	/* Another bus, another function, an empty slot. */
	assert_int_equal(cfg1_read(f, conf_addr(1, 0, 0, 0), 0, 4), 0xffffffff);
	assert_int_equal(cfg1_read(f, conf_addr(0, 0, 1, 0), 0, 4), 0xffffffff);
	assert_int_equal(cfg_read(f, 5, 0, 4), 0xffffffff);
	assert_int_equal(cfg_read(f, 31, 0, 2), 0xffff);
	assert_int_equal(ecam_read(f, ecam_off(0, 3, 0), 4), 0xffffffff);
	assert_int_equal(ecam_read(f, ecam_off(7, 0, 0), 4), 0xffffffff);
	/* Writes to them go nowhere (and do not reach the bridge). */
	cfg1_write(f, conf_addr(0, 0, 1, PCI_COMMAND), PCI_COMMAND, 0x7, 2);
	cfg1_write(f, conf_addr(0, 0, 0, PCI_COMMAND) & ~0x80000000u, PCI_COMMAND, 0x7, 2);
	assert_int_equal(cfg_read(f, 0, PCI_COMMAND, 2), 0);
}

static void test_conf_data_odd_accesses(void **state)
{
	struct fixture *f = *state;
	uint32_t addr = conf_addr(0, 0, 0, 0), v;

	assert_true(bus_write(&f->pio, 0xcf8, &addr, 4));
	/* A dword at 0xCFD would cross the end of the dword: the bus range ends at 0xCFF, so the
	 * bus refuses it; a word at 0xCFF likewise. */
	v = 0;
	assert_false(bus_read(&f->pio, 0xcfd, &v, 4));
	assert_int_equal(v, 0xffffffff);
	assert_false(bus_read(&f->pio, 0xcff, &v, 2));
	/* A word at 0xCFB straddles address and data registers: all ones. */
	v = 0;
	assert_true(bus_read(&f->pio, 0xcfb, &v, 2));
	assert_int_equal(v, 0xffff);
	/* A 3-byte access within the data port: all ones. */
	v = 0;
	assert_true(bus_read(&f->pio, 0xcfc, &v, 3));
	assert_int_equal(v, 0xffffff);
	/* The latched register is a dword index: offsets >= 256 cannot be formed. */
	addr = 0x80000000u | 0xfc;
	assert_true(bus_write(&f->pio, 0xcf8, &addr, 4));
	assert_true(bus_read(&f->pio, 0xcf8, &v, 4));
	assert_int_equal(v, 0x800000fc);
	assert_int_equal(cfg1_read(f, addr, 0xfc, 4), 0); /* bridge's last dword, inside 256 */
}

static void test_ecam_bounds(void **state)
{
	struct fixture *f = *state;
	uint64_t v;

	/* Past the 1 MiB bus-0 window: nothing is mapped there. */
	v = 0;
	assert_false(bus_read(&f->mmio, ECAM + 0x100000, &v, 4));
	assert_int_equal((uint32_t)v, 0xffffffff);
	assert_false(bus_read(&f->mmio, ECAM + 0xffffe, &v, 4)); /* straddles the end */
	/* Straddling a function's 4 KiB, odd widths and 8-byte accesses: all ones. */
	assert_int_equal(ecam_read(f, ecam_off(0, 0, 0xffe), 4), 0xffffffff);
	assert_int_equal(ecam_read(f, ecam_off(0, 0, 0), 3), 0xffffff);
	v = 0;
	assert_true(bus_read(&f->mmio, ECAM, &v, 8));
	assert_true(v == UINT64_MAX);
	/* Extended config space of the bridge exists and reads 0. */
	assert_int_equal(ecam_read(f, ecam_off(0, 0, 0x100), 4), 0);
	assert_int_equal(ecam_read(f, ecam_off(0, 0, 0xffc), 4), 0);
	/* Unaligned but inside: byte-wise semantics. */
	assert_int_equal(ecam_read(f, ecam_off(0, 0, 1), 2), 0xc080);
	ecam_write(f, ecam_off(0, 0, 0), 0x12345678, 4);
	assert_int_equal(ecam_read(f, 0, 4), 0x29c08086);
}

static void test_readonly_and_writable_header(void **state)
{
	struct fixture *f = *state;

	tdev_setup(&f->dev, &f->host);
	assert_int_equal(pci_host_add(&f->host, &f->dev.pdev, 3), 0);
	assert_int_equal(f->dev.pdev.slot, 3);
	assert_int_equal(cfg_read(f, 3, PCI_VENDOR_ID, 4), 0x10411af4);
	cfg_write(f, 3, PCI_VENDOR_ID, 0, 4);
	assert_int_equal(cfg_read(f, 3, PCI_VENDOR_ID, 4), 0x10411af4);
	cfg_write(f, 3, PCI_CLASS_REVISION, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, 3, PCI_CLASS_REVISION, 4), 0x02000001);
	cfg_write(f, 3, PCI_HEADER_TYPE, 0xff, 1);
	assert_int_equal(cfg_read(f, 3, PCI_HEADER_TYPE, 1), 0);
	assert_int_equal(cfg_read(f, 3, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00011af4);
	cfg_write(f, 3, PCI_SUBSYSTEM_VENDOR_ID, 0, 4);
	assert_int_equal(cfg_read(f, 3, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00011af4);
	/* Interrupt line is writable, pin is not. */
	assert_int_equal(cfg_read(f, 3, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(cfg_read(f, 3, PCI_INTERRUPT_LINE, 1), GSI);
	cfg_write(f, 3, PCI_INTERRUPT_LINE, 0x0305, 2);
	assert_int_equal(cfg_read(f, 3, PCI_INTERRUPT_LINE, 2), 0x0105);
	/* COMMAND: only the defined bits stick. */
	cfg_write(f, 3, PCI_COMMAND, 0xffff, 2);
	assert_int_equal(cfg_read(f, 3, PCI_COMMAND, 2), 0x0547);
	/* Expansion ROM not implemented: sizing reads 0. */
	cfg_write(f, 3, PCI_ROM_ADDRESS, 0xfffff800, 4);
	assert_int_equal(cfg_read(f, 3, PCI_ROM_ADDRESS, 4), 0);
	/* The device hears about every write that reached it. */
	assert_true(f->dev.cfg_writes >= 7);
	assert_int_equal(f->dev.last_off, PCI_ROM_ADDRESS);
	assert_int_equal(f->dev.last_len, 4);
}

static void test_status_write_one_to_clear(void **state)
{
	struct fixture *f = *state;

	tdev_setup(&f->dev, &f->host);
	assert_int_equal(pci_host_add(&f->host, &f->dev.pdev, -1), 0);
	assert_int_equal(f->dev.pdev.slot, 1);
	/* The device reports two errors. */
	f->dev.pdev.cfg[PCI_STATUS + 1] |= (PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_DETECTED_PARITY) >> 8;
	assert_int_equal(cfg_read(f, 1, PCI_STATUS, 2), PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_DETECTED_PARITY);
	cfg_write(f, 1, PCI_STATUS, 0, 2); /* zeros change nothing */
	assert_int_equal(cfg_read(f, 1, PCI_STATUS, 2), PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_DETECTED_PARITY);
	cfg_write(f, 1, PCI_STATUS, PCI_STATUS_REC_MASTER_ABORT, 2);
	assert_int_equal(cfg_read(f, 1, PCI_STATUS, 2), PCI_STATUS_DETECTED_PARITY);
	/* A dword write to COMMAND+STATUS that sets COMMAND bits and writes 1s to STATUS. */
	cfg_write(f, 1, PCI_COMMAND, 0xffff0000u | PCI_COMMAND_MASTER, 4);
	assert_int_equal(cfg_read(f, 1, PCI_STATUS, 2), 0);
	assert_int_equal(cfg_read(f, 1, PCI_COMMAND, 2), PCI_COMMAND_MASTER);
}

static void test_bar_sizing(void **state)
{
	struct fixture *f = *state;
	unsigned s;

	tdev_setup(&f->dev, &f->host);
	assert_int_equal(pci_host_add(&f->host, &f->dev.pdev, 2), 0);
	s = 2;
	/* Linux turns decoding off while sizing. */
	cfg_write(f, s, PCI_COMMAND, 0, 2);
	cfg_write(f, s, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, s, PCI_BASE_ADDRESS_0, 4), 0xffffffc1); /* io, 0x40 */
	cfg_write(f, s, PCI_BASE_ADDRESS_1, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, s, PCI_BASE_ADDRESS_1, 4), 0xfffff000); /* mem32, 4 KiB */
	cfg_write(f, s, PCI_BASE_ADDRESS_2, 0xffffffff, 4);
	cfg_write(f, s, PCI_BASE_ADDRESS_3, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, s, PCI_BASE_ADDRESS_2, 4), 0xffffc004); /* mem64, 16 KiB */
	assert_int_equal(cfg_read(f, s, PCI_BASE_ADDRESS_3, 4), 0xffffffff);
	/* Unused BARs read 0 whatever is written. */
	cfg_write(f, s, PCI_BASE_ADDRESS_4, 0xffffffff, 4);
	cfg_write(f, s, PCI_BASE_ADDRESS_5, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, s, PCI_BASE_ADDRESS_4, 4), 0);
	assert_int_equal(cfg_read(f, s, PCI_BASE_ADDRESS_5, 4), 0);
	/* Prefetchable bit never set; flag bits are read-only. */
	cfg_write(f, s, PCI_BASE_ADDRESS_1, 0xc0000008, 4);
	assert_int_equal(cfg_read(f, s, PCI_BASE_ADDRESS_1, 4), 0xc0000000);
	cfg_write(f, s, PCI_BASE_ADDRESS_0, 0xc100, 1); /* byte write: low byte only */
	assert_int_equal(cfg_read(f, s, PCI_BASE_ADDRESS_0, 4), 0xffffff01);
}

static void test_bar_assignment_and_decode(void **state)
{
	struct fixture *f = *state;
	struct tdev *t = &f->dev;
	uint32_t v;
	uint8_t b;

	tdev_setup(t, &f->host);
	assert_int_equal(pci_host_add(&f->host, &t->pdev, 4), 0);
	/* Firmware-like assignment: inside the windows, aligned, decoding on. */
	assert_int_equal(cfg_read(f, 4, PCI_COMMAND, 2), PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	assert_true(t->pdev.bars[0].decoded && t->pdev.bars[1].decoded && t->pdev.bars[2].decoded);
	assert_int_equal(t->pdev.bars[0].addr, PIO);
	assert_int_equal(cfg_read(f, 4, PCI_BASE_ADDRESS_0, 4), PIO | 1);
	assert_true(t->pdev.bars[1].addr >= MMIO && t->pdev.bars[1].addr % 0x1000 == 0);
	assert_true(t->pdev.bars[2].addr >= MMIO && t->pdev.bars[2].addr % 0x4000 == 0);
	assert_true(t->pdev.bars[1].addr + 0x1000 <= t->pdev.bars[2].addr);
	assert_int_equal(cfg_read(f, 4, PCI_BASE_ADDRESS_2, 4), (uint32_t)t->pdev.bars[2].addr | 4);
	assert_int_equal(t->bar_updates, 3);
	assert_true(t->last_enabled);

	/* Accesses reach the BAR at the right offset, without host->lock held. */
	memcpy(&t->mem[0x10], "\x11\x22\x33\x44", 4);
	assert_true(bus_read(&f->mmio, t->pdev.bars[1].addr + 0x10, &v, 4));
	assert_int_equal(v, 0x44332211);
	assert_int_equal(t->last_bar_off, 0x10);
	assert_true(t->host_lock_free);
	v = 0xcafe;
	assert_true(bus_write(&f->mmio, t->pdev.bars[2].addr + 0x3ffc, &v, 4));
	assert_int_equal(t->last_bar_off, 0x3ffc);
	assert_true(t->host_lock_free);
	assert_true(bus_read(&f->pio, PIO + 0x3f, &b, 1));
	assert_int_equal(t->last_bar_off, 0x3f);
	/* Straddling a BAR's end: all ones, the device sees nothing. */
	t->bar_reads = 0;
	v = 0;
	assert_true(bus_read(&f->mmio, t->pdev.bars[1].addr + 0xffe, &v, 4));
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(t->bar_reads, 0);
	/* Window space with no BAR: all ones. */
	assert_true(bus_read(&f->mmio, MMIO + MMIO_SIZE - 4, &v, 4));
	assert_int_equal(v, 0xffffffff);

	/* Memory decode off: memory BARs read all ones and writes are dropped; I/O still decodes. */
	t->bar_updates = 0;
	cfg_write(f, 4, PCI_COMMAND, PCI_COMMAND_IO, 2);
	assert_int_equal(t->bar_updates, 2);
	assert_false(t->last_enabled);
	assert_false(t->pdev.bars[1].decoded);
	assert_true(t->pdev.bars[0].decoded);
	t->bar_reads = t->bar_writes = 0;
	v = 0;
	assert_true(bus_read(&f->mmio, t->pdev.bars[1].addr + 0x10, &v, 4));
	assert_int_equal(v, 0xffffffff);
	assert_true(bus_write(&f->mmio, t->pdev.bars[1].addr + 0x10, &v, 4));
	assert_int_equal(t->bar_reads + t->bar_writes, 0);
	assert_true(bus_read(&f->pio, PIO, &b, 1));
	assert_int_equal(t->bar_reads, 1);
	/* I/O decode off too. */
	cfg_write(f, 4, PCI_COMMAND, 0, 2);
	b = 0;
	assert_true(bus_read(&f->pio, PIO, &b, 1));
	assert_int_equal(b, 0xff);
	assert_int_equal(t->bar_reads, 1);
	/* Same command again: no spurious updates. */
	t->bar_updates = 0;
	cfg_write(f, 4, PCI_COMMAND, 0, 2);
	assert_int_equal(t->bar_updates, 0);
	cfg_write(f, 4, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
	assert_int_equal(t->bar_updates, 3);
	assert_true(bus_read(&f->mmio, t->pdev.bars[1].addr + 0x10, &v, 4));
	assert_int_equal(v, 0x44332211);
}

static void test_bar_move(void **state)
{
	struct fixture *f = *state;
	struct tdev *t = &f->dev;
	uint64_t old1, newaddr = MMIO + 0x100000;
	uint32_t v;

	tdev_setup(t, &f->host);
	assert_int_equal(pci_host_add(&f->host, &t->pdev, 4), 0);
	old1 = t->pdev.bars[1].addr;
	memcpy(t->mem, "\x01\x02\x03\x04", 4);

	/* Move BAR1 with decoding on (the guest may): takes effect immediately. */
	t->bar_updates = 0;
	cfg_write(f, 4, PCI_BASE_ADDRESS_1, (uint32_t)newaddr, 4);
	assert_int_equal(t->bar_updates, 1);
	assert_int_equal(t->last_bar, 1);
	assert_int_equal(t->last_addr, newaddr);
	assert_true(t->last_enabled);
	assert_true(bus_read(&f->mmio, newaddr, &v, 4));
	assert_int_equal(v, 0x04030201);
	assert_true(bus_read(&f->mmio, old1, &v, 4));
	assert_int_equal(v, 0xffffffff);
	/* No bus remapping happened: the host's window is still one mapping. */
	assert_int_equal(f->mmio.nr, 2);

	/* Outside the window (below it, and straddling its end): not decoded. */
	cfg_write(f, 4, PCI_BASE_ADDRESS_1, 0x80000000u, 4);
	assert_false(t->last_enabled);
	assert_false(t->pdev.bars[1].decoded);
	/* Just past the window, on top of ECAM: not decoded, and ECAM is not shadowed. */
	cfg_write(f, 4, PCI_BASE_ADDRESS_1, (uint32_t)(MMIO + MMIO_SIZE), 4);
	assert_int_equal(t->pdev.bars[1].addr, MMIO + MMIO_SIZE);
	assert_false(t->pdev.bars[1].decoded);
	t->bar_reads = 0;
	assert_true(bus_read(&f->mmio, ECAM, &v, 4));
	assert_int_equal(v, 0x29c08086);
	assert_int_equal(t->bar_reads, 0);

	/* 64-bit BAR moved above 4 GiB: outside the 32-bit window, not decoded. */
	cfg_write(f, 4, PCI_BASE_ADDRESS_3, 1, 4);
	assert_int_equal(t->last_bar, 2);
	assert_false(t->last_enabled);
	assert_int_equal(t->pdev.bars[2].addr >> 32, 1);
	cfg_write(f, 4, PCI_BASE_ADDRESS_3, 0, 4);
	assert_true(t->pdev.bars[2].decoded);

	/* I/O BAR moved to another place in the window and out of it. */
	cfg_write(f, 4, PCI_BASE_ADDRESS_0, PIO + 0x1000, 4);
	assert_true(t->pdev.bars[0].decoded);
	assert_int_equal(t->pdev.bars[0].addr, PIO + 0x1000);
	cfg_write(f, 4, PCI_BASE_ADDRESS_0, 0x3f8, 4);
	assert_false(t->pdev.bars[0].decoded);
	/* Back inside: decoded again. */
	cfg_write(f, 4, PCI_BASE_ADDRESS_1, (uint32_t)old1, 4);
	assert_true(t->last_enabled);
	assert_true(bus_read(&f->mmio, old1, &v, 4));
	assert_int_equal(v, 0x04030201);
}

static void test_set_bar_errors(void **state)
{
	struct fixture *f = *state;
	struct pci_dev *p = &f->dev.pdev;

	pci_dev_init(p, 1, 2, 0, 0, 0, 0);
	assert_int_equal(pci_dev_set_bar(p, 6, 0x1000, false, false, &tdev_bar_ops, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(p, 0, 0x1800, false, false, &tdev_bar_ops, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(p, 0, 0, false, false, &tdev_bar_ops, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(p, 0, 8, false, false, &tdev_bar_ops, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(p, 0, 2, true, false, &tdev_bar_ops, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(p, 0, 0x20000, true, false, &tdev_bar_ops, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(p, 5, 0x1000, false, true, &tdev_bar_ops, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(p, 0, 0x1000, true, true, &tdev_bar_ops, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(p, 1, 0x1000, false, true, &tdev_bar_ops, NULL), 0);
	assert_int_equal(pci_dev_set_bar(p, 1, 0x1000, false, false, &tdev_bar_ops, NULL), -EBUSY);
	assert_int_equal(pci_dev_set_bar(p, 2, 0x1000, false, false, &tdev_bar_ops, NULL), -EBUSY);
	assert_int_equal(pci_dev_set_bar(p, 0, 0x1000, false, true, &tdev_bar_ops, NULL), -EBUSY);
	assert_int_equal(pci_dev_set_bar(p, 3, 0x1000, false, false, &tdev_bar_ops, NULL), 0);
}

static void test_host_add_errors(void **state)
{
	struct fixture *f = *state;
	struct tdev *big = calloc(1, sizeof(*big));

	assert_non_null(big);
	tdev_setup(&f->dev, &f->host);
	assert_int_equal(pci_host_add(&f->host, &f->dev.pdev, 0), -EINVAL);
	assert_int_equal(pci_host_add(&f->host, &f->dev.pdev, 32), -EINVAL);
	assert_int_equal(pci_host_add(&f->host, &f->dev.pdev, 7), 0);
	tdev_setup(&f->dev2, &f->host);
	assert_int_equal(pci_host_add(&f->host, &f->dev2.pdev, 7), -EBUSY);
	/* A BAR larger than what is left of the window: refused, nothing plugged. */
	pci_dev_init(&big->pdev, 1, 2, 0, 0, 0, 0);
	assert_int_equal(pci_dev_set_bar(&big->pdev, 0, 0x20000000, false, false, &tdev_bar_ops, big), 0);
	assert_int_equal(pci_host_add(&f->host, &big->pdev, -1), -ENOSPC);
	assert_null(f->host.slots[1]);
	assert_int_equal(cfg_read(f, 1, 0, 4), 0xffffffff);
	/* The second device still fits in the next free slot. */
	assert_int_equal(pci_host_add(&f->host, &f->dev2.pdev, -1), 0);
	assert_int_equal(f->dev2.pdev.slot, 1);
	assert_true(f->dev2.pdev.bars[1].addr != f->dev.pdev.bars[1].addr);
	free(big);
}

static void test_capabilities(void **state)
{
	struct fixture *f = *state;
	struct pci_dev *p = &f->dev.pdev;
	int a, b, c;
	unsigned off, n = 0;

	tdev_setup(&f->dev, &f->host);
	assert_int_equal(cfg_read(f, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	a = pci_dev_add_cap(p, PCI_CAP_ID_MSIX, 12);
	b = pci_dev_add_cap(p, PCI_CAP_ID_VNDR, 5);
	c = pci_dev_add_cap(p, PCI_CAP_ID_VNDR, 16);
	assert_int_equal(a, 0x40);
	assert_int_equal(b, 0x4c);
	assert_int_equal(c, 0x54); /* dword aligned */
	assert_int_equal(pci_dev_add_cap(p, PCI_CAP_ID_VNDR, 1), -EINVAL);
	assert_int_equal(pci_host_add(&f->host, p, 9), 0);

	assert_true(cfg_read(f, 9, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* Walk the list as Linux does. */
	off = cfg_read(f, 9, PCI_CAPABILITY_LIST, 1);
	while (off && n < 48) {
		n++;
		off = cfg_read(f, 9, off + PCI_CAP_LIST_NEXT, 1);
	}
	assert_int_equal(n, 3);
	assert_int_equal(cfg_read(f, 9, (unsigned)a, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(cfg_read(f, 9, (unsigned)a + 1, 1), b);
	/* Capability bodies are read-only unless the device says otherwise. */
	cfg_write(f, 9, (unsigned)a, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, 9, (unsigned)a, 2), PCI_CAP_ID_MSIX | b << 8);
	p->wmask[a + 3] = 0xc0; /* MSI-X enable + function mask */
	cfg_write(f, 9, (unsigned)a + 2, 0xffff, 2);
	assert_int_equal(cfg_read(f, 9, (unsigned)a + 3, 1), 0xc0);
	assert_int_equal(f->dev.last_off, (unsigned)a + 2);
	/* Status cap bit cannot be cleared. */
	cfg_write(f, 9, PCI_STATUS, 0xffff, 2);
	assert_true(cfg_read(f, 9, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* Fill up config space. */
	while (pci_dev_add_cap(p, PCI_CAP_ID_VNDR, 64) >= 0)
		;
	assert_int_equal(pci_dev_add_cap(p, PCI_CAP_ID_VNDR, 64), -ENOSPC);
	assert_true(p->cap_next <= 256);
}

static void test_intx(void **state)
{
	struct fixture *f = *state;

	tdev_setup(&f->dev, &f->host);
	tdev_setup(&f->dev2, &f->host);
	/* Before the function is plugged, nothing happens. */
	pci_dev_set_intx(&f->dev.pdev, 1);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 0);
	assert_int_equal(pci_host_add(&f->host, &f->dev.pdev, 1), 0);
	assert_int_equal(pci_host_add(&f->host, &f->dev2.pdev, 2), 0);

	pci_dev_set_intx(&f->dev.pdev, 1);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 1);
	assert_true(cfg_read(f, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	assert_false(cfg_read(f, 2, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	/* Shared line: stays up while any pin is asserted; changes only on a change. */
	pci_dev_set_intx(&f->dev2.pdev, 1);
	pci_dev_set_intx(&f->dev.pdev, 1);
	pci_dev_set_intx(&f->dev.pdev, 0);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 1);
	pci_dev_set_intx(&f->dev2.pdev, 0);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 0);
	assert_int_equal(f->fi.raises[GSI], 1);
	assert_int_equal(f->fi.lowers[GSI], 1);
	assert_int_equal(f->fi.line_calls[GSI], 2);

	/* COMMAND.INTX_DISABLE masks the pin but STATUS.INTERRUPT still shows it. */
	pci_dev_set_intx(&f->dev.pdev, 1);
	cfg_write(f, 1, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE | PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 0);
	assert_true(cfg_read(f, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	cfg_write(f, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 1);
	/* STATUS.INTERRUPT is read-only to the guest. */
	cfg_write(f, 1, PCI_STATUS, 0xffff, 2);
	assert_true(cfg_read(f, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_dev_set_intx(&f->dev.pdev, 0);
	assert_false(cfg_read(f, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 0);
}

/* xorshift64: deterministic hostile input. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_accesses_never_crash(void **state)
{
	struct fixture *f = *state;
	static const unsigned lens[] = { 1, 2, 3, 4, 8 };
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	uint8_t buf[8];

	tdev_setup(&f->dev, &f->host);
	assert_int_equal(pci_host_add(&f->host, &f->dev.pdev, 5), 0);
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t r = rnd(&s);
		unsigned len = lens[r % ARRAY_SIZE(lens)];
		uint64_t v = rnd(&s);
		bool wr = (r >> 8) & 1;

		memcpy(buf, &v, 8);
		switch ((r >> 4) % 5) {
		case 0: { /* the config ports, any width; the address often pointing at our slots */
			uint64_t port = 0xcf8 + ((r >> 12) % 8);

			if (port == 0xcf8 && len == 4 && (r >> 20) % 2) {
				uint32_t a = conf_addr(0, (r >> 24) % 2 ? 5 : 0, 0, (unsigned)(v % 256));

				memcpy(buf, &a, 4);
			}
			if (wr)
				(void)bus_write(&f->pio, port, buf, len);
			else
				(void)bus_read(&f->pio, port, buf, len);
			break;
		}
		case 1: /* ECAM, including past its end */
			if (wr)
				(void)bus_write(&f->mmio, ECAM + (r >> 12) % 0x100100, buf, len);
			else
				(void)bus_read(&f->mmio, ECAM + (r >> 12) % 0x100100, buf, len);
			break;
		case 2: /* direct config access with any offset and width */
			if (wr)
				pci_cfg_write(&f->host, (unsigned)(r >> 12) % 40, (unsigned)(v >> 16) % 4200, buf, len);
			else
				pci_cfg_read(&f->host, (unsigned)(r >> 12) % 40, (unsigned)(v >> 16) % 4200, buf, len);
			break;
		case 3: /* the MMIO window */
			if (wr)
				(void)bus_write(&f->mmio, MMIO + (r >> 12) % 0x20000, buf, len);
			else
				(void)bus_read(&f->mmio, MMIO + (r >> 12) % 0x20000, buf, len);
			break;
		default: /* the PIO window */
			if (wr)
				(void)bus_write(&f->pio, PIO + (r >> 12) % PIO_SIZE, buf, len);
			else
				(void)bus_read(&f->pio, PIO + (r >> 12) % PIO_SIZE, buf, len);
			break;
		}
	}
	/* Read-only identity survived, and a BAR access never left the BAR. */
	pci_cfg_read(&f->host, 0, 0, buf, 4);
	assert_memory_equal(buf, "\x86\x80\xc0\x29", 4);
	pci_cfg_read(&f->host, 5, 0, buf, 4);
	assert_memory_equal(buf, "\xf4\x1a\x41\x10", 4);
	assert_int_equal(f->dev.pdev.cfg[PCI_HEADER_TYPE], 0);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &f->dev.pdev.bars[i];

		if (b->decoded)
			assert_true(b->io ? b->addr >= PIO && b->addr + b->size <= PIO + PIO_SIZE
					  : b->addr >= MMIO && b->addr + b->size <= MMIO + MMIO_SIZE);
	}
}

static void test_init_refuses_overlap(void **state)
{
	struct fixture *f = *state;
	struct pci_host h2;

	/* A second host on the same ports: refused, and nothing of the first is unmapped. */
	assert_true(pci_host_init(&h2, &f->pio, &f->mmio, ECAM + 0x10000000, MMIO, MMIO_SIZE, PIO, PIO_SIZE) < 0);
	assert_int_equal(f->pio.nr, 2);
	assert_int_equal(f->mmio.nr, 2);
	assert_int_equal(pci_host_init(&h2, &f->pio, &f->mmio, ECAM, MMIO, MMIO_SIZE, 0xf000, 0x2000), -EINVAL);
	assert_int_equal(cfg_read(f, 0, 0, 4), 0x29c08086);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_bridge_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_addr_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_functions_read_all_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_data_odd_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecam_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_and_writable_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_write_one_to_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_assignment_and_decode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_bar_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_add_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_accesses_never_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_refuses_overlap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
