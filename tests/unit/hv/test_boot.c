// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for the boot loaders: synthetic bzImage, PVH and ring-3 ELF images, hostile
 * headers, page tables walked back from guest memory, GDT and register state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/boot.h"

#define RAM (64ULL << 20)
#define ZERO_PAGE 0x7000ULL
#define GDT 0x9000ULL
#define TSS 0x10000ULL
#define PT 0xa000ULL
#define PT_SIZE 0x6000ULL
#define CMDLINE 0x20000ULL
#define KERNEL 0x100000ULL
#define RSDP 0xe0000ULL
#define PAYLOAD 0x3000u
#define INIT_SIZE (4u << 20)

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

struct fix {
	struct gmem m;
	struct e820_table e820;
	struct hv_boot_config cfg;
	uint8_t initrd[8192];
	char err[256];
};

static int setup_layout(void **state, const struct gmem_layout *lay, unsigned nr)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct e820_entry res[] = { { 0xe0000, 0x20000, E820_RESERVED }, { 0xe0000000, 0x100000, E820_RESERVED } };

	if (!f || gmem_init_anon(&f->m, lay, nr) < 0)
		return -1;
	if (e820_build(&f->e820, &f->m, res, 2) < 0)
		return -1;
	for (unsigned i = 0; i < sizeof(f->initrd); i++)
		f->initrd[i] = (uint8_t)(i * 7);
	f->cfg = (struct hv_boot_config){
		.initrd = hv_boot_blob_from_buf(f->initrd, sizeof(f->initrd)),
		.cmdline = "console=ttyS0 quiet",
		.zero_page = ZERO_PAGE, .gdt = GDT, .tss = TSS, .page_tables = PT, .page_tables_size = PT_SIZE,
		.cmdline_addr = CMDLINE, .cmdline_max = 0x10000, .kernel_addr = KERNEL, .rsdp = RSDP,
		.e820 = &f->e820,
	};
	*state = f;
	return 0;
}

static int setup(void **state)
{
	struct gmem_layout lay[] = { { 0, RAM } };

	return setup_layout(state, lay, 1);
}

static int setup_high(void **state)
{
	struct gmem_layout lay[] = { { 0, RAM }, { 0x100000000ULL, 4 << 20 } };

	return setup_layout(state, lay, 2);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	gmem_destroy(&f->m);
	free(f);
	return 0;
}

/* --- synthetic bzImage ------------------------------------------------------------------- */

