// SPDX-License-Identifier: GPL-2.0-only
/* Linux bzImage loader: 64-bit boot protocol (Documentation/x86/boot.rst), zero page set-up. */
#include "hv/boot.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

/* Offsets in the image and in struct boot_params (the setup header sits at the same place). */
#define BP_ACPI_RSDP_ADDR     0x070
#define BP_EXT_RAMDISK_IMAGE  0x0c0
#define BP_EXT_RAMDISK_SIZE   0x0c4
#define BP_EXT_CMD_LINE_PTR   0x0c8
#define BP_E820_ENTRIES       0x1e8
#define BP_HDR                0x1f1 /* struct setup_header starts here */
#define BP_HDR_END_MAX        0x290 /* and must end by here in boot_params */
#define BP_SETUP_SECTS        0x1f1
#define BP_SYSSIZE            0x1f4
#define BP_JUMP_LEN           0x201 /* header ends at 0x202 + this byte */
#define BP_HEADER_MAGIC       0x202
#define BP_VERSION            0x206
#define BP_TYPE_OF_LOADER     0x210
#define BP_LOADFLAGS          0x211
#define BP_RAMDISK_IMAGE      0x218
#define BP_RAMDISK_SIZE       0x21c
#define BP_HEAP_END_PTR       0x224
#define BP_CMD_LINE_PTR       0x228
#define BP_INITRD_ADDR_MAX    0x22c
#define BP_XLOADFLAGS         0x236
#define BP_CMDLINE_SIZE       0x238
#define BP_SETUP_DATA         0x250
#define BP_INIT_SIZE          0x260
#define BP_E820_TABLE         0x2d0
#define BP_E820_MAX           128
#define BP_SIZE               4096

#define LOADED_HIGH   (1u << 0)
#define CAN_USE_HEAP  (1u << 7)
#define XLF_KERNEL_64 (1u << 0)
#define LOADER_TYPE_UNDEFINED 0xff
#define BOOT_PROTO_MIN 0x020c /* 2.12: xloadflags, so the 64-bit entry can be checked */
#define BOOT_PROTO_RSDP 0x020e /* 2.14: acpi_rsdp_addr */
#define HEAP_END_PTR 0xfe00

static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

int hv_boot_load_bzimage(const struct gmem *m, const struct hv_boot_config *cfg,
			 struct hv_boot_state *ret, char *err, size_t errlen)
{
	uint8_t img[BP_HDR_END_MAX], bp[BP_SIZE];
	uint64_t ksize = cfg->kernel.size, setup_size, payload, mem, initrd_addr = 0, initrd_limit;
	unsigned setup_sects, version, hdr_end;
	struct e820_table ram_only;
	const struct e820_table *e820 = cfg->e820;
	struct hv_boot_state st;
	void *dst;
	int r;

