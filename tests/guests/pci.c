// SPDX-License-Identifier: GPL-2.0-only
/* Test guest for PCI config space: 0xCF8 enumeration, host bridge, BAR sizing, ECAM agreement. */
#include "tests/guests/libguest.h"

#define MAX_FUNCS 64
#define CONF_ADDR LAYOUT_PORT_PCI_CONF

struct func {
	unsigned int dev, fn;
	uint32_t id, class_rev;
};

/* Access methods, so one sizing routine runs over 0xCF8 and over ECAM. */
struct cfg_ops {
	const char *name;
	uint32_t (*read32)(unsigned int dev, unsigned int fn, unsigned int off);
	void (*write32)(unsigned int dev, unsigned int fn, unsigned int off, uint32_t v);
};

static uint32_t ecam_read32(unsigned int dev, unsigned int fn, unsigned int off)
{
	return mmio_read32(pci_ecam_addr(dev, fn, off & 0xffc));
}

static void ecam_write32(unsigned int dev, unsigned int fn, unsigned int off, uint32_t v)
{
	mmio_write32(pci_ecam_addr(dev, fn, off & 0xffc), v);
}

static const struct cfg_ops port_ops = {
	.name = "0xcf8",
	.read32 = pci_cfg_read32,
	.write32 = pci_cfg_write32,
};

static const struct cfg_ops ecam_ops = {
	.name = "ecam",
	.read32 = ecam_read32,
	.write32 = ecam_write32,
};

static void check_conf_addr(void)
{
	uint32_t got;

	/* Linux's pci_check_type1() relies on the address register reading back. */
	outl(CONF_ADDR, 0x80000000u);
	got = inl(CONF_ADDR);
	guest_check(got == 0x80000000u, "pci-conf-addr", "0xcf8 reads back 0x%08x", got);
}

static unsigned int enumerate(struct func *f)
{
	unsigned int dev, fn, n = 0;

	for (dev = 0; dev < 32; dev++) {
		for (fn = 0; fn < 8; fn++) {
			uint32_t id = pci_cfg_read32(dev, fn, 0x00);

			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			if (n < MAX_FUNCS) {
				f[n].dev = dev;
				f[n].fn = fn;
				f[n].id = id;
				f[n].class_rev = pci_cfg_read32(dev, fn, 0x08);
				guest_printf("PCI 00:%02x.%x %04x:%04x class %06x\n", dev, fn,
					     id & 0xffff, id >> 16, f[n].class_rev >> 8);
				n++;
			}
			if (fn == 0 && !(pci_cfg_read8(dev, 0, 0x0e) & 0x80))
				break;
		}
	}
	return n;
}

static void check_host_bridge(const struct func *f, unsigned int n)
{
	uint8_t hdr;

	if (n == 0 || f[0].dev != 0 || f[0].fn != 0) {
		guest_fail("pci-host-bridge", "nothing at 00:00.0");
		return;
	}
	hdr = pci_cfg_read8(0, 0, 0x0e);
	guest_check((f[0].class_rev >> 16) == 0x0600 && (hdr & 0x7f) == 0, "pci-host-bridge",
		    "00:00.0 class %06x header type 0x%02x (want class 0600xx, type 0)",
		    f[0].class_rev >> 8, hdr);
}

static void check_subword(const struct func *f, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint16_t ven = pci_cfg_read16(f[i].dev, f[i].fn, 0x00);
		uint16_t did = pci_cfg_read16(f[i].dev, f[i].fn, 0x02);
		uint8_t base = pci_cfg_read8(f[i].dev, f[i].fn, 0x0b);
		uint8_t rev = pci_cfg_read8(f[i].dev, f[i].fn, 0x08);

		if (ven != (f[i].id & 0xffff) || did != (f[i].id >> 16) ||
		    base != (f[i].class_rev >> 24) || rev != (f[i].class_rev & 0xff)) {
			guest_fail("pci-subword",
				   "00:%02x.%x 16/8-bit reads %04x:%04x class %02x rev %02x disagree with 32-bit %08x %08x",
				   f[i].dev, f[i].fn, ven, did, base, rev, f[i].id, f[i].class_rev);
			return;
		}
	}
	guest_pass("pci-subword");
}