static uint8_t *bz_make(size_t *ret_len)
{
	size_t len = 5 * 512 + PAYLOAD;
	uint8_t *b = calloc(1, len);

	assert_non_null(b);
	b[0x1f1] = 4;                      /* setup_sects */
	wr32(b + 0x1f4, PAYLOAD / 16);     /* syssize */
	wr16(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb;
	b[0x201] = 0x6a;                   /* header ends at 0x26c */
	memcpy(b + 0x202, "HdrS", 4);
	wr16(b + 0x206, 0x020f);
	b[0x211] = 0x01;                   /* LOADED_HIGH */
	wr32(b + 0x22c, 0x7fffffff);       /* initrd_addr_max */
	wr32(b + 0x230, 0x200000);         /* kernel_alignment */
	b[0x234] = 1;
	wr16(b + 0x236, 0x1 | 0x2);        /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
	wr32(b + 0x238, 2047);             /* cmdline_size */
	wr64(b + 0x250, 0xdeadbeef);       /* setup_data: must not be passed on */
	wr32(b + 0x260, INIT_SIZE);
	b[0x2a0] = 0x5a;                   /* past the header: must not be copied */
	for (unsigned i = 0; i < PAYLOAD; i++)
		b[5 * 512 + i] = (uint8_t)(i ^ 0x35);
	*ret_len = len;
	return b;
}

static int load_buf(struct fix *f, const void *img, size_t len, struct hv_boot_state *st)
{
	f->cfg.kernel = hv_boot_blob_from_buf(img, len);
	f->err[0] = 0;
	return hv_boot_load(&f->m, &f->cfg, st, f->err, sizeof(f->err));
}

static void test_bzimage_ok(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	size_t len;
	uint8_t *img = bz_make(&len), *bp, *k;
	uint32_t rd_addr;
	char *cmd;

	assert_int_equal(load_buf(f, img, len, &st), 0);
	assert_int_equal(st.kind, HV_BOOT_BZIMAGE);
	bp = gmem_ptr(&f->m, ZERO_PAGE, 4096);
	assert_int_equal(bp[0x210], 0xff);                 /* type_of_loader */
	assert_int_equal(bp[0x211], 0x81);                 /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(rd16(bp + 0x206), 0x020f);         /* header copied */
	assert_memory_equal(bp + 0x202, "HdrS", 4);
	assert_int_equal(rd16(bp + 0x224), 0xfe00);
	assert_int_equal(rd64(bp + 0x250), 0);             /* setup_data cleared */
	assert_int_equal(bp[0x2a0], 0);                    /* nothing past the header end */
	assert_int_equal(rd32(bp + 0x228), CMDLINE);
	cmd = gmem_ptr(&f->m, CMDLINE, 64);
	assert_string_equal(cmd, "console=ttyS0 quiet");
	assert_int_equal(rd64(bp + 0x70), RSDP);
	/* initrd: page aligned, above the kernel's init_size, as high as RAM allows */
	rd_addr = rd32(bp + 0x218);
	assert_int_equal(rd32(bp + 0x21c), sizeof(f->initrd));
	assert_int_equal(rd_addr % 4096, 0);
	assert_true(rd_addr >= KERNEL + INIT_SIZE);
	assert_int_equal(rd_addr, RAM - sizeof(f->initrd));
	assert_memory_equal(gmem_ptr(&f->m, rd_addr, sizeof(f->initrd)), f->initrd, sizeof(f->initrd));
	assert_int_equal(st.initrd_addr, rd_addr);
	/* e820 */
	assert_int_equal(bp[0x1e8], f->e820.nr);
	for (unsigned i = 0; i < f->e820.nr; i++) {
		assert_int_equal(rd64(bp + 0x2d0 + 20 * i), f->e820.e[i].addr);
		assert_int_equal(rd64(bp + 0x2d0 + 20 * i + 8), f->e820.e[i].size);
		assert_int_equal(rd32(bp + 0x2d0 + 20 * i + 16), f->e820.e[i].type);
	}
	/* protected-mode kernel at 1 MiB */
	k = gmem_ptr(&f->m, KERNEL, PAYLOAD);
	assert_memory_equal(k, img + 5 * 512, PAYLOAD);
	/* entry state: 64-bit, ring 0, __BOOT_CS/__BOOT_DS, RSI = zero page, IF clear */
	assert_int_equal(st.regs.rip, KERNEL + 0x200);
	assert_int_equal(st.regs.rsi, ZERO_PAGE);
	assert_int_equal(st.regs.rflags, 0x2);
	assert_int_equal(st.sregs.cs.selector, 0x10);
	assert_int_equal(st.sregs.cs.l, 1);
	assert_int_equal(st.sregs.cs.dpl, 0);
	assert_int_equal(st.sregs.ds.selector, 0x18);
	assert_int_equal(st.sregs.ss.selector, 0x18);
	assert_int_equal(st.sregs.cr3, PT);
	assert_true(st.sregs.cr0 & (1ULL << 31));
	assert_true(st.sregs.cr4 & (1ULL << 5));
	assert_int_equal(st.sregs.efer & 0x500, 0x500);
	assert_int_equal(st.sregs.gdt.base, GDT);
	free(img);
}

static void test_bzimage_initrd_addr_max(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	size_t len;
	uint8_t *img = bz_make(&len);

	wr32(img + 0x22c, (32u << 20) - 1);
	assert_int_equal(load_buf(f, img, len, &st), 0);
	assert_int_equal(st.initrd_addr, (32u << 20) - sizeof(f->initrd));
	/* No room between the kernel's init_size and initrd_addr_max. */
	wr32(img + 0x22c, KERNEL + INIT_SIZE + 4096);
	assert_int_equal(load_buf(f, img, len, &st), -ENOMEM);
	assert_non_null(strstr(f->err, "initrd"));
	free(img);
}

static void test_bzimage_rejects(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st = { .kind = HV_BOOT_NONE };
	size_t len;
	uint8_t *img = bz_make(&len), *bad = malloc(len);
	char longcmd[3000];

	assert_non_null(bad);
#define EXPECT(mutate, rc, what) do {                                        \
		memcpy(bad, img, len);                                        \
		mutate;                                                       \
		assert_int_equal(load_buf(f, bad, len, &st), rc);             \
		assert_non_null(strstr(f->err, what));                        \
	} while (0)
	EXPECT(memcpy(bad + 0x202, "HdrX", 4), -ENOEXEC, "not a bzImage or an ELF");
	EXPECT(wr16(bad + 0x206, 0x020b), -EINVAL, "too old");
	EXPECT(wr16(bad + 0x236, 0x2), -EINVAL, "64-bit");
	EXPECT(bad[0x211] = 0, -EINVAL, "zImage");
	EXPECT(bad[0x1f1] = 255, -EINVAL, "setup_sects");
	EXPECT(wr32(bad + 0x1f4, PAYLOAD / 16 + 1), -EINVAL, "syssize");
	EXPECT(wr32(bad + 0x1f4, 0xffffffff), -EINVAL, "syssize");
	EXPECT(wr32(bad + 0x1f4, 0), -EINVAL, "syssize");
	EXPECT(wr32(bad + 0x260, 0xfffff000), -ENOMEM, "do not fit");
	EXPECT(wr32(bad + 0x238, 5), -E2BIG, "command line");
#undef EXPECT
	/* Truncated at every length: never loads, never reads past the buffer (ASan). */
	for (size_t l = 0; l < len; l += 61) {
		uint8_t *t = malloc(l ? l : 1);

		memcpy(t, img, l);
		assert_true(load_buf(f, t, l, &st) < 0);
		free(t);
	}
	memset(longcmd, 'a', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = 0;
	f->cfg.cmdline = longcmd;
	assert_int_equal(load_buf(f, img, len, &st), -E2BIG);
	assert_int_equal(st.kind, HV_BOOT_NONE); /* untouched on failure */
	free(bad);
	free(img);
}

static void test_bzimage_from_fd(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	size_t len;
	uint8_t *img = bz_make(&len);
	int fd = memfd_create("bz", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, len), (ssize_t)len);
	assert_int_equal(hv_boot_blob_from_fd(fd, &f->cfg.kernel), 0);
	assert_int_equal(f->cfg.kernel.size, len);
	assert_int_equal(hv_boot_load(&f->m, &f->cfg, &st, f->err, sizeof(f->err)), 0);
	assert_memory_equal(gmem_ptr(&f->m, KERNEL, PAYLOAD), img + 5 * 512, PAYLOAD);
	close(fd);
	free(img);
}

