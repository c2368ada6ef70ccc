/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The guest's physical memory map as the firmware would report it (BIOS e820): built from the
 * guest RAM regions plus the ranges the machine reserves (ACPI tables, ECAM, legacy holes).
 */
#ifndef VMMS_HV_E820_H
#define VMMS_HV_E820_H

#include <stdint.h>

#include "hv/mem.h"

#define E820_MAX_ENTRIES 16

/* Entry types, as Linux and the ACPI spec number them. */
enum e820_type {
	E820_RAM = 1,
	E820_RESERVED = 2,
	E820_ACPI = 3,
	E820_NVS = 4,
	E820_UNUSABLE = 5,
};

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Always kept sorted by address, entries never overlap, touching entries of one type merged. */
struct e820_table {
	unsigned nr;
	struct e820_entry e[E820_MAX_ENTRIES];
};

void e820_init(struct e820_table *t);
/* Adds [addr, addr+size) with the given type. Where it overlaps existing entries the larger
 * type number wins (so any reserved kind beats RAM), as Linux's e820 sanitizer decides.
 * 0, -EINVAL (size 0, wraps, unknown type) or -ENOSPC (more than E820_MAX_ENTRIES needed);
 * on failure the table is unchanged. */
int e820_add(struct e820_table *t, uint64_t addr, uint64_t size, uint32_t type);
/* Builds a fresh table: every gmem region as RAM, then each of the nr_reserved entries in
 * `reserved` (their own type, typically E820_RESERVED) on top. 0 or -errno; *ret is untouched
 * on failure. */
int e820_build(struct e820_table *ret, const struct gmem *m, const struct e820_entry *reserved,
	       unsigned nr_reserved);

#endif