static int slot_present(const struct func *f, unsigned int n, unsigned int dev)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (f[i].dev == dev)
			return 1;
	}
	return 0;
}

static void check_absent(const struct func *f, unsigned int n)
{
	unsigned int dev;

	for (dev = 31; dev > 0; dev--) {
		if (!slot_present(f, n, dev))
			break;
	}
	if (dev == 0) {
		guest_fail("pci-absent", "every slot is populated");
		return;
	}
	guest_check(pci_cfg_read32(dev, 0, 0) == 0xffffffffu &&
			    pci_cfg_read32(dev, 0, 0x10) == 0xffffffffu &&
			    ecam_read32(dev, 0, 0) == 0xffffffffu,
		    "pci-absent", "empty slot %u does not read all ones (0x%08x, ecam 0x%08x)", dev,
		    pci_cfg_read32(dev, 0, 0), ecam_read32(dev, 0, 0));
}

static void check_ecam(const struct func *f, unsigned int n)
{
	unsigned int i, off;

	for (i = 0; i < n; i++) {
		for (off = 0; off < 0x100; off += 4) {
			uint32_t a = pci_cfg_read32(f[i].dev, f[i].fn, off);
			uint32_t b = ecam_read32(f[i].dev, f[i].fn, off);

			if (a != b) {
				guest_fail("pci-ecam",
					   "00:%02x.%x offset 0x%02x: 0xcf8 reads 0x%08x, ECAM 0x%08x",
					   f[i].dev, f[i].fn, off, a, b);
				return;
			}
		}
	}
	guest_pass("pci-ecam");
}

/*
 * Sizes every BAR the way firmware does: decode off, write all ones, read the mask, put the
 * address back. Returns the size of the largest memory BAR (0 if none), or -1 after printing
 * a failure.
 */
static int64_t size_bars(const struct cfg_ops *ops, unsigned int dev, unsigned int fn,
			  const char *tname)
{
	uint32_t cmd = ops->read32(dev, fn, 0x04);
	int64_t largest = 0;
	unsigned int bar;

	/* Decode off while a BAR holds all ones; zeros in the upper half leave the RW1C
	 * status bits alone. */
	ops->write32(dev, fn, 0x04, cmd & 0xffffu & ~0x3u);
	for (bar = 0; bar < 6; bar++) {
		unsigned int off = 0x10 + 4 * bar;
		uint32_t orig = ops->read32(dev, fn, off), mask, orig_hi = 0, mask_hi = 0xffffffffu;
		int is64 = !(orig & 1) && ((orig >> 1) & 3) == 2;
		uint64_t size, addr;

		ops->write32(dev, fn, off, 0xffffffffu);
		mask = ops->read32(dev, fn, off);
		ops->write32(dev, fn, off, orig);
		if (is64) {
			if (bar == 5) {
				guest_fail(tname, "%s: BAR5 claims to be 64-bit", ops->name);
				goto fail;
			}
			orig_hi = ops->read32(dev, fn, off + 4);
			ops->write32(dev, fn, off + 4, 0xffffffffu);
			mask_hi = ops->read32(dev, fn, off + 4);
			ops->write32(dev, fn, off + 4, orig_hi);
		}
		if (ops->read32(dev, fn, off) != orig ||
		    (is64 && ops->read32(dev, fn, off + 4) != orig_hi)) {
			guest_fail(tname, "%s: BAR%u not restored (0x%08x, was 0x%08x)", ops->name,
				   bar, ops->read32(dev, fn, off), orig);
			goto fail;
		}
		if (mask == 0 && (!is64 || mask_hi == 0)) {
			if (orig != 0) {
				guest_fail(tname, "%s: unimplemented BAR%u reads 0x%08x", ops->name,
					   bar, orig);
				goto fail;
			}
			continue;
		}
		if ((mask & 0xf) != (orig & 0xf) && !(orig & 1)) {
			guest_fail(tname, "%s: BAR%u flag bits changed by sizing (0x%x -> 0x%x)",
				   ops->name, bar, orig & 0xf, mask & 0xf);
			goto fail;
		}
		if (orig & 1) {
			size = (~(uint64_t)((mask & ~0x3u) | 0xffff0000u) + 1) & 0xffff;
			addr = orig & ~0x3u;
		} else {
			size = ~(((uint64_t)mask_hi << 32) | (mask & ~0xfu)) + 1;
			addr = ((uint64_t)orig_hi << 32) | (orig & ~0xfu);
		}
		guest_printf("BAR 00:%02x.%x %u %s addr=0x%lx size=0x%lx%s (via %s)\n", dev, fn, bar,
			     orig & 1 ? "io" : "mem", (unsigned long)addr, (unsigned long)size,
			     is64 ? " 64-bit" : "", ops->name);
		if (size == 0 || (size & (size - 1)) || size < (orig & 1 ? 4u : 16u) ||
		    (addr & (size - 1))) {
			guest_fail(tname, "%s: BAR%u mask 0x%08x%08x gives bad size 0x%lx at 0x%lx",
				   ops->name, bar, mask_hi, mask, (unsigned long)size,
				   (unsigned long)addr);
			goto fail;
		}
		if (!(orig & 1) && addr == 0) {
			guest_fail(tname, "%s: memory BAR%u not assigned", ops->name, bar);
			goto fail;
		}
		if (!(orig & 1) && (int64_t)size > largest)
			largest = (int64_t)size;
		if (is64)
			bar++;
	}
	ops->write32(dev, fn, 0x04, cmd & 0xffffu);
	return largest;
fail:
	ops->write32(dev, fn, 0x04, cmd & 0xffffu);
	return -1;
}