static void test_not_a_kernel(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	uint8_t junk[4096];

	memset(junk, 0x90, sizeof(junk));
	assert_int_equal(load_buf(f, junk, sizeof(junk), &st), -ENOEXEC);
	assert_string_equal(f->err, "kernel: not a bzImage or an ELF with a PVH entry note");
	assert_int_equal(load_buf(f, junk, 0, &st), -ENOEXEC);
}

/* --- synthetic ELF ----------------------------------------------------------------------- */

struct elf_img {
	uint8_t b[0x3000];
	size_t len;
};

/* An ELF64 with one PT_NOTE (name/type/desc given) and one PT_LOAD at paddr. */
static void elf_make(struct elf_img *e, const char *note_name, uint32_t note_type, uint64_t desc,
		     uint64_t paddr, uint64_t entry)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)e->b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(e->b + sizeof(*eh));
	Elf64_Nhdr *nh = (Elf64_Nhdr *)(e->b + 0x200);
	uint32_t namesz = (uint32_t)strlen(note_name) + 1;

	memset(e, 0, sizeof(*e));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 2;
	nh->n_namesz = namesz;
	nh->n_descsz = 8;
	nh->n_type = note_type;
	memcpy(e->b + 0x200 + 12, note_name, namesz);
	memcpy(e->b + 0x200 + 12 + ((namesz + 3) & ~3u), &desc, 8);
	ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = 12 + 8 + 8, .p_align = 4 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 0x1000,
			      .p_vaddr = paddr, .p_paddr = paddr, .p_filesz = 0x1000, .p_memsz = 0x3000,
			      .p_align = 0x1000 };
	for (unsigned i = 0; i < 0x1000; i++)
		e->b[0x1000 + i] = (uint8_t)(i * 3 + 1);
	e->len = 0x2000;
}

