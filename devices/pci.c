// SPDX-License-Identifier: GPL-2.0-only
/* PCI host bridge on bus 0: config space via 0xCF8/0xCFC and ECAM, BAR decode in the host's windows, INTx. */
#include "devices/pci.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <string.h>

#include "lib/util.h"

#define PCI_CONF_ADDR_ENABLE 0x80000000u
/* Bits of 0xCF8 that latch: enable, bus, device, function, dword register (type 1 only). */
#define PCI_CONF_ADDR_MASK 0x80fffffcu

#define PCI_ECAM_BUS_SIZE 0x100000u /* one bus: 32 devices x 8 functions x 4 KiB */

#define PCI_HOST_VENDOR 0x8086 /* Intel Q35/MCH host bridge, as QEMU's q35 */
#define PCI_HOST_DEVICE 0x29c0
#define PCI_HOST_CLASS 0x060000

/* COMMAND bits the guest may change. */
#define PCI_COMMAND_WMASK                                                                          \
	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |           \
	 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)
/* STATUS error bits, cleared by writing 1. */
#define PCI_STATUS_W1C                                                                             \
	(PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_REC_TARGET_ABORT |           \
	 PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY)

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static bool pci_len_ok(unsigned len)
{
	return len == 1 || len == 2 || len == 4;
}

/* --- BAR decode ---------------------------------------------------------------------------- */

/* The address the guest programmed into BAR i (lower half for a 64-bit BAR). */
static uint64_t pci_bar_cfg_addr(const struct pci_dev *pdev, unsigned i)
{
	const struct pci_bar *b = &pdev->bars[i];
	uint32_t lo = rd32(&pdev->cfg[PCI_BASE_ADDRESS_0 + 4 * i]);

	if (b->io)
		return lo & PCI_BASE_ADDRESS_IO_MASK;
	if (b->mem64)
		return (lo & PCI_BASE_ADDRESS_MEM_MASK) |
		       (uint64_t)rd32(&pdev->cfg[PCI_BASE_ADDRESS_0 + 4 * (i + 1)]) << 32;
	return lo & PCI_BASE_ADDRESS_MEM_MASK;
}

/* True when [addr, addr+size) lies wholly inside the window of the BAR's kind. A BAR at 0 or
 * outside the window (the guest may write anything, all ones while sizing) is not decoded. */
static bool pci_bar_in_window(const struct pci_host *host, const struct pci_bar *b, uint64_t addr)
{
	uint64_t base = b->io ? host->pio_base : host->mmio_base;
	uint64_t size = b->io ? host->pio_size : host->mmio_size;

	if (addr == 0 || addr < base)
		return false;
	return range_within(addr - base, b->size, size);
}

/* Recomputes the decode state of every BAR of pdev from its config space and tells the device
 * about changes (caller holds host->lock). */
static void pci_dev_update_decode(struct pci_host *host, struct pci_dev *pdev)
{
	uint16_t cmd = rd16(&pdev->cfg[PCI_COMMAND]);

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &pdev->bars[i];
		uint64_t addr;
		bool on, changed;

		if (!b->size)
			continue;
		addr = pci_bar_cfg_addr(pdev, i);
		on = (cmd & (b->io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) &&
		     pci_bar_in_window(host, b, addr);
		changed = on != b->decoded || (on && addr != b->addr);
		b->addr = addr;
		b->decoded = on;
		if (changed && pdev->ops && pdev->ops->bar_update)
			pdev->ops->bar_update(pdev, i, addr, on);
	}
}

/* What a BAR access needs once host->lock is dropped. */
struct pci_bar_target {
	const struct bus_ops *ops;
	void *opaque;
	uint64_t offset;
};

/* Finds the decoded BAR of the given kind that wholly contains [addr, addr+len). */
static bool pci_bar_lookup(struct pci_host *host, bool io, uint64_t addr, unsigned len,
			   struct pci_bar_target *ret)
{
	bool found = false;

	pthread_mutex_lock(&host->lock);
	for (unsigned s = 0; s < PCI_MAX_SLOTS && !found; s++) {
		struct pci_dev *pdev = host->slots[s];

		if (!pdev)
			continue;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			const struct pci_bar *b = &pdev->bars[i];

			if (!b->size || !b->decoded || b->io != io || addr < b->addr ||
			    !range_within(addr - b->addr, len, b->size))
				continue;
			*ret = (struct pci_bar_target){ b->ops, b->opaque, addr - b->addr };
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&host->lock);
	return found;
}

