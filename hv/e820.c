// SPDX-License-Identifier: GPL-2.0-only
/* The guest e820 memory map: overlap resolution by boundary sweep, sorted and merged. */
#include "hv/e820.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

void e820_init(struct e820_table *t)
{
	memset(t, 0, sizeof(*t));
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The winning type of the elementary interval starting at `at`: the largest type among
 * the ranges covering it, 0 when none does. */
static uint32_t type_at(const struct e820_entry *in, unsigned n, uint64_t at)
{
	uint32_t type = 0;

	for (unsigned i = 0; i < n; i++)
		if (at >= in[i].addr && at - in[i].addr < in[i].size && in[i].type > type)
			type = in[i].type;
	return type;
}

int e820_add(struct e820_table *t, uint64_t addr, uint64_t size, uint32_t type)
{
	struct e820_entry in[E820_MAX_ENTRIES + 1];
	/* Ends are exclusive; a range ending at 2^64 cannot be written, so refuse wrapping ones. */
	uint64_t cuts[2 * (E820_MAX_ENTRIES + 1)];
	struct e820_table out = { 0 };
	unsigned n = 0, nc = 0;

	if (!size || addr + size < addr || type < E820_RAM || type > E820_UNUSABLE)
		return -EINVAL;
	if (t->nr > E820_MAX_ENTRIES)
		return -EINVAL;
	for (unsigned i = 0; i < t->nr; i++)
		in[n++] = t->e[i];
	in[n++] = (struct e820_entry){ .addr = addr, .size = size, .type = type };

	for (unsigned i = 0; i < n; i++) {
		cuts[nc++] = in[i].addr;
		cuts[nc++] = in[i].addr + in[i].size;
	}
	qsort(cuts, nc, sizeof(cuts[0]), u64_cmp);

	for (unsigned i = 0; i + 1 < nc; i++) {
		uint64_t lo = cuts[i], hi = cuts[i + 1];
		uint32_t ty;

		if (lo == hi)
			continue;
		ty = type_at(in, n, lo);
		if (!ty)
			continue;
		if (out.nr && out.e[out.nr - 1].type == ty &&
		    out.e[out.nr - 1].addr + out.e[out.nr - 1].size == lo) {
			out.e[out.nr - 1].size += hi - lo;
			continue;
		}
		if (out.nr == E820_MAX_ENTRIES)
			return -ENOSPC;
		out.e[out.nr++] = (struct e820_entry){ .addr = lo, .size = hi - lo, .type = ty };
	}
	*t = out;
	return 0;
}

int e820_build(struct e820_table *ret, const struct gmem *m, const struct e820_entry *reserved,
	       unsigned nr_reserved)
{
	struct e820_table t;
	int r;

	e820_init(&t);
	if (m->nr > GMEM_MAX_REGIONS)
		return -EINVAL;
	for (unsigned i = 0; i < m->nr; i++) {
		r = e820_add(&t, m->r[i].gpa, m->r[i].size, E820_RAM);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < nr_reserved; i++) {
		r = e820_add(&t, reserved[i].addr, reserved[i].size, reserved[i].type);
		if (r < 0)
			return r;
	}
	*ret = t;
	return 0;
}