static void test_pvh_ok(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	struct elf_img e;
	uint8_t *si, *seg;
	uint64_t memmap, modlist;

	elf_make(&e, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 0x200040, 0x200000, 0xffffffff81000000ULL);
	memset(gmem_ptr(&f->m, 0x200000, 0x3000), 0xaa, 0x3000);
	assert_int_equal(load_buf(f, e.b, e.len, &st), 0);
	assert_int_equal(st.kind, HV_BOOT_PVH);
	seg = gmem_ptr(&f->m, 0x200000, 0x3000);
	assert_memory_equal(seg, e.b + 0x1000, 0x1000);
	for (unsigned i = 0x1000; i < 0x3000; i++)
		assert_int_equal(seg[i], 0); /* bss zeroed */
	si = gmem_ptr(&f->m, ZERO_PAGE, 4096);
	assert_int_equal(rd32(si), 0x336ec578);
	assert_int_equal(rd32(si + 4), 1);
	assert_int_equal(rd32(si + 12), 1);            /* nr_modules */
	assert_int_equal(rd64(si + 24), CMDLINE);
	assert_int_equal(rd64(si + 32), RSDP);
	modlist = rd64(si + 16);
	assert_int_equal(rd64(gmem_ptr(&f->m, modlist, 32)), st.initrd_addr);
	assert_int_equal(rd64((uint8_t *)gmem_ptr(&f->m, modlist, 32) + 8), sizeof(f->initrd));
	assert_true(st.initrd_addr >= 0x203000);
	memmap = rd64(si + 40);
	assert_int_equal(rd32(si + 48), f->e820.nr);
	for (unsigned i = 0; i < f->e820.nr; i++) {
		uint8_t *me = gmem_ptr(&f->m, memmap + 24 * i, 24);

		assert_int_equal(rd64(me), f->e820.e[i].addr);
		assert_int_equal(rd64(me + 8), f->e820.e[i].size);
		assert_int_equal(rd32(me + 16), f->e820.e[i].type);
	}
	/* 32-bit protected mode, paging off, EBX = start_info */
	assert_int_equal(st.regs.rip, 0x200040);
	assert_int_equal(st.regs.rbx, ZERO_PAGE);
	assert_int_equal(st.sregs.cr0 & 0x80000001ULL, 1);
	assert_int_equal(st.sregs.efer, 0);
	assert_int_equal(st.sregs.cs.db, 1);
	assert_int_equal(st.sregs.cs.l, 0);
	assert_int_equal(st.sregs.cs.limit, 0xffffffff);
	assert_int_equal(st.sregs.tr.type, 11);
	assert_string_equal(gmem_ptr(&f->m, CMDLINE, 20), "console=ttyS0 quiet");
}

