// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the PIO/MMIO interval-map bus: overlap, unmapped accesses, straddling, remap, scale. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "devices/bus.h"
#include "lib/util.h"

struct rec {
	unsigned id;
	unsigned reads, writes;
	uint64_t last_off;
	unsigned last_len;
	uint8_t last_data[8];
};

/* Reads return id + offset + i per byte, so a test sees which device and offset answered. */
static void rec_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct rec *r = dev;
	uint8_t *d = data;

	__atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
	r->last_off = offset;
	r->last_len = len;
	for (unsigned i = 0; i < len; i++)
		d[i] = (uint8_t)(r->id + offset + i);
}

static void rec_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct rec *r = dev;

	r->writes++;
	r->last_off = offset;
	r->last_len = len;
	memcpy(r->last_data, data, MIN(len, 8u));
}

static const struct bus_ops rec_ops = { .read = rec_read, .write = rec_write };
static const struct bus_ops read_only_ops = { .read = rec_read };

static int setup(void **state)
{
	struct bus *bus = calloc(1, sizeof(*bus));

	assert_non_null(bus);
	assert_int_equal(bus_init(bus, "test"), 0);
	*state = bus;
	return 0;
}

static int teardown(void **state)
{
	bus_destroy(*state);
	free(*state);
	return 0;
}

static void test_map_refuses_overlap(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 0x10 }, b = { .id = 0x20 };

	assert_int_equal(bus_map(bus, 0x100, 0x10, &rec_ops, &a), 0);
	assert_int_equal(bus_map(bus, 0x108, 0x10, &rec_ops, &b), -EEXIST);  /* tail overlap */
	assert_int_equal(bus_map(bus, 0xf8, 0x9, &rec_ops, &b), -EEXIST);    /* head overlap, one byte */
	assert_int_equal(bus_map(bus, 0x104, 0x4, &rec_ops, &b), -EEXIST);   /* inside */
	assert_int_equal(bus_map(bus, 0x0, 0x1000, &rec_ops, &b), -EEXIST);  /* around */
	assert_int_equal(bus_map(bus, 0x100, 0x10, &rec_ops, &b), -EEXIST);  /* identical */
	assert_int_equal(bus_map(bus, 0x110, 0x10, &rec_ops, &b), 0);        /* adjacent above */
	assert_int_equal(bus_map(bus, 0xf0, 0x10, &rec_ops, &b), 0);         /* adjacent below */
	assert_int_equal(bus->nr, 3);
}

static void test_map_refuses_bad_ranges(void **state)
{
	struct bus *bus = *state;
	struct rec a = { 0 };

	assert_int_equal(bus_map(bus, 0x100, 0, &rec_ops, &a), -EINVAL);
	assert_int_equal(bus_map(bus, UINT64_MAX - 1, 3, &rec_ops, &a), -EINVAL);
	assert_int_equal(bus_map(bus, 0x100, 1, NULL, &a), -EINVAL);
	/* The very top of the address space is fine. */
	assert_int_equal(bus_map(bus, UINT64_MAX - 15, 16, &rec_ops, &a), 0);
	assert_int_equal(bus->nr, 1);
}

static void test_unmapped_reads_all_ones(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 1 };
	uint8_t buf[8];
	static const unsigned lens[] = { 1, 2, 3, 4, 8 };

	assert_int_equal(bus_map(bus, 0x1000, 0x100, &rec_ops, &a), 0);
	for (unsigned i = 0; i < ARRAY_SIZE(lens); i++) {
		memset(buf, 0x5a, sizeof(buf));
		assert_false(bus_read(bus, 0x2000, buf, lens[i]));
		for (unsigned j = 0; j < lens[i]; j++)
			assert_int_equal(buf[j], 0xff);
		/* Bytes past len are untouched. */
		for (unsigned j = lens[i]; j < sizeof(buf); j++)
			assert_int_equal(buf[j], 0x5a);
	}
	assert_int_equal(bus->unmapped_accesses, ARRAY_SIZE(lens));
	assert_false(bus_write(bus, 0xfff, buf, 1));
	assert_int_equal(bus->unmapped_accesses, ARRAY_SIZE(lens) + 1);
	assert_int_equal(a.reads, 0);
	assert_int_equal(a.writes, 0);
}

