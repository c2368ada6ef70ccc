// SPDX-License-Identifier: GPL-2.0-only
/* ELF loaders: PVH kernels (Xen PHYS32_ENTRY note, hvm_start_info) and vmms ring-3 test
 * guests ("VMMS" note). The ELF file is hostile: every header, table and note is bounded. */
#include "hv/boot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "lib/util.h"

#define ELF_MAX_PHNUM 64
#define ELF_MAX_NOTE_SEGMENT (64 * KiB)
#define NOTE_ALIGN(x) (((x) + 3ULL) & ~3ULL)

/* struct hvm_start_info and friends, as xen/include/public/arch-x86/hvm/start_info.h. */
#define HVM_START_MAGIC 0x336ec578u
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* version 1 */
	uint32_t memmap_entries; /* version 1 */
	uint32_t reserved;
} __attribute__((packed));

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
} __attribute__((packed));

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(HV_BOOT_PVH_MEMMAP_OFFSET + E820_MAX_ENTRIES * sizeof(struct hvm_memmap_table_entry) <= 4096,
	       "PVH memmap fits the zero page");

struct elf_kind {
	enum hv_boot_kind kind;
	uint64_t entry;
};

/* Walks the notes of one PT_NOTE segment (hostile sizes, each checked against the segment). */
static void notes_scan(const uint8_t *p, uint64_t len, struct elf_kind *k)
{
	uint64_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_off, desc_off, next;

		memcpy(&nh, p + off, sizeof(nh));
		name_off = off + sizeof(nh);
		desc_off = name_off + NOTE_ALIGN((uint64_t)nh.n_namesz);
		next = desc_off + NOTE_ALIGN((uint64_t)nh.n_descsz);
		if (desc_off > len || nh.n_descsz > len - desc_off)
			return;
		if (nh.n_namesz == sizeof(VMMS_NOTE_NAME) && nh.n_type == VMMS_NOTE_RING3 &&
		    memcmp(p + name_off, VMMS_NOTE_NAME, sizeof(VMMS_NOTE_NAME)) == 0) {
			k->kind = HV_BOOT_RING3;
			return; /* the test-guest note wins over any other */
		}
		if (nh.n_namesz == 4 && nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY &&
		    memcmp(p + name_off, "Xen", 4) == 0 && (nh.n_descsz == 4 || nh.n_descsz == 8)) {
			uint64_t entry = 0;

			memcpy(&entry, p + desc_off, nh.n_descsz); /* little-endian */
			k->kind = HV_BOOT_PVH;
			k->entry = entry;
		}
		if (next >= len)
			return;
		off = next;
	}
}

static int pvh_write_start_info(const struct gmem *m, const struct hv_boot_config *cfg,
				uint64_t initrd_addr, char *err, size_t errlen)
{
	uint8_t page[4096];
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = cfg->cmdline_addr,
		.rsdp_paddr = cfg->rsdp,
	};
	struct e820_table ram_only;
	const struct e820_table *e820 = cfg->e820;
	int r;

	if (!e820) {
		r = e820_build(&ram_only, m, NULL, 0);
		if (r < 0)
			return hv_boot_err(err, errlen, r, "e820: cannot describe guest RAM");
		e820 = &ram_only;
	}
	if (e820->nr > E820_MAX_ENTRIES)
		return hv_boot_err(err, errlen, -EINVAL, "e820: too many entries");
	memset(page, 0, sizeof(page));
	if (initrd_addr) {
		struct hvm_modlist_entry mod = { .paddr = initrd_addr, .size = cfg->initrd.size };

		si.nr_modules = 1;
		si.modlist_paddr = cfg->zero_page + HV_BOOT_PVH_MODLIST_OFFSET;
		memcpy(page + HV_BOOT_PVH_MODLIST_OFFSET, &mod, sizeof(mod));
	}
	si.memmap_paddr = cfg->zero_page + HV_BOOT_PVH_MEMMAP_OFFSET;
	si.memmap_entries = e820->nr;
	for (unsigned i = 0; i < e820->nr; i++) {
		struct hvm_memmap_table_entry e = {
			.addr = e820->e[i].addr, .size = e820->e[i].size, .type = e820->e[i].type,
		};

		memcpy(page + HV_BOOT_PVH_MEMMAP_OFFSET + i * sizeof(e), &e, sizeof(e));
	}
	memcpy(page, &si, sizeof(si));
	if (gmem_write(m, cfg->zero_page, page, sizeof(page)) < 0)
		return hv_boot_err(err, errlen, -EINVAL, "start info: 0x%llx is not guest RAM",
				   (unsigned long long)cfg->zero_page);
	return 0;
}

int hv_boot_load_elf(const struct gmem *m, const struct hv_boot_config *cfg,
		     struct hv_boot_state *ret, char *err, size_t errlen)
{
	Elf64_Phdr ph[ELF_MAX_PHNUM];
	uint8_t notes[ELF_MAX_NOTE_SEGMENT];
	const struct hv_boot_blob *k = &cfg->kernel;
	struct elf_kind kind = { .kind = HV_BOOT_NONE };
	uint64_t lo = UINT64_MAX, hi = 0, initrd_addr = 0;
	bool entry_loaded = false;
	struct hv_boot_state st;
	Elf64_Ehdr eh;
	int r;