static void test_elf_rejects(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	struct elf_img e;
	Elf64_Ehdr *eh = (Elf64_Ehdr *)e.b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(e.b + sizeof(*eh));

#define GOOD() elf_make(&e, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 0x200040, 0x200000, 0)
	GOOD();
	elf_make(&e, "Linux", 1, 0, 0x200000, 0x200000);
	assert_int_equal(load_buf(f, e.b, e.len, &st), -ENOEXEC);
	assert_string_equal(f->err, "kernel: not a bzImage or an ELF with a PVH entry note");
	GOOD();
	ph[1].p_paddr = 1ULL << 30; /* outside 64 MiB of RAM */
	assert_int_equal(load_buf(f, e.b, e.len, &st), -ENOMEM);
	GOOD();
	ph[1].p_paddr = 0x8000; /* over the boot structures */
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	GOOD();
	ph[1].p_paddr = UINT64_MAX - 0x1000; /* wraps */
	assert_int_equal(load_buf(f, e.b, e.len, &st), -ENOMEM);
	GOOD();
	eh->e_phoff = e.len - 10; /* phdr table leaves the file */
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	assert_non_null(strstr(f->err, "outside the file"));
	GOOD();
	eh->e_phoff = UINT64_MAX - 8;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	GOOD();
	eh->e_phnum = 0xffff;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	GOOD();
	eh->e_phentsize = 8;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	GOOD();
	ph[1].p_filesz = 0x100000; /* segment data past the end of the file */
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	GOOD();
	ph[1].p_filesz = 0x4000; /* filesz > memsz */
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	GOOD();
	ph[0].p_filesz = 0xffffffff; /* note segment outside the file */
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	GOOD();
	((Elf64_Nhdr *)(e.b + 0x200))->n_descsz = 0xfffffff0; /* note runs off its segment */
	assert_int_equal(load_buf(f, e.b, e.len, &st), -ENOEXEC);
	GOOD();
	((Elf64_Nhdr *)(e.b + 0x200))->n_namesz = 0xffffffff;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -ENOEXEC);
	elf_make(&e, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 0x900000, 0x200000, 0);
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL); /* entry not loaded */
	elf_make(&e, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 0x100200040ULL, 0x200000, 0);
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL); /* entry not 32-bit */
	GOOD();
	eh->e_machine = EM_386;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	GOOD();
	for (size_t l = 0; l < e.len; l += 37)
		assert_true(load_buf(f, e.b, l, &st) < 0);
#undef GOOD
}

/* --- ring-3 test guest and page tables --------------------------------------------------- */

/* Walks the 4-level tables from guest memory; returns the physical address or -1, and the
 * AND of the U/S bits and the leaf's PCD bit. */
static uint64_t walk(const struct gmem *m, uint64_t cr3, uint64_t va, bool *user, bool *pcd)
{
	uint64_t table = cr3 & ~0xfffULL, e = 0;
	int shift = 39;

	*user = true;
	for (int level = 4; level >= 1; level--, shift -= 9) {
		uint64_t *t = gmem_ptr(m, table, 4096);

		assert_non_null(t);
		e = t[(va >> shift) & 511];
		if (!(e & 1))
			return (uint64_t)-1;
		assert_true(e & 2);
		*user = *user && (e & 4);
		if (level < 4 && (e & 0x80)) {
			uint64_t mask = (1ULL << shift) - 1;

			*pcd = e & 0x10;
			return (e & 0x000ffffffffff000ULL & ~mask) | (va & mask);
		}
		table = e & 0x000ffffffffff000ULL;
	}
	*pcd = e & 0x10;
	return table | (va & 0xfff);
}