static void test_dispatch_offsets(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 0x10 }, b = { .id = 0x40 };
	uint8_t buf[8] = { 0 };
	uint32_t v = 0xdeadbeef;

	assert_int_equal(bus_map(bus, 0x3f8, 8, &rec_ops, &a), 0);
	assert_int_equal(bus_map(bus, 0x400, 8, &rec_ops, &b), 0);
	assert_true(bus_read(bus, 0x3fa, buf, 2));
	assert_int_equal(a.last_off, 2);
	assert_int_equal(a.last_len, 2);
	assert_int_equal(buf[0], 0x12);
	assert_int_equal(buf[1], 0x13);
	assert_true(bus_read(bus, 0x400, buf, 1));
	assert_int_equal(buf[0], 0x40);
	assert_true(bus_write(bus, 0x404, &v, 4));
	assert_int_equal(b.writes, 1);
	assert_int_equal(b.last_off, 4);
	assert_memory_equal(b.last_data, &v, 4);
	assert_int_equal(a.writes, 0);
}

static void test_straddling_is_unmapped(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 1 }, b = { .id = 2 };
	uint8_t buf[8];

	assert_int_equal(bus_map(bus, 0x100, 0x10, &rec_ops, &a), 0);
	assert_int_equal(bus_map(bus, 0x110, 0x10, &rec_ops, &b), 0);
	/* Last two bytes of a plus first two of b: neither device sees it. */
	assert_false(bus_read(bus, 0x10e, buf, 4));
	assert_memory_equal(buf, "\xff\xff\xff\xff", 4);
	assert_false(bus_write(bus, 0x10e, buf, 4));
	/* Starting just below a mapping. */
	assert_false(bus_read(bus, 0xff, buf, 2));
	/* Past the end of the last mapping. */
	assert_false(bus_read(bus, 0x11c, buf, 8));
	assert_int_equal(a.reads + a.writes + b.reads + b.writes, 0);
	/* The last byte exactly is fine. */
	assert_true(bus_read(bus, 0x11f, buf, 1));
	assert_int_equal(b.last_off, 0xf);
}

static void test_top_of_address_space(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 0 };
	uint8_t buf[8];

	assert_int_equal(bus_map(bus, UINT64_MAX - 15, 16, &rec_ops, &a), 0);
	assert_true(bus_read(bus, UINT64_MAX - 3, buf, 4));
	assert_int_equal(a.last_off, 12);
	/* Would wrap past 2^64: refused, not wrapped around to 0. */
	assert_false(bus_read(bus, UINT64_MAX - 3, buf, 8));
	assert_false(bus_read(bus, UINT64_MAX, buf, 2));
}

static void test_missing_callback(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 7 };
	uint8_t v = 1;

	assert_int_equal(bus_map(bus, 0x10, 1, &read_only_ops, &a), 0);
	assert_true(bus_read(bus, 0x10, &v, 1));
	assert_int_equal(v, 7);
	assert_false(bus_write(bus, 0x10, &v, 1));
}

static void test_unmap(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 1 }, b = { .id = 2 };
	uint8_t v;

	assert_int_equal(bus_map(bus, 0x100, 0x10, &rec_ops, &a), 0);
	assert_int_equal(bus_unmap(bus, 0x100, &b), -ENOENT); /* wrong owner */
	assert_int_equal(bus_unmap(bus, 0x104, &a), -ENOENT); /* not the start */
	assert_true(bus_read(bus, 0x100, &v, 1));
	assert_int_equal(bus_unmap(bus, 0x100, &a), 0);
	assert_false(bus_read(bus, 0x100, &v, 1));
	assert_int_equal(v, 0xff);
	assert_int_equal(bus_unmap(bus, 0x100, &a), -ENOENT);
	/* The space can be reused. */
	assert_int_equal(bus_map(bus, 0x100, 0x10, &rec_ops, &b), 0);
}

