// SPDX-License-Identifier: GPL-2.0-only
/* ACPI table builder: fixed tables as packed structs, the DSDT through a small AML encoder. */
#include "hv/acpi.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

#define OEM_ID       "VMMS  "
#define OEM_TABLE_ID "VMMSMACH"
#define CREATOR_ID   "VMMS"

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_addr;
	uint32_t length;
	uint64_t xsdt_addr;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_gas {
	uint8_t space_id; /* 1: system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_width; /* 0 undefined, 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));

struct acpi_facs {
	char signature[4];
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_waking_vector;
	uint8_t version;
	uint8_t reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));

struct acpi_fadt {
	struct acpi_header h;
	uint32_t facs, dsdt;
	uint8_t model, preferred_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk, pm_tmr_blk;
	uint32_t gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_blk_len, gpe1_blk_len;
	uint8_t gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_revision;
	uint64_t x_facs, x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control, sleep_status;
	uint64_t hypervisor_id;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP layout");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS layout");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT v6 layout");

/* FADT flags and IA-PC boot architecture flags */
#define FADT_WBINVD        (1u << 0)
#define FADT_PROC_C1       (1u << 2)
#define FADT_SLP_BUTTON    (1u << 5) /* no fixed sleep button; PWR_BUTTON (bit 4) stays clear */
#define FADT_FIX_RTC       (1u << 6)
#define FADT_RESET_REG_SUP (1u << 10)
#define BOOT_ARCH_LEGACY_DEVICES (1u << 0)
#define BOOT_ARCH_8042           (1u << 1)
#define BOOT_ARCH_NO_VGA         (1u << 2)

/* MADT */
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MPS_INTI_ACTIVE_HIGH 0x1
#define MPS_INTI_LEVEL 0xc

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return sum;
}

uint32_t acpi_eisa_id(const char *id)
{
	uint32_t v = 0;

	/* Three letters, 5 bits each (bits 30-16, bit 31 zero), then four hex digits; the
	 * 32-bit value is stored big-endian. */
	for (int i = 0; i < 3; i++)
		v = (v << 5) | ((uint32_t)(id[i] - 0x40) & 0x1f);
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d = c >= 'A' ? (uint32_t)(c - 'A' + 10) : (uint32_t)(c - '0');

		v = (v << 4) | (d & 0xf);
	}
	return __builtin_bswap32(v);
}

/* --- the AML encoder --------------------------------------------------------------------- */

#define AML_MAX_DEPTH 16

struct aml {
	uint8_t *p;
	size_t len, cap;
	int err;
	size_t open[AML_MAX_DEPTH];
	unsigned depth;
};

static void aml_put(struct aml *a, const void *data, size_t len)
{
	if (a->err)
		return;
	if (len > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memcpy(a->p + a->len, data, len);
	a->len += len;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_put(a, &b, 1);
}

/* Starts a PkgLength-prefixed body; the length is inserted when it is closed. */
static void aml_open(struct aml *a)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		a->err = -EINVAL;
		return;
	}
	a->open[a->depth++] = a->len;
}