/* The window handlers: the device's BAR ops run without host->lock so they may take their
 * own locks (see pci.h). */
static void pci_window_read(struct pci_host *host, bool io, uint64_t addr, void *data, unsigned len)
{
	struct pci_bar_target t;

	if (pci_bar_lookup(host, io, addr, len, &t) && t.ops && t.ops->read)
		t.ops->read(t.opaque, t.offset, data, len);
	else
		memset(data, 0xff, len);
}

static void pci_window_write(struct pci_host *host, bool io, uint64_t addr, const void *data, unsigned len)
{
	struct pci_bar_target t;

	if (pci_bar_lookup(host, io, addr, len, &t) && t.ops && t.ops->write)
		t.ops->write(t.opaque, t.offset, data, len);
}

static void pci_mmio_window_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct pci_host *host = dev;

	pci_window_read(host, false, host->mmio_base + offset, data, len);
}

static void pci_mmio_window_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct pci_host *host = dev;

	pci_window_write(host, false, host->mmio_base + offset, data, len);
}

static void pci_pio_window_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct pci_host *host = dev;

	pci_window_read(host, true, host->pio_base + offset, data, len);
}

static void pci_pio_window_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct pci_host *host = dev;

	pci_window_write(host, true, host->pio_base + offset, data, len);
}

static const struct bus_ops pci_mmio_window_ops = {
	.read = pci_mmio_window_read,
	.write = pci_mmio_window_write,
};

static const struct bus_ops pci_pio_window_ops = {
	.read = pci_pio_window_read,
	.write = pci_pio_window_write,
};

/* --- INTx ---------------------------------------------------------------------------------- */

/* Drives the shared line from the pins (caller holds intx_lock). */
static void pci_intx_update_locked(struct pci_host *host)
{
	int level = (host->intx_asserted & ~host->intx_disabled) != 0;

	if (level == host->intx_level)
		return;
	host->intx_level = level;
	if (host->irq)
		(void)host->irq->ops->line_set(host->irq, host->intx_gsi, level);
}

void pci_host_set_irq(struct pci_host *host, struct hv_irq *irq, unsigned gsi)
{
	pthread_mutex_lock(&host->intx_lock);
	host->irq = irq;
	host->intx_gsi = gsi;
	host->intx_level = 0; /* the line starts low */
	pci_intx_update_locked(host);
	pthread_mutex_unlock(&host->intx_lock);
}

void pci_dev_set_intx(struct pci_dev *pdev, int level)
{
	struct pci_host *host = pdev->host;
	uint32_t bit;

	if (!host || pdev->slot >= PCI_MAX_SLOTS)
		return;
	bit = 1u << pdev->slot;
	pthread_mutex_lock(&host->intx_lock);
	if (level)
		__atomic_or_fetch(&host->intx_asserted, bit, __ATOMIC_RELAXED);
	else
		__atomic_and_fetch(&host->intx_asserted, ~bit, __ATOMIC_RELAXED);
	pci_intx_update_locked(host);
	pthread_mutex_unlock(&host->intx_lock);
}

/* COMMAND.INTX_DISABLE of slot may have changed (caller holds host->lock). */
static void pci_intx_command(struct pci_host *host, unsigned slot, uint16_t cmd)
{
	uint32_t bit = 1u << slot;

	pthread_mutex_lock(&host->intx_lock);
	if (cmd & PCI_COMMAND_INTX_DISABLE)
		host->intx_disabled |= bit;
	else
		host->intx_disabled &= ~bit;
	pci_intx_update_locked(host);
	pthread_mutex_unlock(&host->intx_lock);
}

/* --- config space -------------------------------------------------------------------------- */