static void test_remap(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 0x10 }, b = { .id = 0x50 };
	uint8_t v;

	assert_int_equal(bus_map(bus, 0xc000, 0x40, &rec_ops, &a), 0);
	assert_int_equal(bus_map(bus, 0xd000, 0x40, &rec_ops, &b), 0);
	assert_int_equal(bus_remap(bus, 0xc000, 0xe000, &a), 0);
	assert_false(bus_read(bus, 0xc000, &v, 1));
	assert_true(bus_read(bus, 0xe001, &v, 1));
	assert_int_equal(v, 0x11);
	assert_int_equal(a.last_off, 1);

	/* Onto another mapping: refused, the old one stays. */
	assert_int_equal(bus_remap(bus, 0xe000, 0xd020, &a), -EEXIST);
	assert_true(bus_read(bus, 0xe000, &v, 1));
	assert_int_equal(v, 0x10);
	assert_true(bus_read(bus, 0xd020, &v, 1));
	assert_int_equal(v, 0x50 + 0x20);

	/* Wrapping, unknown and foreign mappings. */
	assert_int_equal(bus_remap(bus, 0xe000, UINT64_MAX - 0x10, &a), -EINVAL);
	assert_true(bus_read(bus, 0xe000, &v, 1));
	assert_int_equal(bus_remap(bus, 0x1234, 0x5000, &a), -ENOENT);
	assert_int_equal(bus_remap(bus, 0xd000, 0x5000, &a), -ENOENT);
	/* Overlapping its own old place is fine. */
	assert_int_equal(bus_remap(bus, 0xe000, 0xe020, &a), 0);
	assert_true(bus_read(bus, 0xe05f, &v, 1));
	assert_false(bus_read(bus, 0xe000, &v, 1));
	assert_int_equal(bus->nr, 2);
}

static void test_many_ranges(void **state)
{
	struct bus *bus = *state;
	enum { N = 1000 };
	struct rec *recs = calloc(N, sizeof(*recs));
	uint8_t v;

	assert_non_null(recs);
	/* Map in a scrambled order (i * 7 mod N is a permutation: gcd(7, 1000) = 1). */
	for (unsigned k = 0; k < N; k++) {
		unsigned i = (k * 7) % N;

		recs[i].id = i;
		assert_int_equal(bus_map(bus, 0x10000 + i * 0x20, 0x10, &rec_ops, &recs[i]), 0);
	}
	assert_int_equal(bus->nr, N);
	for (unsigned i = 1; i < bus->nr; i++)
		assert_true(bus->ranges[i - 1].base + bus->ranges[i - 1].len <= bus->ranges[i].base);
	for (unsigned i = 0; i < N; i++) {
		assert_true(bus_read(bus, 0x10000 + i * 0x20 + 3, &v, 1));
		assert_int_equal(v, (uint8_t)(i + 3));
		assert_int_equal(recs[i].reads, 1);
		/* The gaps between ranges are unmapped. */
		assert_false(bus_read(bus, 0x10000 + i * 0x20 + 0x10, &v, 1));
	}
	for (unsigned i = 0; i < N; i += 2)
		assert_int_equal(bus_unmap(bus, 0x10000 + i * 0x20, &recs[i]), 0);
	assert_int_equal(bus->nr, N / 2);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(bus_read(bus, 0x10000 + i * 0x20, &v, 1), i % 2 == 1);
	free(recs);
}

struct remap_thread {
	struct bus *bus;
	struct rec *rec;
	volatile bool stop;
	unsigned failures;
};

static void *remapper(void *arg)
{
	struct remap_thread *t = arg;
	uint64_t at = 0x1000;

	for (unsigned i = 0; i < 2000; i++) {
		uint64_t to = at == 0x1000 ? 0x2000 : 0x1000;

		if (bus_remap(t->bus, at, to, t->rec) != 0)
			t->failures++;
		at = to;
	}
	t->stop = true;
	return NULL;
}

/* vCPU threads read while another moves a mapping (what a BAR move does): every read sees
 * either the device or all ones, never garbage. */
static void test_concurrent_remap(void **state)
{
	struct bus *bus = *state;
	struct rec a = { .id = 0x30 };
	struct remap_thread t = { .bus = bus, .rec = &a };
	pthread_t th;
	unsigned hits = 0, misses = 0;

	assert_int_equal(bus_map(bus, 0x1000, 0x10, &rec_ops, &a), 0);
	assert_int_equal(pthread_create(&th, NULL, remapper, &t), 0);
	while (!t.stop) {
		uint8_t v;

		if (bus_read(bus, 0x1004, &v, 1)) {
			assert_int_equal(v, 0x34);
			hits++;
		} else {
			assert_int_equal(v, 0xff);
			misses++;
		}
	}
	pthread_join(th, NULL);
	assert_int_equal(t.failures, 0);
	assert_true(hits + misses > 0);
	assert_int_equal(bus->nr, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_map_refuses_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_refuses_bad_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmapped_reads_all_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_straddling_is_unmapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_top_of_address_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_remap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