static void aml_close(struct aml *a)
{
	size_t start, body;
	uint64_t total = 0;
	unsigned n;

	if (a->err)
		return;
	if (!a->depth) {
		a->err = -EINVAL;
		return;
	}
	start = a->open[--a->depth];
	body = a->len - start;
	for (n = 1; n <= 4; n++) {
		total = body + n;
		if (n == 1 ? total <= 0x3f : total < (1ULL << (4 + 8 * (n - 1))))
			break;
	}
	if (n > 4 || n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memmove(a->p + start + n, a->p + start, body);
	if (n == 1) {
		a->p[start] = (uint8_t)total;
	} else {
		a->p[start] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			a->p[start + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	a->len += n;
}

/* NameString from "\\_SB.PCI0"-style paths; segments shorter than 4 are padded with '_'. */
static void aml_namestring(struct aml *a, const char *path)
{
	char segs[8][4];
	unsigned n = 0;

	while (*path == '\\' || *path == '^')
		aml_byte(a, (uint8_t)*path++);
	while (*path && n < ARRAY_SIZE(segs)) {
		unsigned i = 0;

		memset(segs[n], '_', 4);
		while (*path && *path != '.' && i < 4)
			segs[n][i++] = *path++;
		if (*path == '.')
			path++;
		n++;
	}
	if (n == 0) {
		aml_byte(a, 0x00); /* NullName */
	} else if (n == 2) {
		aml_byte(a, 0x2e); /* DualNamePrefix */
	} else if (n > 2) {
		aml_byte(a, 0x2f); /* MultiNamePrefix */
		aml_byte(a, (uint8_t)n);
	}
	for (unsigned i = 0; i < n; i++)
		aml_put(a, segs[i], 4);
}

static void aml_int(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, 0x00); /* ZeroOp */
	} else if (v == 1) {
		aml_byte(a, 0x01); /* OneOp */
	} else if (v <= 0xff) {
		aml_byte(a, 0x0a);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		uint16_t w = (uint16_t)v;

		aml_byte(a, 0x0b);
		aml_put(a, &w, 2);
	} else if (v <= 0xffffffff) {
		uint32_t d = (uint32_t)v;

		aml_byte(a, 0x0c);
		aml_put(a, &d, 4);
	} else {
		aml_byte(a, 0x0e);
		aml_put(a, &v, 8);
	}
}

static void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = acpi_eisa_id(id);

	aml_byte(a, 0x0c); /* always a DWord, as iasl's EisaId() */
	aml_put(a, &v, 4);
}

static void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, 0x08); /* NameOp: a data object follows */
	aml_namestring(a, path);
}

static void aml_scope_open(struct aml *a, const char *path)
{
	aml_byte(a, 0x10);
	aml_open(a);
	aml_namestring(a, path);
}

static void aml_device_open(struct aml *a, const char *path)
{
	aml_byte(a, 0x5b); /* ExtOpPrefix */
	aml_byte(a, 0x82); /* DeviceOp */
	aml_open(a);
	aml_namestring(a, path);
}

static void aml_method_open(struct aml *a, const char *path, uint8_t nargs)
{
	aml_byte(a, 0x14);
	aml_open(a);
	aml_namestring(a, path);
	aml_byte(a, nargs & 7); /* not serialized, sync level 0 */
}

static void aml_return_int(struct aml *a, uint64_t v)
{
	aml_byte(a, 0xa4);
	aml_int(a, v);
}

static void aml_package_open(struct aml *a, uint8_t nelem)
{
	aml_byte(a, 0x12);
	aml_open(a);
	aml_byte(a, nelem);
}

static void aml_buffer(struct aml *a, const void *data, size_t len)
{
	aml_byte(a, 0x11);
	aml_open(a);
	aml_int(a, len);
	aml_put(a, data, len);
	aml_close(a);
}

/* --- resource templates (ACPI 6.x section 6.4) ------------------------------------------- */

struct res {
	uint8_t b[256];
	size_t len;
};

static void res_put(struct res *r, const void *data, size_t len)
{
	if (len <= sizeof(r->b) - r->len) {
		memcpy(r->b + r->len, data, len);
		r->len += len;
	} else {
		r->len = sizeof(r->b) + 1; /* poisoned: caught by res_end */
	}
}

/* Word address space descriptor: type 1 I/O, 2 bus number; producer, MinFixed, MaxFixed. */
static void res_word(struct res *r, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	uint8_t d[16] = { 0x88, 13, 0, type, 0x0c, tflags };
	uint16_t v[5] = { 0, min, max, 0, (uint16_t)(max - min + 1) };

	memcpy(d + 6, v, sizeof(v));
	res_put(r, d, sizeof(d));
}

