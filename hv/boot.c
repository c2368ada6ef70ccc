// SPDX-License-Identifier: GPL-2.0-only
/* Boot image dispatch and what every entry kind shares: image reads, GDT/TSS, identity page
 * tables, command line, initrd placement and the initial register state. */
#include "hv/boot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"

#define PAGE_SIZE 4096ULL
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))

/* Page-table entry bits */
#define PTE_P   (1ULL << 0)
#define PTE_RW  (1ULL << 1)
#define PTE_US  (1ULL << 2)
#define PTE_PWT (1ULL << 3)
#define PTE_PCD (1ULL << 4)
#define PTE_PS  (1ULL << 7)

#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define RFLAGS_FIXED 0x2ULL
#define RFLAGS_IOPL3 0x3000ULL

int hv_boot_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

int hv_boot_blob_from_fd(int fd, struct hv_boot_blob *ret)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > HV_BOOT_IMAGE_MAX)
		return -EFBIG;
	*ret = (struct hv_boot_blob){ .fd = fd, .size = (uint64_t)st.st_size };
	return 0;
}

struct hv_boot_blob hv_boot_blob_from_buf(const void *buf, uint64_t size)
{
	return (struct hv_boot_blob){ .fd = -1, .buf = buf, .size = size };
}

int hv_boot_blob_read(const struct hv_boot_blob *b, uint64_t off, void *dst, uint64_t len)
{
	uint8_t *p = dst;

	if (!range_within(off, len, b->size))
		return -EINVAL;
	if (b->fd < 0) {
		if (!b->buf)
			return -EINVAL;
		memcpy(dst, (const uint8_t *)b->buf + off, len);
		return 0;
	}
	while (len) {
		ssize_t n = pread(b->fd, p, MIN(len, (uint64_t)1 << 30), (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* file shrank under us */
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

int hv_boot_check_range(const struct gmem *m, const struct hv_boot_config *cfg, uint64_t addr,
			uint64_t size)
{
	if (!size || !range_within(addr, size, UINT64_MAX) || !gmem_ptr(m, addr, size))
		return -ENOMEM;
	if (ranges_overlap(addr, size, cfg->zero_page, PAGE_SIZE) ||
	    ranges_overlap(addr, size, cfg->gdt, PAGE_SIZE) ||
	    (cfg->tss && ranges_overlap(addr, size, cfg->tss, HV_BOOT_TSS_AREA_SIZE)) ||
	    ranges_overlap(addr, size, cfg->page_tables, cfg->page_tables_size) ||
	    ranges_overlap(addr, size, cfg->cmdline_addr, cfg->cmdline_max))
		return -EINVAL;
	return 0;
}

int hv_boot_check_config(const struct hv_boot_config *cfg, char *err, size_t errlen)
{
	const struct { const char *name; uint64_t addr, size; } a[] = {
		{ "zero page", cfg->zero_page, PAGE_SIZE },
		{ "GDT", cfg->gdt, PAGE_SIZE },
		{ "TSS", cfg->tss, cfg->tss ? HV_BOOT_TSS_AREA_SIZE : 0 },
		{ "page tables", cfg->page_tables, cfg->page_tables_size },
		{ "command line", cfg->cmdline_addr, cfg->cmdline_max },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(a); i++) {
		if (!range_within(a[i].addr, a[i].size, UINT64_MAX))
			return hv_boot_err(err, errlen, -EINVAL, "boot %s: range wraps", a[i].name);
		for (unsigned j = 0; j < i; j++)
			if (ranges_overlap(a[i].addr, a[i].size, a[j].addr, a[j].size))
				return hv_boot_err(err, errlen, -EINVAL, "boot %s overlaps the %s",
						   a[i].name, a[j].name);
	}
	return 0;
}

int hv_boot_write_cmdline(const struct gmem *m, const struct hv_boot_config *cfg, uint64_t max_len,
			  char *err, size_t errlen)
{
	const char *s = cfg->cmdline ? cfg->cmdline : "";
	uint64_t limit = MIN(max_len, cfg->cmdline_max ? cfg->cmdline_max - 1 : 0);
	size_t len = strnlen(s, limit + 1);

	if (len > limit)
		return hv_boot_err(err, errlen, -E2BIG,
				   "kernel command line: longer than %llu bytes",
				   (unsigned long long)limit);
	if (gmem_write(m, cfg->cmdline_addr, s, len + 1) < 0)
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel command line: address 0x%llx is not guest RAM",
				   (unsigned long long)cfg->cmdline_addr);
	return 0;
}

int hv_boot_load_initrd(const struct gmem *m, const struct hv_boot_config *cfg, uint64_t lowest,
			uint64_t limit, uint64_t *ret_addr, char *err, size_t errlen)
{
	uint64_t size = cfg->initrd.size, addr = 0;
	bool found = false;
	void *dst;
	int r;

	if (!size) {
		*ret_addr = 0;
		return 0;
	}
	if (size > HV_BOOT_IMAGE_MAX)
		return hv_boot_err(err, errlen, -EFBIG, "initrd: larger than %llu bytes",
				   (unsigned long long)HV_BOOT_IMAGE_MAX);
	/* Highest region first: the initrd goes as high as allowed, the way boot loaders do,
	 * so the kernel's decompression area below it stays free. */
	for (unsigned i = m->nr; i-- > 0 && !found;) {
		uint64_t lo = m->r[i].gpa, hi = m->r[i].gpa + m->r[i].size;
		uint64_t top = MIN(hi, limit);

		if (top <= lo || top - lo < size)
			continue;
		addr = ALIGN_DOWN(top - size, PAGE_SIZE);
		if (addr < lo || addr < lowest)
			continue;
		found = hv_boot_check_range(m, cfg, addr, size) == 0;
	}
	if (!found)
		return hv_boot_err(err, errlen, -ENOMEM,
				   "initrd: %llu bytes do not fit in guest RAM between 0x%llx and 0x%llx",
				   (unsigned long long)size, (unsigned long long)lowest,
				   (unsigned long long)limit);
	dst = gmem_ptr(m, addr, size);
	r = dst ? hv_boot_blob_read(&cfg->initrd, 0, dst, size) : -EFAULT;
	if (r < 0)
		return hv_boot_err(err, errlen, r, "initrd: read failed: %s", strerror(-r));
	*ret_addr = addr;
	return 0;
}

/* --- GDT and TSS --------------------------------------------------------------------------- */

static struct kvm_segment seg_flat(uint16_t sel, uint8_t type, bool code64, bool db)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.dpl = sel & 3, .db = db, .s = 1, .l = code64, .g = 1,
	};
}

/* With a TSS area the limit covers the whole I/O bitmap and its terminator byte. */
static struct kvm_segment seg_tss(uint64_t gdt, uint64_t tss)
{
	return (struct kvm_segment){
		.base = tss ? tss : gdt + HV_BOOT_TSS_OFFSET,
		.limit = tss ? HV_BOOT_TSS_SIZE + HV_BOOT_IOPB_SIZE : HV_BOOT_TSS_SIZE - 1,
		.selector = HV_BOOT_SEL_TSS, .type = 11 /* busy TSS */, .present = 1,
	};
}

/* The GDT descriptor that matches a kvm_segment (bytes 0-7). */
static uint64_t seg_desc(const struct kvm_segment *s)
{
	uint64_t limit = s->g ? s->limit >> 12 : s->limit;

	return (limit & 0xffff) | ((s->base & 0xffffff) << 16) | ((uint64_t)(s->type & 0xf) << 40) |
	       ((uint64_t)s->s << 44) | ((uint64_t)(s->dpl & 3) << 45) | ((uint64_t)s->present << 47) |
	       (((limit >> 16) & 0xf) << 48) | ((uint64_t)s->l << 53) | ((uint64_t)s->db << 54) |
	       ((uint64_t)s->g << 55) | (((s->base >> 24) & 0xff) << 56);
}

int hv_boot_write_gdt(const struct gmem *m, uint64_t gdt, uint64_t tss)
{
	uint8_t *page = gmem_ptr(m, gdt, PAGE_SIZE);
	uint8_t *t = tss ? gmem_ptr(m, tss, HV_BOOT_TSS_AREA_SIZE) : page + HV_BOOT_TSS_OFFSET;
	struct kvm_segment segs[] = {
		seg_flat(HV_BOOT_SEL_CODE32, 0xb, false, true),
		seg_flat(HV_BOOT_SEL_CODE64, 0xb, true, false),
		seg_flat(HV_BOOT_SEL_DATA, 0x3, false, true),
		seg_flat(HV_BOOT_SEL_UDATA, 0x3, false, true),
		seg_flat(HV_BOOT_SEL_UCODE, 0xb, true, false),
	};
	struct kvm_segment tr = seg_tss(gdt, tss);
	uint64_t d[HV_BOOT_GDT_SIZE / 8] = { 0 }, rsp0 = gdt + PAGE_SIZE;
	uint16_t iopb = HV_BOOT_TSS_SIZE;

	if (!page || !IS_ALIGNED(gdt, PAGE_SIZE) || !t)
		return -EFAULT;
	if (tss && ranges_overlap(tss, HV_BOOT_TSS_AREA_SIZE, gdt, PAGE_SIZE))
		return -EFAULT;
	memset(page, 0, PAGE_SIZE);
	if (tss) {
		/* Bitmap all zero: every port allowed; the spec wants a trailing 0xff byte. */
		memset(t, 0, HV_BOOT_TSS_AREA_SIZE);
		t[HV_BOOT_TSS_SIZE + HV_BOOT_IOPB_SIZE] = 0xff;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(segs); i++)
		d[segs[i].selector >> 3] = seg_desc(&segs[i]);
	d[HV_BOOT_SEL_TSS >> 3] = seg_desc(&tr);
	d[(HV_BOOT_SEL_TSS >> 3) + 1] = tr.base >> 32;
	memcpy(page, d, sizeof(d));
	/* 64-bit TSS: RSP0 at +4 so a ring-3 guest's interrupt or exception has a stack (it
	 * triple-faults anyway with IDT limit 0). The I/O bitmap starts right after the TSS:
	 * inside the limit with a TSS area, past the limit (no bitmap) without one. */
	memcpy(t + 4, &rsp0, sizeof(rsp0));
	memcpy(t + 0x66, &iopb, sizeof(iopb));
	return 0;
}

/* --- page tables ----------------------------------------------------------------------------- */

static bool has_ram(const struct gmem *m, uint64_t lo, uint64_t len)
{
	for (unsigned i = 0; i < m->nr; i++)
		if (ranges_overlap(lo, len, m->r[i].gpa, m->r[i].size))
			return true;
	return false;
}

int hv_boot_write_page_tables(const struct gmem *m, uint64_t base, uint64_t size, bool user)
{
	uint64_t top = 4 * GiB, npages, gib, flags = PTE_P | PTE_RW | (user ? PTE_US : 0);
	uint64_t *pml4, *pdpt;
	bool small_high;
	uint8_t *area;

	if (!IS_ALIGNED(base, PAGE_SIZE) || size < 6 * PAGE_SIZE)
		return -EINVAL;
	if (user)
		for (unsigned i = 0; i < m->nr && i < GMEM_MAX_REGIONS; i++)
			top = MAX(top, ALIGN_UP(m->r[i].gpa + m->r[i].size, GiB));
	/* One PDPT covers 512 GiB; more RAM than that has no use in a test guest. */
	if (top > 512 * GiB)
		return -EINVAL;
	gib = top / GiB;
	small_high = 2 + gib <= size / PAGE_SIZE;
	npages = small_high ? 2 + gib : 6;
	area = gmem_ptr(m, base, npages * PAGE_SIZE);
	if (!area)
		return -EFAULT;
	memset(area, 0, npages * PAGE_SIZE);
	pml4 = (uint64_t *)area;
	pdpt = (uint64_t *)(area + PAGE_SIZE);
	pml4[0] = (base + PAGE_SIZE) | flags;
	for (uint64_t g = 0; g < gib; g++) {
		uint64_t *pd = (uint64_t *)(area + (2 + g) * PAGE_SIZE);

		if (g >= 4 && !small_high) {
			/* Too little room for page directories: a 1 GiB page per GiB holding RAM. */
			if (has_ram(m, g * GiB, GiB))
				pdpt[g] = (g * GiB) | flags | PTE_PS;
			continue;
		}
		if (g >= 4 && !has_ram(m, g * GiB, GiB))
			continue;
		pdpt[g] = (base + (2 + g) * PAGE_SIZE) | flags;
		for (uint64_t i = 0; i < 512; i++) {
			uint64_t pa = g * GiB + i * 2 * MiB;

			if (has_ram(m, pa, 2 * MiB))
				pd[i] = pa | flags | PTE_PS;
			else if (g < 4) /* the MMIO hole below 4 GiB: uncached */
				pd[i] = pa | flags | PTE_PS | PTE_PCD | PTE_PWT;
		}
	}
	return 0;
}

/* --- register state -------------------------------------------------------------------------- */

int hv_boot_finish(const struct gmem *m, const struct hv_boot_config *cfg, enum hv_boot_kind kind,
		   uint64_t entry, struct hv_boot_state *st, char *err, size_t errlen)
{
	struct kvm_sregs *s = &st->sregs;
	struct kvm_segment code, data;
	int r;

	r = hv_boot_write_gdt(m, cfg->gdt, cfg->tss);
	if (r < 0)
		return hv_boot_err(err, errlen, r,
				   "boot GDT 0x%llx / TSS 0x%llx: not guest RAM or overlapping",
				   (unsigned long long)cfg->gdt, (unsigned long long)cfg->tss);
	if (kind != HV_BOOT_PVH) {
		r = hv_boot_write_page_tables(m, cfg->page_tables, cfg->page_tables_size,
					      kind == HV_BOOT_RING3);
		if (r < 0)
			return hv_boot_err(err, errlen, r,
					   "boot page tables at 0x%llx (%llu bytes): %s",
					   (unsigned long long)cfg->page_tables,
					   (unsigned long long)cfg->page_tables_size, strerror(-r));
	}

	memset(&st->regs, 0, sizeof(st->regs));
	memset(s, 0, sizeof(*s));
	st->kind = kind;
	st->entry = entry;
	st->regs.rip = entry;
	st->regs.rflags = RFLAGS_FIXED;

	switch (kind) {
	case HV_BOOT_PVH:
		code = seg_flat(HV_BOOT_SEL_CODE32, 0xb, false, true);
		data = seg_flat(HV_BOOT_SEL_DATA, 0x3, false, true);
		s->cr0 = CR0_PE | CR0_ET;
		st->regs.rbx = cfg->zero_page;
		break;
	case HV_BOOT_RING3:
		code = seg_flat(HV_BOOT_SEL_UCODE, 0xb, true, false);
		data = seg_flat(HV_BOOT_SEL_UDATA, 0x3, false, true);
		s->cr0 = CR0_PE | CR0_ET | CR0_PG;
		s->cr3 = cfg->page_tables;
		s->cr4 = CR4_PAE;
		s->efer = EFER_LME | EFER_LMA;
		/* IOPL 3 so the guest's in/out reach the VMM without a #GP. */
		st->regs.rflags |= RFLAGS_IOPL3;
		st->regs.rdi = cfg->cmdline_addr;
		break;
	case HV_BOOT_BZIMAGE:
		code = seg_flat(HV_BOOT_SEL_CODE64, 0xb, true, false);
		data = seg_flat(HV_BOOT_SEL_DATA, 0x3, false, true);
		s->cr0 = CR0_PE | CR0_ET | CR0_PG;
		s->cr3 = cfg->page_tables;
		s->cr4 = CR4_PAE;
		s->efer = EFER_LME | EFER_LMA;
		st->regs.rsi = cfg->zero_page;
		st->regs.rsp = st->regs.rbp = cfg->gdt + PAGE_SIZE;
		break;
	default:
		return hv_boot_err(err, errlen, -EINVAL, "boot: unknown kind %d", kind);
	}
	s->cs = code;
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = seg_tss(cfg->gdt, cfg->tss);
	/* The reset-state LDT: no LDT in use, but a well-formed descriptor state for KVM. */
	s->ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	s->gdt = (struct kvm_dtable){ .base = cfg->gdt, .limit = HV_BOOT_GDT_SIZE - 1 };
	/* IDT limit 0: any exception or interrupt becomes a triple fault, the crash signal. */
	s->idt = (struct kvm_dtable){ .base = 0, .limit = 0 };
	return 0;
}

void hv_boot_apply_sregs(const struct hv_boot_state *st, struct kvm_sregs *inout)
{
	const struct kvm_sregs *s = &st->sregs;

	inout->cs = s->cs;
	inout->ds = s->ds;
	inout->es = s->es;
	inout->fs = s->fs;
	inout->gs = s->gs;
	inout->ss = s->ss;
	inout->tr = s->tr;
	inout->ldt = s->ldt;
	inout->gdt = s->gdt;
	inout->idt = s->idt;
	inout->cr0 = s->cr0;
	inout->cr3 = s->cr3;
	inout->cr4 = s->cr4;
	inout->efer = s->efer;
}

/* --- dispatch -------------------------------------------------------------------------------- */

int hv_boot_load(const struct gmem *m, const struct hv_boot_config *cfg, struct hv_boot_state *ret,
		 char *err, size_t errlen)
{
	uint8_t hdr[0x206];
	int r;

	if (cfg->kernel.size > HV_BOOT_IMAGE_MAX)
		return hv_boot_err(err, errlen, -EFBIG, "kernel: larger than %llu bytes",
				   (unsigned long long)HV_BOOT_IMAGE_MAX);
	r = hv_boot_check_config(cfg, err, errlen);
	if (r < 0)
		return r;
	memset(hdr, 0, sizeof(hdr));
	r = hv_boot_blob_read(&cfg->kernel, 0, hdr, MIN(cfg->kernel.size, sizeof(hdr)));
	if (r < 0 && r != -EINVAL)
		return hv_boot_err(err, errlen, r, "kernel: read failed: %s", strerror(-r));
	if (cfg->kernel.size >= sizeof(hdr) && memcmp(hdr + 0x202, "HdrS", 4) == 0)
		return hv_boot_load_bzimage(m, cfg, ret, err, errlen);
	if (cfg->kernel.size >= 4 && memcmp(hdr, "\177ELF", 4) == 0)
		return hv_boot_load_elf(m, cfg, ret, err, errlen);
	return hv_boot_err(err, errlen, -ENOEXEC,
			   "kernel: not a bzImage or an ELF with a PVH entry note");
}