void pci_dev_init(struct pci_dev *pdev, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint16_t subsys_vendor, uint16_t subsys_id, uint8_t revision)
{
	memset(pdev->cfg, 0, sizeof(pdev->cfg));
	memset(pdev->wmask, 0, sizeof(pdev->wmask));
	memset(pdev->w1cmask, 0, sizeof(pdev->w1cmask));
	memset(pdev->bars, 0, sizeof(pdev->bars));
	pdev->host = NULL;
	pdev->slot = 0;
	pdev->cap_next = 0x40;

	wr16(&pdev->cfg[PCI_VENDOR_ID], vendor);
	wr16(&pdev->cfg[PCI_DEVICE_ID], device);
	pdev->cfg[PCI_REVISION_ID] = revision;
	pdev->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	wr16(&pdev->cfg[PCI_CLASS_DEVICE], (uint16_t)(class_code >> 8));
	pdev->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	wr16(&pdev->cfg[PCI_SUBSYSTEM_VENDOR_ID], subsys_vendor);
	wr16(&pdev->cfg[PCI_SUBSYSTEM_ID], subsys_id);
	pdev->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA# */

	wr16(&pdev->wmask[PCI_COMMAND], PCI_COMMAND_WMASK);
	wr16(&pdev->w1cmask[PCI_STATUS], PCI_STATUS_W1C);
	pdev->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	pdev->wmask[PCI_LATENCY_TIMER] = 0xff;
	pdev->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

int pci_dev_set_bar(struct pci_dev *pdev, unsigned bar, uint64_t size, bool io, bool mem64,
		    const struct bus_ops *ops, void *opaque)
{
	uint64_t mask;
	uint32_t flags;

	if (bar >= PCI_NUM_BARS || (mem64 && (io || bar + 1 >= PCI_NUM_BARS)))
		return -EINVAL;
	if (size == 0 || (size & (size - 1)))
		return -EINVAL;
	if (io ? (size < 4 || size > 0x10000) : (size < 16 || (!mem64 && size > 0x80000000ULL)))
		return -EINVAL;
	if (size > (1ULL << 62))
		return -EINVAL;
	/* The slot must be free and must not be the upper half of a 64-bit BAR. */
	if (pdev->bars[bar].size || (bar > 0 && pdev->bars[bar - 1].mem64) ||
	    (mem64 && pdev->bars[bar + 1].size))
		return -EBUSY;

	pdev->bars[bar] = (struct pci_bar){
		.size = size, .io = io, .mem64 = mem64, .ops = ops, .opaque = opaque,
	};
	mask = ~(size - 1);
	if (io) {
		flags = PCI_BASE_ADDRESS_SPACE_IO;
		mask &= PCI_BASE_ADDRESS_IO_MASK;
	} else {
		flags = mem64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : PCI_BASE_ADDRESS_MEM_TYPE_32;
		mask &= ~(uint64_t)0xf;
	}
	/* The sizing protocol falls out of the mask: the guest writes all ones and reads back the
	 * writable address bits plus the read-only flag bits. */
	wr32(&pdev->cfg[PCI_BASE_ADDRESS_0 + 4 * bar], flags);
	wr32(&pdev->wmask[PCI_BASE_ADDRESS_0 + 4 * bar], (uint32_t)mask);
	if (mem64)
		wr32(&pdev->wmask[PCI_BASE_ADDRESS_0 + 4 * (bar + 1)], (uint32_t)(mask >> 32));
	return 0;
}

/* The last capability in the list, or 0 (bounded walk: the list is ours, but stay safe). */
static unsigned pci_cap_last(const struct pci_dev *pdev)
{
	unsigned off = pdev->cfg[PCI_CAPABILITY_LIST], last = 0;

	for (unsigned n = 0; off >= 0x40 && off < 256 && n < 64; n++) {
		last = off;
		off = pdev->cfg[off + 1];
	}
	return last;
}

int pci_dev_add_cap(struct pci_dev *pdev, uint8_t cap_id, unsigned len)
{
	unsigned off = ALIGN_UP(MAX(pdev->cap_next, 0x40u), 4u), last;

	if (len < 2)
		return -EINVAL;
	if (off >= 256 || len > 256 - off)
		return -ENOSPC;
	last = pci_cap_last(pdev);
	pdev->cfg[off] = cap_id;
	pdev->cfg[off + 1] = 0;
	if (last)
		pdev->cfg[last + 1] = (uint8_t)off;
	else
		pdev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	wr16(&pdev->cfg[PCI_STATUS], rd16(&pdev->cfg[PCI_STATUS]) | PCI_STATUS_CAP_LIST);
	pdev->cap_next = off + len;
	return (int)off;
}

/* Guest-visible config read of a present function (caller holds host->lock). */
static void pci_cfg_read_locked(struct pci_host *host, struct pci_dev *pdev, unsigned offset,
				uint8_t *data, unsigned len)
{
	memcpy(data, &pdev->cfg[offset], len);
	/* STATUS.INTERRUPT mirrors the pin, which devices drive without host->lock. */
	if (offset <= PCI_STATUS && offset + len > PCI_STATUS) {
		uint32_t asserted = __atomic_load_n(&host->intx_asserted, __ATOMIC_RELAXED);
		uint8_t *st = &data[PCI_STATUS - offset];

		*st = (uint8_t)((*st & ~PCI_STATUS_INTERRUPT) |
				((asserted >> pdev->slot) & 1 ? PCI_STATUS_INTERRUPT : 0));
	}
}

/* Guest-visible config write: per byte, writable bits take the new value, then
 * write-1-to-clear bits clear (caller holds host->lock). */
static void pci_cfg_write_locked(struct pci_host *host, struct pci_dev *pdev, unsigned offset,
				 const uint8_t *data, unsigned len)
{
	uint16_t old_cmd = rd16(&pdev->cfg[PCI_COMMAND]), cmd;

	for (unsigned i = 0; i < len; i++) {
		unsigned o = offset + i;
		uint8_t v = (uint8_t)((pdev->cfg[o] & ~pdev->wmask[o]) | (data[i] & pdev->wmask[o]));

		pdev->cfg[o] = (uint8_t)(v & ~(data[i] & pdev->w1cmask[o]));
	}
	cmd = rd16(&pdev->cfg[PCI_COMMAND]);
	if (offset < PCI_BASE_ADDRESS_5 + 4 && offset + len > PCI_COMMAND)
		pci_dev_update_decode(host, pdev);
	if ((cmd ^ old_cmd) & PCI_COMMAND_INTX_DISABLE)
		pci_intx_command(host, pdev->slot, cmd);
	if (pdev->ops && pdev->ops->cfg_write)
		pdev->ops->cfg_write(pdev, offset, len);
}

/* Bounds every guest config access: an absent function, a bad width or a range past the end
 * of config space reads all ones and drops writes. */
static struct pci_dev *pci_cfg_target(struct pci_host *host, unsigned slot, unsigned offset, unsigned len)
{
	if (slot >= PCI_MAX_SLOTS || !pci_len_ok(len) || offset >= PCI_CFG_SIZE ||
	    len > PCI_CFG_SIZE - offset)
		return NULL;
	return host->slots[slot];
}

void pci_cfg_read(struct pci_host *host, unsigned slot, unsigned offset, void *data, unsigned len)
{
	struct pci_dev *pdev;

	pthread_mutex_lock(&host->lock);
	pdev = pci_cfg_target(host, slot, offset, len);
	if (pdev)
		pci_cfg_read_locked(host, pdev, offset, data, len);
	else
		memset(data, 0xff, len);
	pthread_mutex_unlock(&host->lock);
}

void pci_cfg_write(struct pci_host *host, unsigned slot, unsigned offset, const void *data, unsigned len)
{
	struct pci_dev *pdev;

	pthread_mutex_lock(&host->lock);
	pdev = pci_cfg_target(host, slot, offset, len);
	if (pdev)
		pci_cfg_write_locked(host, pdev, offset, data, len);
	pthread_mutex_unlock(&host->lock);
}

/* --- 0xCF8/0xCFC (configuration mechanism #1) ---------------------------------------------- */

/* Decodes the latched address for a data-port access at byte n of 0xCFC; returns the slot or
 * -1 when the access reaches nothing (disabled, another bus or function, or crossing the
 * dword). Register numbers come from 8 bits, so offsets >= 256 are impossible here. */
static int pci_conf1_decode(uint32_t conf, unsigned n, unsigned len, unsigned *ret_offset)
{
	if (!(conf & PCI_CONF_ADDR_ENABLE) || n + len > 4)
		return -1;
	if (((conf >> 16) & 0xff) != 0 || ((conf >> 8) & 7) != 0)
		return -1;
	*ret_offset = (conf & 0xfc) + n;
	return (int)((conf >> 11) & 0x1f);
}

static void pci_conf1_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct pci_host *host = dev;
	unsigned reg;
	int slot;

	memset(data, 0xff, len);
	pthread_mutex_lock(&host->lock);
	if (offset < 4) {
		/* Only a dword access at 0xCF8 reaches CONFIG_ADDRESS (Linux's type-1 probe). */
		if (offset == 0 && len == 4)
			wr32(data, host->conf_addr);
	} else if (offset < 8 && len <= 8 - offset) {
		slot = pci_conf1_decode(host->conf_addr, (unsigned)offset - 4, len, &reg);
		if (slot >= 0 && pci_len_ok(len) && host->slots[slot])
			pci_cfg_read_locked(host, host->slots[slot], reg, data, len);
	}
	pthread_mutex_unlock(&host->lock);
}