	r = hv_boot_check_config(cfg, err, errlen);
	if (r < 0)
		return r;
	/* Everything below is parsed from the image header: hostile, each field bounded. */
	if (ksize < sizeof(img))
		return hv_boot_err(err, errlen, -EINVAL, "kernel: bzImage truncated (%llu bytes)",
				   (unsigned long long)ksize);
	if (ksize > HV_BOOT_IMAGE_MAX)
		return hv_boot_err(err, errlen, -EFBIG, "kernel: larger than %llu bytes",
				   (unsigned long long)HV_BOOT_IMAGE_MAX);
	r = hv_boot_blob_read(&cfg->kernel, 0, img, sizeof(img));
	if (r < 0)
		return hv_boot_err(err, errlen, r, "kernel: read failed: %s", strerror(-r));
	if (memcmp(img + BP_HEADER_MAGIC, "HdrS", 4) != 0)
		return hv_boot_err(err, errlen, -ENOEXEC, "kernel: not a bzImage (no HdrS magic)");
	version = get16(img + BP_VERSION);
	if (version < BOOT_PROTO_MIN)
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: boot protocol %u.%02u is too old (2.12 or newer needed)",
				   version >> 8, version & 0xff);
	if (!(get16(img + BP_XLOADFLAGS) & XLF_KERNEL_64))
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)");
	if (!(img[BP_LOADFLAGS] & LOADED_HIGH))
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: zImage (not loaded high) is not supported");
	setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
	setup_size = (uint64_t)(setup_sects + 1) * 512;
	if (setup_size >= ksize)
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: setup_sects %u reaches past the end of the %llu-byte image",
				   setup_sects, (unsigned long long)ksize);
	payload = (uint64_t)get32(img + BP_SYSSIZE) * 16;
	if (!payload || payload > ksize - setup_size)
		return hv_boot_err(err, errlen, -EINVAL,
				   "kernel: syssize (%llu bytes) does not match the image (%llu bytes after setup)",
				   (unsigned long long)payload, (unsigned long long)(ksize - setup_size));
	/* init_size: the linear memory the kernel needs from its load address on. */
	mem = ALIGN_UP(MAX(payload, (uint64_t)get32(img + BP_INIT_SIZE)), 4096);
	r = hv_boot_check_range(m, cfg, cfg->kernel_addr, mem);
	if (r < 0)
		return hv_boot_err(err, errlen, r == -ENOMEM ? -ENOMEM : -EINVAL,
				   "kernel: %llu bytes at 0x%llx %s", (unsigned long long)mem,
				   (unsigned long long)cfg->kernel_addr,
				   r == -ENOMEM ? "do not fit in guest RAM" : "overlap the boot structures");
	if (!range_within(cfg->cmdline_addr, cfg->cmdline_max, 4 * GiB))
		return hv_boot_err(err, errlen, -EINVAL, "kernel: command line must lie below 4 GiB");

	r = hv_boot_write_cmdline(m, cfg, get32(img + BP_CMDLINE_SIZE), err, errlen);
	if (r < 0)
		return r;
	dst = gmem_ptr(m, cfg->kernel_addr, payload);
	r = dst ? hv_boot_blob_read(&cfg->kernel, setup_size, dst, payload) : -EFAULT;
	if (r < 0)
		return hv_boot_err(err, errlen, r, "kernel: read failed: %s", strerror(-r));

	/* initrd_addr_max is the highest byte address the initrd may occupy. */
	initrd_limit = MIN((uint64_t)get32(img + BP_INITRD_ADDR_MAX) + 1, 4 * GiB);
	r = hv_boot_load_initrd(m, cfg, cfg->kernel_addr + mem, initrd_limit, &initrd_addr, err,
				errlen);
	if (r < 0)
		return r;

	if (!e820) {
		r = e820_build(&ram_only, m, NULL, 0);
		if (r < 0)
			return hv_boot_err(err, errlen, r, "e820: cannot describe guest RAM");
		e820 = &ram_only;
	}
	if (e820->nr > E820_MAX_ENTRIES)
		return hv_boot_err(err, errlen, -EINVAL, "e820: too many entries");

	/* The zero page: a clean boot_params with the image's setup header copied in. */
	memset(bp, 0, sizeof(bp));
	hdr_end = MIN(0x202u + img[BP_JUMP_LEN], (unsigned)BP_HDR_END_MAX);
	memcpy(bp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);
	bp[BP_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
	bp[BP_LOADFLAGS] |= CAN_USE_HEAP;
	put16(bp + BP_HEAP_END_PTR, HEAP_END_PTR);
	put32(bp + BP_CMD_LINE_PTR, (uint32_t)cfg->cmdline_addr);
	put32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(cfg->cmdline_addr >> 32));
	put32(bp + BP_RAMDISK_IMAGE, (uint32_t)initrd_addr);
	put32(bp + BP_RAMDISK_SIZE, (uint32_t)cfg->initrd.size);
	put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_addr >> 32));
	put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(cfg->initrd.size >> 32));
	put64(bp + BP_SETUP_DATA, 0); /* no setup_data chain, whatever the image says */
	if (version >= BOOT_PROTO_RSDP)
		put64(bp + BP_ACPI_RSDP_ADDR, cfg->rsdp);
	bp[BP_E820_ENTRIES] = (uint8_t)e820->nr;
	for (unsigned i = 0; i < e820->nr && i < BP_E820_MAX; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * 20;

		put64(e, e820->e[i].addr);
		put64(e + 8, e820->e[i].size);
		put32(e + 16, e820->e[i].type);
	}
	if (gmem_write(m, cfg->zero_page, bp, sizeof(bp)) < 0)
		return hv_boot_err(err, errlen, -EINVAL, "zero page: 0x%llx is not guest RAM",
				   (unsigned long long)cfg->zero_page);

	memset(&st, 0, sizeof(st));
	r = hv_boot_finish(m, cfg, HV_BOOT_BZIMAGE, cfg->kernel_addr + 0x200, &st, err, errlen);
	if (r < 0)
		return r;
	st.image_end = cfg->kernel_addr + mem;
	st.initrd_addr = initrd_addr;
	st.initrd_size = initrd_addr ? cfg->initrd.size : 0;
	*ret = st;
	return 0;
}