static void test_ring3_ok(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	struct elf_img e;
	const uint64_t probes[] = { 0, 0x1234, 0x200040, RAM - 8, 0x3fffffff, 0x80000000ULL };
	const unsigned nr_ram_probes = 4;
	bool user, pcd;
	uint8_t *g, *t;
	uint64_t d;
	uint16_t iopb;

	elf_make(&e, "VMMS", VMMS_NOTE_RING3, 0, 0x200000, 0x200010);
	assert_int_equal(load_buf(f, e.b, e.len, &st), 0);
	assert_int_equal(st.kind, HV_BOOT_RING3);
	assert_int_equal(st.regs.rip, 0x200010);
	assert_int_equal(st.regs.rsp, 0);
	assert_int_equal(st.regs.rflags, 0x3002);
	assert_int_equal(st.sregs.cs.selector, 0x2b);
	assert_int_equal(st.sregs.cs.dpl, 3);
	assert_int_equal(st.sregs.cs.l, 1);
	assert_int_equal(st.sregs.ss.selector, 0x23);
	assert_int_equal(st.sregs.ss.dpl, 3);
	assert_int_equal(st.sregs.ds.selector, 0x23);
	assert_int_equal(st.sregs.idt.limit, 0);
	assert_int_equal(st.sregs.efer & 0x500, 0x500);
	assert_int_equal(st.sregs.cr3, PT);
	for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		assert_int_equal(walk(&f->m, st.sregs.cr3, probes[i], &user, &pcd), probes[i]);
		assert_true(user);
		/* RAM is cacheable; what holds no RAM (here all above 64 MiB) is uncached. */
		assert_int_equal(pcd, i >= nr_ram_probes);
	}
	/* The MMIO range 3-4 GiB is mapped, uncached. */
	assert_int_equal(walk(&f->m, st.sregs.cr3, 0xfee00000ULL, &user, &pcd), 0xfee00000ULL);
	assert_true(pcd);
	assert_int_equal(walk(&f->m, st.sregs.cr3, 0xc0001000ULL, &user, &pcd), 0xc0001000ULL);
	assert_true(pcd);
	/* Nothing above 4 GiB without RAM there. */
	assert_int_equal(walk(&f->m, st.sregs.cr3, 0x100000000ULL, &user, &pcd), (uint64_t)-1);
	/* GDT: user code at 0x28 is DPL 3, long mode; TSS base/limit; RSP0 and IOPB in the TSS */
	g = gmem_ptr(&f->m, GDT, 4096);
	d = rd64(g + 0x28);
	assert_int_equal((d >> 45) & 3, 3);
	assert_true(d & (1ULL << 53));
	assert_true(d & (1ULL << 47));
	/* TSS in its own area: limit covers an all-zero (all ports allowed) I/O bitmap, so
	 * I/O works where the guest's IOPL is not honoured in user mode (PVM). */
	d = rd64(g + 0x30);
	assert_int_equal((d & 0xffff) | (((d >> 48) & 0xf) << 16), HV_BOOT_TSS_SIZE + HV_BOOT_IOPB_SIZE);
	assert_int_equal(((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24), TSS);
	assert_int_equal((d >> 40) & 0xf, 0xb);
	t = gmem_ptr(&f->m, TSS, HV_BOOT_TSS_AREA_SIZE);
	assert_int_equal(rd64(t + 4), GDT + 4096);
	iopb = rd16(t + 0x66);
	assert_int_equal(iopb, HV_BOOT_TSS_SIZE);
	for (unsigned port = 0; port < 0x10000; port += 8)
		assert_int_equal(t[iopb + port / 8], 0);
	assert_int_equal(t[iopb + 0x2000], 0xff);
	assert_int_equal(st.sregs.tr.base, TSS);
	assert_int_equal(st.sregs.tr.limit, HV_BOOT_TSS_SIZE + HV_BOOT_IOPB_SIZE);
	/* The code64 descriptor Linux needs at 0x10 is DPL 0 */
	assert_int_equal((rd64(g + 0x10) >> 45) & 3, 0);
}

static void test_tss_in_gdt_page(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	struct elf_img e;
	uint8_t *g;
	uint64_t d;

	elf_make(&e, "VMMS", VMMS_NOTE_RING3, 0, 0x200000, 0x200010);
	f->cfg.tss = 0;
	assert_int_equal(load_buf(f, e.b, e.len, &st), 0);
	g = gmem_ptr(&f->m, GDT, 4096);
	d = rd64(g + 0x30);
	assert_int_equal(d & 0xffff, HV_BOOT_TSS_SIZE - 1);
	assert_int_equal(((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24), GDT + HV_BOOT_TSS_OFFSET);
	assert_int_equal(rd64(g + HV_BOOT_TSS_OFFSET + 4), GDT + 4096);
	assert_true(rd16(g + HV_BOOT_TSS_OFFSET + 0x66) > HV_BOOT_TSS_SIZE - 1); /* no bitmap */
	assert_int_equal(st.sregs.tr.base, GDT + HV_BOOT_TSS_OFFSET);
	/* A TSS area over the GDT page, or an image over the TSS area, is refused. */
	f->cfg.tss = GDT - 0x1000;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	assert_non_null(strstr(f->err, "TSS overlaps the GDT"));
	f->cfg.tss = 0x200000;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
}

static void test_ring3_not_identity(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	struct elf_img e;
	Elf64_Phdr *ph = (Elf64_Phdr *)(e.b + sizeof(Elf64_Ehdr));

	elf_make(&e, "VMMS", VMMS_NOTE_RING3, 0, 0x200000, 0x200010);
	ph[1].p_vaddr = 0x400000;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL);
	assert_non_null(strstr(f->err, "identity"));
}