static void pci_conf1_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct pci_host *host = dev;
	unsigned reg;
	int slot;

	pthread_mutex_lock(&host->lock);
	if (offset < 4) {
		if (offset == 0 && len == 4)
			host->conf_addr = rd32(data) & PCI_CONF_ADDR_MASK;
	} else if (offset < 8 && len <= 8 - offset) {
		slot = pci_conf1_decode(host->conf_addr, (unsigned)offset - 4, len, &reg);
		if (slot >= 0 && pci_len_ok(len) && host->slots[slot])
			pci_cfg_write_locked(host, host->slots[slot], reg, data, len);
	}
	pthread_mutex_unlock(&host->lock);
}

static const struct bus_ops pci_conf1_ops = {
	.read = pci_conf1_read,
	.write = pci_conf1_write,
};

/* --- ECAM ---------------------------------------------------------------------------------- */

/* offset = bus << 20 | device << 15 | function << 12 | register; the mapping is bus 0 only
 * (1 MiB), so bus bits never reach here. Function != 0 is absent. */
static int pci_ecam_decode(uint64_t offset, unsigned len, unsigned *ret_reg)
{
	unsigned reg = (unsigned)(offset & 0xfff);

	if (offset >= PCI_ECAM_BUS_SIZE || ((offset >> 12) & 7) != 0 || !pci_len_ok(len) ||
	    reg + len > PCI_CFG_SIZE)
		return -1;
	*ret_reg = reg;
	return (int)((offset >> 15) & 0x1f);
}

