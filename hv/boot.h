/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Guest boot images: loads a Linux bzImage (64-bit boot protocol), a PVH ELF (Xen
 * PHYS32_ENTRY note) or a vmms ring-3 test-guest ELF ("VMMS" note) into guest memory and
 * produces the initial vCPU 0 register state for the worker to apply. Knows no KVM ioctl:
 * the output is plain data (struct kvm_regs / kvm_sregs values).
 *
 * Every byte of the kernel and initrd images is hostile: all header fields are bounded and
 * checked, and no read leaves the image.
 */
#ifndef VMMS_HV_BOOT_H
#define VMMS_HV_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "hv/e820.h"
#include "hv/mem.h"

/* ELF note that marks a vmms ring-3 test guest: name "VMMS", this type, any descriptor. */
#define VMMS_NOTE_NAME "VMMS"
#define VMMS_NOTE_RING3 1

/* Xen PVH entry note (Linux's vmlinux carries it with CONFIG_PVH). */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Largest kernel or initrd image accepted. */
#define HV_BOOT_IMAGE_MAX (1ULL << 30)

/* Selectors of the boot GDT that hv_boot_* writes (one table serves every entry kind). */
#define HV_BOOT_SEL_CODE32 0x08 /* PVH entry: flat 32-bit code, DPL 0 */
#define HV_BOOT_SEL_CODE64 0x10 /* Linux __BOOT_CS */
#define HV_BOOT_SEL_DATA   0x18 /* Linux __BOOT_DS, also PVH data */
#define HV_BOOT_SEL_UDATA  0x23 /* ring-3 data, RPL 3 */
#define HV_BOOT_SEL_UCODE  0x2b /* ring-3 64-bit code, RPL 3 */
#define HV_BOOT_SEL_TSS    0x30 /* 64-bit TSS (16-byte descriptor) */

/* Within the GDT page (4 KiB at hv_boot_config.gdt): the GDT at +0, the TSS at +0x80 when
 * no separate TSS area is given, and the boot stack (Linux entry RSP, ring-3 guests' RSP0)
 * grows down from the end of the page. */
#define HV_BOOT_GDT_SIZE   0x40
#define HV_BOOT_TSS_OFFSET 0x80
#define HV_BOOT_TSS_SIZE   0x68
/* A separate TSS area (hv_boot_config.tss) holds the TSS plus an I/O permission bitmap that
 * allows every port, and its 0xff terminator. Ring-3 guests need it where IOPL is not honoured
 * in guest user mode (PVM runs the guest with hardware IOPL 0 and emulates I/O after the #GP,
 * consulting the TSS bitmap); on VT-x/AMD-V IOPL=3 alone suffices. */
#define HV_BOOT_TSS_AREA_SIZE 0x3000
#define HV_BOOT_IOPB_SIZE     0x2000

/* Within the zero page (4 KiB) for PVH: hvm_start_info at +0, the module list at +0x40,
 * the memory map at +0x100. */
#define HV_BOOT_PVH_MODLIST_OFFSET 0x40
#define HV_BOOT_PVH_MEMMAP_OFFSET  0x100

enum hv_boot_kind {
	HV_BOOT_NONE = 0,
	HV_BOOT_BZIMAGE, /* Linux 64-bit boot protocol, entered in long mode at ring 0 */
	HV_BOOT_PVH,     /* PVH ELF, entered in 32-bit protected mode, paging off */
	HV_BOOT_RING3,   /* vmms test guest, entered in long mode at ring 3 */
};

/* An image to load: a regular file (read with pread) or a buffer in memory. */
struct hv_boot_blob {
	int fd;          /* -1 when buf is used */
	const void *buf;
	uint64_t size;   /* 0: no image (only meaningful for the initrd) */
};

/* What the worker decides: where things live in guest-physical memory. All of these areas
 * must be guest RAM; the loaders refuse image segments that overlap any of them. */
struct hv_boot_config {
	struct hv_boot_blob kernel;
	struct hv_boot_blob initrd;     /* size 0: none */
	const char *cmdline;            /* NULL: empty */
	uint64_t zero_page;             /* 4 KiB: boot_params, or hvm_start_info + modlist + memmap */
	uint64_t gdt;                   /* 4 KiB: GDT, TSS, boot stack */
	uint64_t tss;                   /* 0, or HV_BOOT_TSS_AREA_SIZE bytes: TSS with I/O bitmap */
	uint64_t page_tables;           /* PML4, PDPT, page directories; 4 KiB aligned */
	uint64_t page_tables_size;      /* at least 6 pages (24 KiB) */
	uint64_t cmdline_addr;
	uint64_t cmdline_max;           /* bytes, the terminating NUL included */
	uint64_t kernel_addr;           /* bzImage load address (1 MiB); ELF segments must lie at or above it */
	uint64_t rsdp;                  /* 0: no ACPI tables */
	const struct e820_table *e820;  /* NULL: RAM regions only */
};