static void res_io(struct res *r, uint16_t port, uint8_t len)
{
	uint8_t d[8] = { 0x47, 0x01, (uint8_t)port, (uint8_t)(port >> 8), (uint8_t)port,
			 (uint8_t)(port >> 8), 1, len };

	res_put(r, d, sizeof(d));
}

static void res_irq(struct res *r, uint8_t irq)
{
	uint16_t mask = (uint16_t)(1u << (irq & 15));
	uint8_t d[3] = { 0x22, (uint8_t)mask, (uint8_t)(mask >> 8) };

	res_put(r, d, sizeof(d));
}

/* Memory window: read-write, non-cacheable; DWord when it fits 32 bits, else QWord. */
static void res_mem(struct res *r, uint64_t base, uint64_t size)
{
	uint64_t max = base + size - 1;

	if (max <= 0xffffffff) {
		uint8_t d[26] = { 0x87, 23, 0, 0, 0x0c, 0x01 };
		uint32_t v[5] = { 0, (uint32_t)base, (uint32_t)max, 0, (uint32_t)size };

		memcpy(d + 6, v, sizeof(v));
		res_put(r, d, sizeof(d));
	} else {
		uint8_t d[46] = { 0x8a, 43, 0, 0, 0x0c, 0x01 };
		uint64_t v[5] = { 0, base, max, 0, size };

		memcpy(d + 6, v, sizeof(v));
		res_put(r, d, sizeof(d));
	}
}

static int res_end(struct res *r)
{
	uint8_t end[2] = { 0x79, 0x00 }; /* checksum 0: "treat as valid" */

	res_put(r, end, sizeof(end));
	return r->len <= sizeof(r->b) ? 0 : -ENOSPC;
}

/* --- tables ------------------------------------------------------------------------------ */

struct tbuf {
	uint8_t *p;
	size_t size, used;
	uint64_t base;
};

/* Reserves len bytes at the given alignment (guest-physical alignment: base is honoured). */
static uint8_t *tb_alloc(struct tbuf *t, size_t len, size_t align, uint64_t *ret_gpa)
{
	uint64_t gpa = ALIGN_UP(t->base + t->used, (uint64_t)align);
	size_t off = (size_t)(gpa - t->base);

	if (off > t->size || len > t->size - off)
		return NULL;
	t->used = off + len;
	*ret_gpa = gpa;
	memset(t->p + off, 0, len);
	return t->p + off;
}

static void hdr_fill(void *p, const char *sig, uint32_t len, uint8_t rev)
{
	struct acpi_header h = {
		.length = len, .revision = rev, .oem_revision = 1, .creator_revision = 1,
	};

	memcpy(h.signature, sig, 4);
	memcpy(h.oem_id, OEM_ID, 6);
	memcpy(h.oem_table_id, OEM_TABLE_ID, 8);
	memcpy(h.creator_id, CREATOR_ID, 4);
	memcpy(p, &h, sizeof(h));
}

static void table_sum(void *p, uint32_t len)
{
	struct acpi_header *h = p;

	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_checksum(p, len);
}

static unsigned ecam_end_bus(const struct acpi_config *c)
{
	return (unsigned)(MIN(c->ecam_size / MiB, 256) - 1);
}

