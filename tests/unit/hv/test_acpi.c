// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for the ACPI tables: checksums, pointers, FADT/MADT/MCFG fields, DSDT AML. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "hv/acpi.h"

#define BASE 0xe0000ULL
#define SIZE 0x20000

static const struct acpi_config cfg = {
	.nr_cpus = 3,
	.ioapic_addr = 0xfec00000, .lapic_addr = 0xfee00000,
	.pm1a_evt = 0x600, .pm1a_cnt = 0x604, .pm_tmr = 0x608, .reset_port = 0x60c,
	.reset_value = 1, .gpe0_blk = 0x610, .gpe0_len = 4, .sci_irq = 9,
	.ecam_base = 0xe0000000, .ecam_size = 0x100000,
	.pci_mmio_base = 0xc0000000, .pci_mmio_size = 0x20000000,
	.slp_typ_s5 = 5, .com1_port = 0x3f8, .com1_irq = 4,
};

static uint8_t buf[SIZE];

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* The table at a guest address, checked to lie in the buffer and to sum to 0. */
static const uint8_t *table_at(uint64_t gpa, size_t used, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	assert_true(gpa >= BASE && gpa - BASE + 36 <= used);
	t = buf + (gpa - BASE);
	len = rd32(t + 4);
	assert_true(gpa - BASE + len <= used);
	assert_memory_equal(t, sig, 4);
	assert_int_equal(acpi_checksum(t, len), 0);
	return t;
}

static const uint8_t *find(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
	for (size_t i = 0; i + nlen <= len; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return hay + i;
	return NULL;
}

static void build(uint64_t *rsdp, size_t *used)
{
	memset(buf, 0xcc, sizeof(buf));
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &cfg, rsdp, used), 0);
	assert_true(*used > 0 && *used <= sizeof(buf));
}

static void test_rsdp_and_xsdt(void **state)
{
	uint64_t rsdp;
	size_t used;
	const uint8_t *r, *x, *rs;
	unsigned n;
	bool fadt = false, madt = false, mcfg = false;

	build(&rsdp, &used);
	assert_int_equal(rsdp, BASE);
	r = buf;
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(r[15], 2);
	assert_int_equal(acpi_checksum(r, 20), 0);
	assert_int_equal(rd32(r + 20), 36);
	assert_int_equal(acpi_checksum(r, 36), 0);
	x = table_at(rd64(r + 24), used, "XSDT");
	rs = table_at(rd32(r + 16), used, "RSDT");
	n = (rd32(x + 4) - 36) / 8;
	assert_int_equal(n, 3);
	assert_int_equal((rd32(rs + 4) - 36) / 4, n);
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = rd64(x + 36 + 8 * i);
		const uint8_t *t = buf + (a - BASE);

		assert_int_equal(rd32(rs + 36 + 4 * i), a);
		if (!memcmp(t, "FACP", 4)) {
			fadt = true;
			(void)table_at(a, used, "FACP");
		} else if (!memcmp(t, "APIC", 4)) {
			madt = true;
			(void)table_at(a, used, "APIC");
		} else if (!memcmp(t, "MCFG", 4)) {
			mcfg = true;
			(void)table_at(a, used, "MCFG");
		}
	}
	assert_true(fadt && madt && mcfg);
}

static const uint8_t *xsdt_find(size_t used, const char *sig)
{
	const uint8_t *x = buf + (rd64(buf + 24) - BASE);
	unsigned n = (rd32(x + 4) - 36) / 8;

	for (unsigned i = 0; i < n; i++) {
		uint64_t a = rd64(x + 36 + 8 * i);

		if (!memcmp(buf + (a - BASE), sig, 4))
			return table_at(a, used, sig);
	}
	fail_msg("no %s table", sig);
	return NULL;
}