	r = hv_boot_check_config(cfg, err, errlen);
	if (r < 0)
		return r;
	if (k->size < sizeof(eh))
		return hv_boot_err(err, errlen, -EINVAL, "kernel: ELF truncated (%llu bytes)",
				   (unsigned long long)k->size);
	r = hv_boot_blob_read(k, 0, &eh, sizeof(eh));
	if (r < 0)
		return hv_boot_err(err, errlen, r, "kernel: read failed: %s", strerror(-r));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return hv_boot_err(err, errlen, -ENOEXEC,
				   "kernel: not a bzImage or an ELF with a PVH entry note");
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: ELF is not a little-endian x86-64 executable");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > ELF_MAX_PHNUM)
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: ELF program header table malformed (%u entries of %u bytes)",
				   eh.e_phnum, eh.e_phentsize);
	if (!range_within(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), k->size))
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: ELF program headers lie outside the file");
	r = hv_boot_blob_read(k, eh.e_phoff, ph, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr));
	if (r < 0)
		return hv_boot_err(err, errlen, r, "kernel: read failed: %s", strerror(-r));

	for (unsigned i = 0; i < eh.e_phnum && kind.kind != HV_BOOT_RING3; i++) {
		if (ph[i].p_type != PT_NOTE)
			continue;
		if (ph[i].p_filesz > sizeof(notes) || !range_within(ph[i].p_offset, ph[i].p_filesz, k->size))
			return hv_boot_err(err, errlen, -EINVAL,
					   "kernel: ELF note segment %u lies outside the file", i);
		r = hv_boot_blob_read(k, ph[i].p_offset, notes, ph[i].p_filesz);
		if (r < 0)
			return hv_boot_err(err, errlen, r, "kernel: read failed: %s", strerror(-r));
		notes_scan(notes, ph[i].p_filesz, &kind);
	}
	if (kind.kind == HV_BOOT_NONE)
		return hv_boot_err(err, errlen, -ENOEXEC,
				   "kernel: not a bzImage or an ELF with a PVH entry note");
	if (kind.kind == HV_BOOT_RING3)
		kind.entry = eh.e_entry;
	if (kind.kind == HV_BOOT_PVH && kind.entry >= 4 * GiB)
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: PVH entry 0x%llx is not a 32-bit address",
				   (unsigned long long)kind.entry);

	/* Check every segment before loading any. */
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_LOAD || !p->p_memsz)
			continue;
		if (p->p_filesz > p->p_memsz || !range_within(p->p_offset, p->p_filesz, k->size))
			return hv_boot_err(err, errlen, -EINVAL,
					   "kernel: ELF segment %u lies outside the file", i);
		if (kind.kind == HV_BOOT_RING3 && p->p_vaddr != p->p_paddr)
			return hv_boot_err(err, errlen, -EINVAL,
					   "kernel: test guest segment %u is not identity mapped "
					   "(vaddr 0x%llx, paddr 0x%llx)", i,
					   (unsigned long long)p->p_vaddr, (unsigned long long)p->p_paddr);
		r = hv_boot_check_range(m, cfg, p->p_paddr, p->p_memsz);
		if (r < 0 || p->p_paddr < cfg->kernel_addr)
			return hv_boot_err(err, errlen, r == -ENOMEM ? -ENOMEM : -EINVAL,
					   "kernel: ELF segment %u (0x%llx, %llu bytes) %s", i,
					   (unsigned long long)p->p_paddr, (unsigned long long)p->p_memsz,
					   r == -ENOMEM ? "is not in guest RAM"
							: "overlaps the boot area below the load address");
		lo = MIN(lo, p->p_paddr);
		hi = MAX(hi, p->p_paddr + p->p_memsz);
		if (kind.entry >= p->p_paddr && kind.entry - p->p_paddr < p->p_memsz)
			entry_loaded = true;
	}
	if (hi == 0)
		return hv_boot_err(err, errlen, -EINVAL, "kernel: ELF has no loadable segment");
	if (!entry_loaded)
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: entry point 0x%llx is not in a loaded segment",
				   (unsigned long long)kind.entry);

	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		uint8_t *dst;

		if (p->p_type != PT_LOAD || !p->p_memsz)
			continue;
		dst = gmem_ptr(m, p->p_paddr, p->p_memsz);
		if (!dst)
			return hv_boot_err(err, errlen, -EFAULT, "kernel: segment %u vanished", i);
		if (p->p_filesz) {
			r = hv_boot_blob_read(k, p->p_offset, dst, p->p_filesz);
			if (r < 0)
				return hv_boot_err(err, errlen, r, "kernel: read failed: %s",
						   strerror(-r));
		}
		memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
	}

	r = hv_boot_write_cmdline(m, cfg, UINT64_MAX, err, errlen);
	if (r < 0)
		return r;
	r = hv_boot_load_initrd(m, cfg, ALIGN_UP(hi, 4096), 4 * GiB, &initrd_addr, err, errlen);
	if (r < 0)
		return r;
	r = pvh_write_start_info(m, cfg, initrd_addr, err, errlen);
	if (r < 0)
		return r;

	memset(&st, 0, sizeof(st));
	r = hv_boot_finish(m, cfg, kind.kind, kind.entry, &st, err, errlen);
	if (r < 0)
		return r;
	if (kind.kind == HV_BOOT_RING3)
		st.regs.rsi = cfg->zero_page;
	st.image_end = hi;
	st.initrd_addr = initrd_addr;
	st.initrd_size = initrd_addr ? cfg->initrd.size : 0;
	*ret = st;
	return 0;
}