static void check_bar_sizing(const struct func *f, unsigned int n)
{
	unsigned int i;
	int64_t a, b;

	for (i = 0; i < n; i++) {
		if ((f[i].id & 0xffff) == 0x1af4)
			break;
	}
	if (i == n) {
		guest_fail("pci-bar-sizing", "no virtio (1af4) function to size");
		return;
	}
	/* Modern virtio functions (1040-107f) must have revision 1 or more (spec 4.1.2.1). */
	if ((f[i].id >> 16) >= 0x1040)
		guest_check((f[i].class_rev & 0xff) >= 1, "pci-virtio-revision",
			    "00:%02x.%x revision %u", f[i].dev, f[i].fn, f[i].class_rev & 0xff);
	a = size_bars(&port_ops, f[i].dev, f[i].fn, "pci-bar-sizing");
	if (a < 0 || !guest_check(a >= 0x1000, "pci-bar-sizing",
				  "largest memory BAR 0x%lx, want >= 4 KiB", (unsigned long)a))
		return;
	b = size_bars(&ecam_ops, f[i].dev, f[i].fn, "pci-ecam-bar-sizing");
	if (b >= 0)
		guest_check(a == b, "pci-ecam-bar-sizing", "ECAM sizing 0x%lx, 0xcf8 sizing 0x%lx",
			    (unsigned long)b, (unsigned long)a);
	guest_check(pci_cfg_read16(f[i].dev, f[i].fn, 0x04) & 0x2, "pci-decode-restored",
		    "memory decode off after sizing (command 0x%04x)",
		    pci_cfg_read16(f[i].dev, f[i].fn, 0x04));
}

int main(void)
{
	static struct func funcs[MAX_FUNCS];
	unsigned int n;

	guest_puts("vmms test guest pci\n");
	check_conf_addr();
	n = enumerate(funcs);
	guest_printf("PCI functions=%u\n", n);
	check_host_bridge(funcs, n);
	check_subword(funcs, n);
	check_absent(funcs, n);
	check_ecam(funcs, n);
	check_bar_sizing(funcs, n);
	guest_printf("DONE pci failures=%u\n", guest_failures());
	return 0;
}