static void pci_ecam_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	unsigned reg;
	int slot = pci_ecam_decode(offset, len, &reg);

	if (slot < 0)
		memset(data, 0xff, len);
	else
		pci_cfg_read(dev, (unsigned)slot, reg, data, len);
}

static void pci_ecam_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	unsigned reg;
	int slot = pci_ecam_decode(offset, len, &reg);

	if (slot >= 0)
		pci_cfg_write(dev, (unsigned)slot, reg, data, len);
}

static const struct bus_ops pci_ecam_ops = {
	.read = pci_ecam_read,
	.write = pci_ecam_write,
};

/* --- host ---------------------------------------------------------------------------------- */

static const struct device_ops pci_host_device_ops = {
	.name = "pci-host",
};

int pci_host_init(struct pci_host *host, struct bus *pio, struct bus *mmio, uint64_t ecam_base,
		  uint64_t mmio_base, uint64_t mmio_size, uint32_t pio_base, uint32_t pio_size)
{
	int r;

	memset(host, 0, sizeof(*host));
	host->pio = pio;
	host->mmio = mmio;
	host->ecam_base = ecam_base;
	host->mmio_base = host->mmio_next = mmio_base;
	host->mmio_size = mmio_size;
	host->pio_base = host->pio_next = pio_base;
	host->pio_size = pio_size;
	if ((uint64_t)pio_base + pio_size > 0x10000 || mmio_base + mmio_size < mmio_base)
		return -EINVAL;

	r = -pthread_mutex_init(&host->lock, NULL);
	if (r < 0)
		return r;
	r = -pthread_mutex_init(&host->intx_lock, NULL);
	if (r < 0)
		goto err_lock;

	pci_dev_init(&host->bridge, PCI_HOST_VENDOR, PCI_HOST_DEVICE, PCI_HOST_CLASS, 0x1af4, 0x1100, 0);
	host->bridge.cfg[PCI_INTERRUPT_PIN] = 0;
	host->bridge.dev = (struct device){ .ops = &pci_host_device_ops, .id = "pci0" };
	host->bridge.host = host;
	host->slots[0] = &host->bridge;

	r = bus_map(pio, 0xcf8, 8, &pci_conf1_ops, host);
	if (r < 0)
		goto err_intx;
	r = bus_map(mmio, ecam_base, PCI_ECAM_BUS_SIZE, &pci_ecam_ops, host);
	if (r < 0)
		goto err_conf1;
	if (mmio_size) {
		r = bus_map(mmio, mmio_base, mmio_size, &pci_mmio_window_ops, host);
		if (r < 0)
			goto err_ecam;
	}
	if (pio_size) {
		r = bus_map(pio, pio_base, pio_size, &pci_pio_window_ops, host);
		if (r < 0)
			goto err_mmio;
	}
	return 0;

err_mmio:
	if (mmio_size)
		(void)bus_unmap(mmio, mmio_base, host);
err_ecam:
	(void)bus_unmap(mmio, ecam_base, host);
err_conf1:
	(void)bus_unmap(pio, 0xcf8, host);
err_intx:
	pthread_mutex_destroy(&host->intx_lock);
err_lock:
	pthread_mutex_destroy(&host->lock);
	return r;
}