struct hv_boot_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	enum hv_boot_kind kind;
	uint64_t entry;        /* first instruction executed */
	uint64_t image_end;    /* end of the highest byte loaded or reserved for the kernel */
	uint64_t initrd_addr;  /* 0 when none */
	uint64_t initrd_size;
};

/* Describes an open regular file as an image (fstat for its size, at most HV_BOOT_IMAGE_MAX).
 * The fd stays owned by the caller. 0 or -errno. */
int hv_boot_blob_from_fd(int fd, struct hv_boot_blob *ret);
struct hv_boot_blob hv_boot_blob_from_buf(const void *buf, uint64_t size);
/* Copies [off, off+len) of the image: 0, -EINVAL when the range leaves the image, -EIO. */
int hv_boot_blob_read(const struct hv_boot_blob *b, uint64_t off, void *dst, uint64_t len);

/* Looks at the kernel image and loads it by kind: bzImage ("HdrS" at 0x202), ELF with the
 * VMMS ring-3 note, ELF with the Xen PVH entry note. Writes kernel, initrd, command line,
 * boot structures and page tables into m and fills *ret. On failure returns -ENOEXEC (not a
 * known kind), -EINVAL (corrupt or truncated image, bad config), -E2BIG (command line too
 * long), -ENOMEM (does not fit guest RAM) or -EIO, with a message in err (errlen bytes,
 * may be NULL) naming what is wrong; *ret is untouched on failure. */
int hv_boot_load(const struct gmem *m, const struct hv_boot_config *cfg, struct hv_boot_state *ret,
		 char *err, size_t errlen);
/* The same for one kind each (hv_boot_load_elf picks ring-3 or PVH by the notes). */
int hv_boot_load_bzimage(const struct gmem *m, const struct hv_boot_config *cfg,
			 struct hv_boot_state *ret, char *err, size_t errlen);
int hv_boot_load_elf(const struct gmem *m, const struct hv_boot_config *cfg,
		     struct hv_boot_state *ret, char *err, size_t errlen);

/* Writes the boot GDT into the GDT page and the TSS into the TSS area (tss != 0) or the GDT
 * page. 0 or -EFAULT. */
int hv_boot_write_gdt(const struct gmem *m, uint64_t gdt, uint64_t tss);
/* Writes identity-mapped 4-level page tables at `base` (size bytes available): the first
 * 4 GiB always, plus every RAM region above 4 GiB (up to 512 GiB). 2 MiB pages; above 4 GiB
 * 1 GiB pages when the area is too small for 2 MiB ones. Pages that hold no RAM are mapped
 * uncached (PCD|PWT). `user` sets U/S on every level. 0, -EINVAL, -ENOSPC or -EFAULT. */
int hv_boot_write_page_tables(const struct gmem *m, uint64_t base, uint64_t size, bool user);

/* Copies the state's segment, descriptor-table, control-register and EFER fields over a
 * KVM_GET_SREGS result, leaving the rest (APIC base, CR8, pending interrupts) as KVM had them. */
void hv_boot_apply_sregs(const struct hv_boot_state *st, struct kvm_sregs *inout);

/* Shared by the loaders in hv/boot*.c (not for other callers). */
int hv_boot_err(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* -EINVAL when the boot areas of cfg overlap one another or wrap. */
int hv_boot_check_config(const struct hv_boot_config *cfg, char *err, size_t errlen);
/* 0 when [addr, addr+size) is guest RAM in one region and overlaps none of the boot areas. */
int hv_boot_check_range(const struct gmem *m, const struct hv_boot_config *cfg, uint64_t addr,
			uint64_t size);
/* Writes cfg->cmdline (max_len bytes at most, NUL not counted) at cfg->cmdline_addr. */
int hv_boot_write_cmdline(const struct gmem *m, const struct hv_boot_config *cfg, uint64_t max_len,
			  char *err, size_t errlen);
/* Loads the initrd page-aligned as high as possible below `limit` and at or above `lowest`. */
int hv_boot_load_initrd(const struct gmem *m, const struct hv_boot_config *cfg, uint64_t lowest,
			uint64_t limit, uint64_t *ret_addr, char *err, size_t errlen);
/* Writes GDT, TSS and page tables (when the kind uses paging) and fills the register state. */
int hv_boot_finish(const struct gmem *m, const struct hv_boot_config *cfg, enum hv_boot_kind kind,
		   uint64_t entry, struct hv_boot_state *st, char *err, size_t errlen);

#endif
