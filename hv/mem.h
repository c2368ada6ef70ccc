/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Guest RAM: one memfd mapped shared, cut into regions at guest-physical addresses.
 * Every guest-physical access by a device goes through gmem_ptr(), which refuses any range
 * not wholly inside one region. This file knows no KVM: unit tests build a gmem over plain
 * memory with gmem_init_anon().
 */
#ifndef VMMS_HV_MEM_H
#define VMMS_HV_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 8

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t fd_offset; /* offset of this region in the memfd */
	uint8_t *hva;
};

struct gmem {
	int fd; /* memfd backing all regions, -1 for anonymous test memory */
	uint8_t *base; /* mapping of the whole memfd */
	uint64_t total; /* bytes of RAM over all regions */
	unsigned nr;
	struct gmem_region r[GMEM_MAX_REGIONS];
};

/* A region request: guest-physical base and size, both 4 KiB aligned. */
struct gmem_layout {
	uint64_t gpa;
	uint64_t size;
};

/* Creates the memfd (hugetlb when asked), sizes it, maps it and fills in the regions.
 * Regions must be sorted and must not overlap. 0 or -errno; on failure m is left empty. */
int gmem_init(struct gmem *m, const struct gmem_layout *layout, unsigned nr, bool hugetlb);
/* Same over anonymous memory, for unit tests. */
int gmem_init_anon(struct gmem *m, const struct gmem_layout *layout, unsigned nr);
void gmem_destroy(struct gmem *m);

/* Host pointer for [gpa, gpa+len) when wholly inside one region, else NULL. len 0 is refused. */
void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len);
/* Copy helpers over gmem_ptr(): 0 or -EFAULT. */
int gmem_read(const struct gmem *m, uint64_t gpa, void *buf, uint64_t len);
int gmem_write(const struct gmem *m, uint64_t gpa, const void *buf, uint64_t len);

#endif