static void test_high_ram_tables(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	struct elf_img e;
	bool user, pcd;
	uint64_t *pdpt;

	elf_make(&e, "VMMS", VMMS_NOTE_RING3, 0, 0x200000, 0x200010);
	/* 6 pages: no room for a 5th page directory, so a 1 GiB page maps RAM at 4 GiB. */
	assert_int_equal(load_buf(f, e.b, e.len, &st), 0);
	pdpt = gmem_ptr(&f->m, PT + 4096, 4096);
	assert_true(pdpt[4] & 0x80);
	assert_int_equal(walk(&f->m, PT, 0x100001000ULL, &user, &pcd), 0x100001000ULL);
	assert_true(user);
	/* 8 pages: 2 MiB pages there too, RAM only. */
	f->cfg.page_tables_size = 0x8000;
	assert_int_equal(load_buf(f, e.b, e.len, &st), -EINVAL); /* now over the TSS area */
	assert_non_null(strstr(f->err, "overlaps"));
	f->cfg.tss = 0x14000;
	assert_int_equal(load_buf(f, e.b, e.len, &st), 0);
	assert_false(pdpt[4] & 0x80);
	assert_int_equal(walk(&f->m, PT, 0x100201000ULL, &user, &pcd), 0x100201000ULL);
	assert_int_equal(walk(&f->m, PT, 0x100401000ULL, &user, &pcd), (uint64_t)-1);
	/* Linux gets the first 4 GiB only, kernel pages (U/S clear). */
	assert_int_equal(hv_boot_write_page_tables(&f->m, PT, 0x8000, false), 0);
	assert_int_equal(walk(&f->m, PT, 0x1000000, &user, &pcd), 0x1000000);
	assert_false(user);
	assert_int_equal(walk(&f->m, PT, 0x100001000ULL, &user, &pcd), (uint64_t)-1);
	assert_int_equal(hv_boot_write_page_tables(&f->m, PT, 0x5000, true), -EINVAL);
}

static void test_apply_sregs(void **state)
{
	struct fix *f = *state;
	struct hv_boot_state st;
	struct kvm_sregs s;
	struct elf_img e;

	elf_make(&e, "VMMS", VMMS_NOTE_RING3, 0, 0x200000, 0x200010);
	assert_int_equal(load_buf(f, e.b, e.len, &st), 0);
	memset(&s, 0, sizeof(s));
	s.apic_base = 0xfee00900;
	s.cr8 = 3;
	s.interrupt_bitmap[0] = 0x10;
	s.cs.selector = 0xf000;
	hv_boot_apply_sregs(&st, &s);
	assert_int_equal(s.apic_base, 0xfee00900);
	assert_int_equal(s.cr8, 3);
	assert_int_equal(s.interrupt_bitmap[0], 0x10);
	assert_memory_equal(&s.cs, &st.sregs.cs, sizeof(s.cs));
	assert_memory_equal(&s.tr, &st.sregs.tr, sizeof(s.tr));
	assert_int_equal(s.cr3, st.sregs.cr3);
	assert_int_equal(s.efer, st.sregs.efer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bzimage_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_initrd_addr_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_from_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_kernel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring3_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tss_in_gdt_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring3_not_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_high_ram_tables, setup_high, teardown),
		cmocka_unit_test_setup_teardown(test_apply_sregs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