static void test_fadt(void **state)
{
	uint64_t rsdp, facs;
	size_t used;
	const uint8_t *f;
	uint32_t flags;

	build(&rsdp, &used);
	f = xsdt_find(used, "FACP");
	assert_int_equal(rd32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(rd16(f + 46), 9);        /* SCI_INT */
	assert_int_equal(rd32(f + 48), 0);        /* SMI_CMD: ACPI always enabled */
	assert_int_equal(rd32(f + 56), 0x600);    /* PM1a_EVT_BLK */
	assert_int_equal(rd32(f + 64), 0x604);    /* PM1a_CNT_BLK */
	assert_int_equal(rd32(f + 76), 0x608);    /* PM_TMR_BLK */
	assert_int_equal(rd32(f + 80), 0x610);    /* GPE0_BLK */
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	assert_int_equal(f[92], 4);
	flags = rd32(f + 112);
	assert_true(flags & (1u << 10));          /* RESET_REG_SUP */
	assert_false(flags & (1u << 4));          /* fixed power button */
	assert_false(flags & (1u << 20));         /* not HW-reduced */
	assert_int_equal(f[116], 1);              /* RESET_REG in system I/O */
	assert_int_equal(f[117], 8);
	assert_int_equal(rd64(f + 120), 0x60c);
	assert_int_equal(f[128], 1);              /* RESET_VALUE */
	facs = rd64(f + 132);
	assert_int_equal(rd32(f + 36), facs);
	assert_int_equal(facs % 64, 0);
	assert_memory_equal(buf + (facs - BASE), "FACS", 4);
	assert_int_equal(rd32(buf + (facs - BASE) + 4), 64);
	assert_int_equal(rd32(f + 40), rd64(f + 140));
	(void)table_at(rd64(f + 140), used, "DSDT");
	assert_int_equal(rd64(f + 148 + 4), 0x600); /* X_PM1a_EVT_BLK address */
}

static void test_madt(void **state)
{
	uint64_t rsdp;
	size_t used;
	const uint8_t *m, *e, *end;
	unsigned cpus = 0, ioapics = 0;
	bool irq0 = false, sci = false;

	build(&rsdp, &used);
	m = xsdt_find(used, "APIC");
	assert_int_equal(rd32(m + 36), 0xfee00000);
	end = m + rd32(m + 4);
	for (e = m + 44; e < end; e += e[1]) {
		assert_true(e[1] >= 2 && e + e[1] <= end);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[3], cpus);  /* APIC ids 0..n-1 in order */
			assert_int_equal(rd32(e + 4) & 1, 1);
			cpus++;
			break;
		case 1:
			assert_int_equal(e[2], 0);
			assert_int_equal(rd32(e + 4), 0xfec00000);
			assert_int_equal(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			if (e[3] == 0) {
				irq0 = true;
				assert_int_equal(rd32(e + 4), 2);
			} else if (e[3] == 9) {
				sci = true;
				assert_int_equal(rd32(e + 4), 9);
				assert_int_equal(rd16(e + 8), 0xd); /* level, active high */
			}
			break;
		}
	}
	assert_true(e == end);
	assert_int_equal(cpus, 3);
	assert_int_equal(ioapics, 1);
	assert_true(irq0 && sci);
}

static void test_mcfg(void **state)
{
	uint64_t rsdp;
	size_t used;
	const uint8_t *m;

	build(&rsdp, &used);
	m = xsdt_find(used, "MCFG");
	assert_int_equal(rd32(m + 4), 60);
	assert_int_equal(rd64(m + 44), 0xe0000000);
	assert_int_equal(rd16(m + 52), 0);
	assert_int_equal(m[54], 0);
	assert_int_equal(m[55], 0);
}

/* Decodes an AML PkgLength; returns its value and sets *n to its size in bytes. */
static uint32_t pkglen(const uint8_t *p, unsigned *n)
{
	unsigned extra = p[0] >> 6;
	uint32_t v = extra ? p[0] & 0xf : p[0] & 0x3f;

	for (unsigned i = 0; i < extra; i++)
		v |= (uint32_t)p[1 + i] << (4 + 8 * i);
	*n = extra + 1;
	return v;
}