static int dsdt_build(struct tbuf *t, const struct acpi_config *c, uint64_t *ret_gpa)
{
	uint64_t gpa;
	uint8_t *p = tb_alloc(t, sizeof(struct acpi_header), 8, &gpa);
	struct aml a = { 0 };
	struct res crs = { .len = 0 };
	unsigned end_bus = c->ecam_size ? ecam_end_bus(c) : 0;

	if (!p)
		return -ENOSPC;
	a.p = p + sizeof(struct acpi_header);
	a.cap = t->size - t->used;

	aml_name(&a, "\\_S5_");
	aml_package_open(&a, 4);
	aml_int(&a, c->slp_typ_s5);
	aml_int(&a, c->slp_typ_s5);
	aml_int(&a, 0);
	aml_int(&a, 0);
	aml_close(&a);

	aml_scope_open(&a, "\\_SB_");

	aml_device_open(&a, "PCI0");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0A08");
	aml_name(&a, "_CID");
	aml_eisaid(&a, "PNP0A03");
	aml_name(&a, "_SEG");
	aml_int(&a, 0);
	aml_name(&a, "_BBN");
	aml_int(&a, 0);
	aml_name(&a, "_UID");
	aml_int(&a, 0);
	res_word(&crs, 2, 0, 0, (uint16_t)end_bus);
	res_io(&crs, 0xcf8, 8);
	res_word(&crs, 1, 0x03, 0x0000, 0x0cf7);
	res_word(&crs, 1, 0x03, 0x0d00, 0xffff);
	if (c->pci_mmio_size)
		res_mem(&crs, c->pci_mmio_base, c->pci_mmio_size);
	if (res_end(&crs) < 0)
		return -ENOSPC;
	aml_name(&a, "_CRS");
	aml_buffer(&a, crs.b, crs.len);
	aml_close(&a); /* PCI0 */

	if (c->com1_port) {
		crs.len = 0;
		res_io(&crs, c->com1_port, 8);
		res_irq(&crs, c->com1_irq);
		if (res_end(&crs) < 0)
			return -ENOSPC;
		aml_device_open(&a, "COM1");
		aml_name(&a, "_HID");
		aml_eisaid(&a, "PNP0501");
		aml_name(&a, "_UID");
		aml_int(&a, 1);
		aml_method_open(&a, "_STA", 0);
		aml_return_int(&a, 0x0f); /* present, enabled, shown, functioning */
		aml_close(&a);
		aml_name(&a, "_CRS");
		aml_buffer(&a, crs.b, crs.len);
		aml_close(&a); /* COM1 */
	}
	aml_close(&a); /* \_SB */

	if (a.err)
		return a.err;
	if (a.depth)
		return -EINVAL;
	t->used += a.len;
	/* Revision 2: integers are 64-bit. */
	hdr_fill(p, "DSDT", (uint32_t)(sizeof(struct acpi_header) + a.len), 2);
	table_sum(p, (uint32_t)(sizeof(struct acpi_header) + a.len));
	*ret_gpa = gpa;
	return 0;
}

static struct acpi_gas gas_io(uint16_t port, uint8_t bytes)
{
	return (struct acpi_gas){ .space_id = 1, .bit_width = (uint8_t)(bytes * 8), .address = port };
}

static int fadt_build(struct tbuf *t, const struct acpi_config *c, uint64_t facs, uint64_t dsdt,
		      uint64_t *ret_gpa)
{
	uint8_t *p = tb_alloc(t, sizeof(struct acpi_fadt), 8, ret_gpa);
	struct acpi_fadt f = {
		.facs = (uint32_t)facs,
		.dsdt = (uint32_t)dsdt,
		.model = 1,
		.sci_int = (uint16_t)c->sci_irq,
		.smi_cmd = 0, /* ACPI mode is always on: no SMI handshake */
		.pm1a_evt_blk = c->pm1a_evt,
		.pm1a_cnt_blk = c->pm1a_cnt,
		.pm_tmr_blk = c->pm_tmr,
		.gpe0_blk = c->gpe0_blk,
		.pm1_evt_len = 4,
		.pm1_cnt_len = 2,
		.pm_tmr_len = 4,
		.gpe0_blk_len = c->gpe0_blk ? c->gpe0_len : 0,
		.p_lvl2_lat = 101, /* > 100: C2 not supported */
		.p_lvl3_lat = 1001, /* > 1000: C3 not supported */
		.century = 0x32,
		.iapc_boot_arch = BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 | BOOT_ARCH_NO_VGA,
		.flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC | FADT_RESET_REG_SUP,
		.reset_reg = { .space_id = 1, .bit_width = 8, .access_width = 1, .address = c->reset_port },
		.reset_value = c->reset_value,
		.minor_revision = 0,
		.x_facs = facs,
		.x_dsdt = dsdt,
		.x_pm1a_evt_blk = gas_io(c->pm1a_evt, 4),
		.x_pm1a_cnt_blk = gas_io(c->pm1a_cnt, 2),
		.x_pm_tmr_blk = gas_io(c->pm_tmr, 4),
	};

	if (!p)
		return -ENOSPC;
	if (c->gpe0_blk)
		f.x_gpe0_blk = gas_io(c->gpe0_blk, c->gpe0_len);
	memcpy(&f.hypervisor_id, "vmms\0\0\0", 8);
	hdr_fill(&f, "FACP", sizeof(f), 6);
	table_sum(&f, sizeof(f));
	memcpy(p, &f, sizeof(f));
	return 0;
}