void pci_host_destroy(struct pci_host *host)
{
	if (!host || !host->pio)
		return;
	if (host->pio_size)
		(void)bus_unmap(host->pio, host->pio_base, host);
	if (host->mmio_size)
		(void)bus_unmap(host->mmio, host->mmio_base, host);
	(void)bus_unmap(host->mmio, host->ecam_base, host);
	(void)bus_unmap(host->pio, 0xcf8, host);
	pthread_mutex_destroy(&host->intx_lock);
	pthread_mutex_destroy(&host->lock);
	host->pio = host->mmio = NULL;
}

/* Places the BARs of pdev in the windows, the way firmware would: each naturally aligned
 * (memory BARs at least to 4 KiB so a BAR never shares a page), in order. -ENOSPC when a BAR
 * does not fit; nothing is written until all fit (caller holds host->lock). */
static int pci_host_assign_bars(struct pci_host *host, struct pci_dev *pdev)
{
	uint64_t mnext = host->mmio_next, pnext = host->pio_next;
	uint64_t addr[PCI_NUM_BARS] = { 0 };

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &pdev->bars[i];
		uint64_t *next = b->io ? &pnext : &mnext;
		uint64_t base = b->io ? host->pio_base : host->mmio_base;
		uint64_t size = b->io ? host->pio_size : host->mmio_size;
		uint64_t align = b->io ? b->size : MAX(b->size, 4 * KiB);

		if (!b->size)
			continue;
		addr[i] = ALIGN_UP(*next, align);
		if (addr[i] < *next || addr[i] < base || !range_within(addr[i] - base, b->size, size))
			return -ENOSPC;
		*next = addr[i] + b->size;
	}
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint8_t *p = &pdev->cfg[PCI_BASE_ADDRESS_0 + 4 * i];

		if (!pdev->bars[i].size)
			continue;
		wr32(p, (rd32(p) & ~rd32(&pdev->wmask[PCI_BASE_ADDRESS_0 + 4 * i])) | (uint32_t)addr[i]);
		if (pdev->bars[i].mem64)
			wr32(p + 4, (uint32_t)(addr[i] >> 32));
	}
	host->mmio_next = mnext;
	host->pio_next = (uint32_t)pnext;
	return 0;
}

int pci_host_add(struct pci_host *host, struct pci_dev *pdev, int slot)
{
	uint16_t cmd = 0;
	int r;

	if (slot >= PCI_MAX_SLOTS || slot == 0)
		return -EINVAL;
	pthread_mutex_lock(&host->lock);
	if (slot < 0) {
		for (unsigned s = 1; s < PCI_MAX_SLOTS && slot < 0; s++)
			if (!host->slots[s])
				slot = (int)s;
		if (slot < 0) {
			r = -ENOSPC;
			goto out;
		}
	} else if (host->slots[slot]) {
		r = -EBUSY;
		goto out;
	}
	r = pci_host_assign_bars(host, pdev);
	if (r < 0)
		goto out;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (pdev->bars[i].size)
			cmd |= pdev->bars[i].io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
	wr16(&pdev->cfg[PCI_COMMAND], rd16(&pdev->cfg[PCI_COMMAND]) | cmd);
	if (pdev->cfg[PCI_INTERRUPT_PIN])
		pdev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)(host->irq ? host->intx_gsi : PCI_INTX_GSI_DEFAULT);
	pdev->host = host;
	pdev->slot = (unsigned)slot;
	host->slots[slot] = pdev;
	pci_dev_update_decode(host, pdev);
	r = slot;
out:
	pthread_mutex_unlock(&host->lock);
	return r < 0 ? r : 0;
}