static void test_dsdt(void **state)
{
	static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12 };
	static const uint8_t hid_pci[] = { '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08 };
	static const uint8_t hid_com[] = { '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	static const uint8_t cf8[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
	uint64_t rsdp;
	size_t used;
	const uint8_t *f, *d, *p, *aml;
	uint32_t len, l;
	unsigned n;

	build(&rsdp, &used);
	f = xsdt_find(used, "FACP");
	d = table_at(rd64(f + 140), used, "DSDT");
	len = rd32(d + 4);
	aml = d + 36;
	/* Name(\_S5_, Package(4) {5, 5, 0, 0}) */
	p = find(aml, len - 36, s5, sizeof(s5));
	assert_non_null(p);
	p += sizeof(s5);
	l = pkglen(p, &n);
	assert_int_equal(l, n + 1 + 2 + 2 + 1 + 1);
	assert_int_equal(p[n], 4);
	assert_int_equal(p[n + 1], 0x0a);
	assert_int_equal(p[n + 2], 5);
	assert_int_equal(p[n + 3], 0x0a);
	assert_int_equal(p[n + 4], 5);
	/* The \_SB scope follows and its PkgLength covers the rest of the table exactly. */
	p += l;
	assert_int_equal(p[0], 0x10);
	l = pkglen(p + 1, &n);
	assert_int_equal(p + 1 + l, d + len);
	assert_memory_equal(p + 1 + n, "\\_SB_", 5);
	assert_non_null(find(aml, len - 36, hid_pci, sizeof(hid_pci)));
	assert_non_null(find(aml, len - 36, hid_com, sizeof(hid_com)));
	assert_non_null(find(aml, len - 36, cf8, sizeof(cf8)));
	assert_non_null(find(aml, len - 36, "PCI0", 4));
}

static void test_eisa_id(void **state)
{
	assert_int_equal(acpi_eisa_id("PNP0A03"), 0x030ad041);
	assert_int_equal(acpi_eisa_id("PNP0A08"), 0x080ad041);
	assert_int_equal(acpi_eisa_id("PNP0501"), 0x0105d041);
}

static void test_too_small_and_bad_config(void **state)
{
	uint64_t rsdp = 0x1234;
	size_t used = 0, need;
	struct acpi_config c = cfg;

	build(&rsdp, &need);
	assert_int_equal(acpi_build(buf, 16, BASE, &cfg, &rsdp, &used), -ENOSPC);
	for (size_t s = need - 64; s < need; s++)
		assert_int_equal(acpi_build(buf, s, BASE, &cfg, &rsdp, &used), -ENOSPC);
	assert_int_equal(acpi_build(buf, need, BASE, &cfg, &rsdp, &used), 0);
	assert_int_equal(used, need);
	c.nr_cpus = 0;
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c, &rsdp, &used), -EINVAL);
	c.nr_cpus = 256;
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg;
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE + 4, &c, &rsdp, &used), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), 0xfffff000ULL, &c, &rsdp, &used), -EINVAL);
}

static void test_many_cpus_no_mcfg(void **state)
{
	struct acpi_config c = cfg;
	uint64_t rsdp;
	size_t used;
	const uint8_t *x, *m;
	unsigned cpus = 0;

	c.nr_cpus = 255;
	c.ecam_size = 0;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c, &rsdp, &used), 0);
	x = table_at(rd64(buf + 24), used, "XSDT");
	assert_int_equal(rd32(x + 4), 36 + 2 * 8);
	m = xsdt_find(used, "APIC");
	for (const uint8_t *e = m + 44; e < m + rd32(m + 4); e += e[1])
		if (e[0] == 0)
			assert_int_equal(e[3], cpus++);
	assert_int_equal(cpus, 255);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp_and_xsdt),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_madt),
		cmocka_unit_test(test_mcfg),
		cmocka_unit_test(test_dsdt),
		cmocka_unit_test(test_eisa_id),
		cmocka_unit_test(test_too_small_and_bad_config),
		cmocka_unit_test(test_many_cpus_no_mcfg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