static int madt_build(struct tbuf *t, const struct acpi_config *c, uint64_t *ret_gpa)
{
	uint32_t len = 44 + 8 * c->nr_cpus + 12 + 10 + 10 + 6;
	uint8_t *p = tb_alloc(t, len, 8, ret_gpa), *e;
	uint32_t v;

	if (!p)
		return -ENOSPC;
	hdr_fill(p, "APIC", len, 5);
	v = (uint32_t)c->lapic_addr;
	memcpy(p + 36, &v, 4);
	v = MADT_PCAT_COMPAT;
	memcpy(p + 40, &v, 4);
	e = p + 44;
	for (unsigned i = 0; i < c->nr_cpus; i++, e += 8) {
		e[0] = MADT_LAPIC;
		e[1] = 8;
		e[2] = (uint8_t)i; /* processor id */
		e[3] = (uint8_t)i; /* APIC id */
		v = 1;             /* enabled */
		memcpy(e + 4, &v, 4);
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = 0; /* IOAPIC id */
	v = (uint32_t)c->ioapic_addr;
	memcpy(e + 4, &v, 4);
	v = 0; /* GSI base */
	memcpy(e + 8, &v, 4);
	e += 12;
	/* ISA IRQ 0 (PIT) is wired to IOAPIC pin 2, as on every PC. */
	e[0] = MADT_ISO;
	e[1] = 10;
	e[3] = 0;
	v = 2;
	memcpy(e + 4, &v, 4);
	e += 10;
	/* The SCI is level triggered, active high, as QEMU describes it. */
	e[0] = MADT_ISO;
	e[1] = 10;
	e[3] = (uint8_t)c->sci_irq;
	v = c->sci_irq;
	memcpy(e + 4, &v, 4);
	e[8] = MPS_INTI_ACTIVE_HIGH | MPS_INTI_LEVEL;
	e += 10;
	/* LINT1 of every processor is NMI. */
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = 0xff;
	e[5] = 1;
	table_sum(p, len);
	return 0;
}

static int mcfg_build(struct tbuf *t, const struct acpi_config *c, uint64_t *ret_gpa)
{
	uint8_t *p = tb_alloc(t, 60, 8, ret_gpa);

	if (!p)
		return -ENOSPC;
	hdr_fill(p, "MCFG", 60, 1);
	memcpy(p + 44, &c->ecam_base, 8); /* segment 0 (bytes 52-53 stay 0), buses from 0 */
	p[55] = (uint8_t)ecam_end_bus(c);
	table_sum(p, 60);
	return 0;
}

static int config_check(const struct acpi_config *c, uint64_t base, size_t size)
{
	if (!c->nr_cpus || c->nr_cpus > 255)
		return -EINVAL;
	if (c->lapic_addr > 0xffffffffULL || c->ioapic_addr > 0xffffffffULL)
		return -EINVAL;
	if (c->sci_irq > 15 || (c->gpe0_blk && (c->gpe0_len == 0 || c->gpe0_len % 2)))
		return -EINVAL;
	if (c->ecam_size && (c->ecam_size % MiB || !range_within(c->ecam_base, c->ecam_size, UINT64_MAX)))
		return -EINVAL;
	if (c->pci_mmio_size && !range_within(c->pci_mmio_base, c->pci_mmio_size, UINT64_MAX))
		return -EINVAL;
	if (c->com1_port && c->com1_irq > 15)
		return -EINVAL;
	/* RSDT and the FADT's 32-bit fields hold table addresses: all below 4 GiB. */
	if (!IS_ALIGNED(base, 16) || !range_within(base, size, 4 * GiB))
		return -EINVAL;
	return 0;
}

int acpi_build(void *buf, size_t size, uint64_t base, const struct acpi_config *c,
	       uint64_t *ret_rsdp, size_t *ret_len)
{
	struct tbuf t = { .p = buf, .size = size, .base = base };
	uint64_t rsdp_gpa = 0, facs = 0, dsdt = 0, fadt = 0, madt = 0, mcfg = 0, rsdt = 0, xsdt = 0, tables[3];
	unsigned nt = 0;
	struct acpi_rsdp rsdp = { .revision = 2, .length = sizeof(rsdp) };
	struct acpi_facs *fp;
	uint8_t *rp, *p;
	int r;

	r = config_check(c, base, size);
	if (r < 0)
		return r;
	rp = tb_alloc(&t, sizeof(rsdp), 16, &rsdp_gpa);
	if (!rp)
		return -ENOSPC;
	/* FACS must be 64-byte aligned; it has no checksum. */
	fp = (struct acpi_facs *)tb_alloc(&t, sizeof(*fp), 64, &facs);
	if (!fp)
		return -ENOSPC;
	memcpy(fp->signature, "FACS", 4);
	fp->length = sizeof(*fp);
	fp->version = 2;

	r = dsdt_build(&t, c, &dsdt);
	if (r < 0)
		return r;
	r = fadt_build(&t, c, facs, dsdt, &fadt);
	if (r < 0)
		return r;
	r = madt_build(&t, c, &madt);
	if (r < 0)
		return r;
	tables[nt++] = fadt;
	tables[nt++] = madt;
	if (c->ecam_size) {
		r = mcfg_build(&t, c, &mcfg);
		if (r < 0)
			return r;
		tables[nt++] = mcfg;
	}

	p = tb_alloc(&t, 36 + 4 * nt, 8, &rsdt);
	if (!p)
		return -ENOSPC;
	hdr_fill(p, "RSDT", 36 + 4 * nt, 1);
	for (unsigned i = 0; i < nt; i++) {
		uint32_t a32 = (uint32_t)tables[i];

		memcpy(p + 36 + 4 * i, &a32, 4);
	}
	table_sum(p, 36 + 4 * nt);

	p = tb_alloc(&t, 36 + 8 * nt, 8, &xsdt);
	if (!p)
		return -ENOSPC;
	hdr_fill(p, "XSDT", 36 + 8 * nt, 1);
	memcpy(p + 36, tables, 8 * nt);
	table_sum(p, 36 + 8 * nt);

	memcpy(rsdp.signature, "RSD PTR ", 8);
	memcpy(rsdp.oem_id, OEM_ID, 6);
	rsdp.rsdt_addr = (uint32_t)rsdt;
	rsdp.xsdt_addr = xsdt;
	rsdp.checksum = (uint8_t)-acpi_checksum(&rsdp, 20); /* ACPI 1.0 part */
	rsdp.ext_checksum = (uint8_t)-acpi_checksum(&rsdp, sizeof(rsdp));
	memcpy(rp, &rsdp, sizeof(rsdp));

	*ret_rsdp = rsdp_gpa;
	*ret_len = t.used;
	return 0;
}
