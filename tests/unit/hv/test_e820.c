// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for the e820 builder: sorting, merging, overlap resolution, limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "hv/e820.h"

static void assert_entry(const struct e820_table *t, unsigned i, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_true(i < t->nr);
	assert_int_equal(t->e[i].addr, addr);
	assert_int_equal(t->e[i].size, size);
	assert_int_equal(t->e[i].type, type);
}

static void test_reserve_inside_ram_splits(void **state)
{
	struct e820_table t;

	e820_init(&t);
	assert_int_equal(e820_add(&t, 0, 64 << 20, E820_RAM), 0);
	assert_int_equal(e820_add(&t, 0xe0000, 0x20000, E820_RESERVED), 0);
	assert_int_equal(t.nr, 3);
	assert_entry(&t, 0, 0, 0xe0000, E820_RAM);
	assert_entry(&t, 1, 0xe0000, 0x20000, E820_RESERVED);
	assert_entry(&t, 2, 0x100000, (64 << 20) - 0x100000, E820_RAM);
}

static void test_sorted_and_merged(void **state)
{
	struct e820_table t;

	e820_init(&t);
	/* Added out of order; the two RAM pieces touch and must merge. */
	assert_int_equal(e820_add(&t, 0xe0000000ULL, 0x100000, E820_RESERVED), 0);
	assert_int_equal(e820_add(&t, 0x100000, 0x100000, E820_RAM), 0);
	assert_int_equal(e820_add(&t, 0, 0x100000, E820_RAM), 0);
	assert_int_equal(e820_add(&t, 0x100000000ULL, 1ULL << 30, E820_RAM), 0);
	assert_int_equal(t.nr, 3);
	assert_entry(&t, 0, 0, 0x200000, E820_RAM);
	assert_entry(&t, 1, 0xe0000000ULL, 0x100000, E820_RESERVED);
	assert_entry(&t, 2, 0x100000000ULL, 1ULL << 30, E820_RAM);
	/* Overlapping reservations merge into one; RAM never wins over reserved. */
	assert_int_equal(e820_add(&t, 0xe0080000ULL, 0x100000, E820_RESERVED), 0);
	assert_int_equal(e820_add(&t, 0xe0000000ULL, 0x1000, E820_RAM), 0);
	assert_int_equal(t.nr, 3);
	assert_entry(&t, 1, 0xe0000000ULL, 0x180000, E820_RESERVED);
	for (unsigned i = 1; i < t.nr; i++)
		assert_true(t.e[i - 1].addr + t.e[i - 1].size <= t.e[i].addr);
}

static void test_limits(void **state)
{
	struct e820_table t, copy;

	e820_init(&t);
	assert_int_equal(e820_add(&t, 0x1000, 0, E820_RAM), -EINVAL);
	assert_int_equal(e820_add(&t, UINT64_MAX - 10, 100, E820_RAM), -EINVAL);
	assert_int_equal(e820_add(&t, 0, 0x1000, 0), -EINVAL);
	assert_int_equal(e820_add(&t, 0, 0x1000, 99), -EINVAL);
	for (unsigned i = 0; i < E820_MAX_ENTRIES; i++)
		assert_int_equal(e820_add(&t, i * 0x10000ULL, 0x1000, E820_RAM), 0);
	assert_int_equal(t.nr, E820_MAX_ENTRIES);
	copy = t;
	assert_int_equal(e820_add(&t, 0x1000000, 0x1000, E820_RAM), -ENOSPC);
	assert_memory_equal(&t, &copy, sizeof(t));
	/* Filling a gap with its own type merges entries, so this one still fits. */
	assert_int_equal(e820_add(&t, 0x1000, 0xf000, E820_RAM), 0);
	assert_int_equal(t.nr, E820_MAX_ENTRIES - 1);
}

static void test_build_from_gmem(void **state)
{
	struct gmem_layout lay[] = { { 0, 16 << 20 }, { 0x100000000ULL, 2 << 20 } };
	struct e820_entry res[] = {
		{ 0xe0000, 0x20000, E820_RESERVED },
		{ 0xe0000000ULL, 0x100000, E820_RESERVED },
	};
	struct gmem m;
	struct e820_table t;

	assert_int_equal(gmem_init_anon(&m, lay, 2), 0);
	assert_int_equal(e820_build(&t, &m, res, 2), 0);
	assert_int_equal(t.nr, 5);
	assert_entry(&t, 0, 0, 0xe0000, E820_RAM);
	assert_entry(&t, 1, 0xe0000, 0x20000, E820_RESERVED);
	assert_entry(&t, 2, 0x100000, (16 << 20) - 0x100000, E820_RAM);
	assert_entry(&t, 3, 0xe0000000ULL, 0x100000, E820_RESERVED);
	assert_entry(&t, 4, 0x100000000ULL, 2 << 20, E820_RAM);
	gmem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserve_inside_ram_splits),
		cmocka_unit_test(test_sorted_and_merged),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_build_from_gmem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
