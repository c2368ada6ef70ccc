// SPDX-License-Identifier: GPL-2.0-only
/* Split virtqueue parsing: good chains parse exactly, every malformed ring gives its error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "devices/virtio/queue.h"
#include "hv/mem.h"

#define QSZ 16
#define DESC 0x1000ULL
#define AVAIL 0x2000ULL
#define USED 0x3000ULL
#define DATA 0x4000ULL
#define REGION0_SIZE 0x10000ULL
#define REGION1 0x100000ULL /* second region, after a hole */

struct fx {
	struct gmem mem;
	struct vq vq;
	struct vq_chain chain;
	uint16_t avail_idx;
};

static int setup(void **state)
{
	const struct gmem_layout l[] = { { 0, REGION0_SIZE }, { REGION1, 0x10000 } };
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gmem_init_anon(&f->mem, l, 2), 0);
	assert_int_equal(vq_enable(&f->vq, &f->mem, QSZ, DESC, AVAIL, USED, false, true), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	gmem_destroy(&f->mem);
	free(f);
	return 0;
}

static void put_desc(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *p = gmem_ptr(&f->mem, table + 16 * i, 16);

	assert_non_null(p);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void add_avail(struct fx *f, uint16_t head)
{
	uint16_t *a = gmem_ptr(&f->mem, AVAIL, 6 + 2 * QSZ);

	a[2 + (f->avail_idx % QSZ)] = head;
	f->avail_idx++;
	a[1] = f->avail_idx;
}

static uint16_t *avail_hdr(struct fx *f)
{
	return gmem_ptr(&f->mem, AVAIL, 6 + 2 * QSZ);
}

static uint8_t *used_area(struct fx *f)
{
	return gmem_ptr(&f->mem, USED, 6 + 8 * QSZ);
}

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static void expect_error(struct fx *f, int err)
{
	assert_int_equal(vq_pop(&f->vq, &f->chain), err);
	assert_true(f->vq.broken);
	/* A broken queue stays broken until re-enabled. */
	assert_int_equal(vq_pop(&f->vq, &f->chain), VQ_E_BROKEN);
}

static void test_direct_chain(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 3, DATA, 16, F_NEXT, 7);
	put_desc(f, DESC, 7, DATA + 0x100, 100, F_NEXT, 1);
	put_desc(f, DESC, 1, DATA + 0x200, 512, F_NEXT | F_WRITE, 2);
	put_desc(f, DESC, 2, REGION1 + 0x10, 1, F_WRITE, 9);
	add_avail(f, 3);
	assert_int_equal(vq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 3);
	assert_int_equal(f->chain.nr_out, 2);
	assert_int_equal(f->chain.nr_in, 2);
	assert_int_equal(f->chain.out_len, 116);
	assert_int_equal(f->chain.in_len, 513);
	assert_ptr_equal(f->chain.iov[0].iov_base, gmem_ptr(&f->mem, DATA, 1));
	assert_int_equal(f->chain.iov[1].iov_len, 100);
	assert_ptr_equal(f->chain.iov[3].iov_base, gmem_ptr(&f->mem, REGION1 + 0x10, 1));
	assert_int_equal(vq_pop(&f->vq, &f->chain), 0);

	vq_push(&f->vq, 3, 513);
	assert_int_equal(*(uint16_t *)(used_area(f) + 2), 1);
	assert_int_equal(*(uint32_t *)(used_area(f) + 4), 3);
	assert_int_equal(*(uint32_t *)(used_area(f) + 8), 513);
}

static void test_indirect_chain(void **state)
{
	struct fx *f = *state;
	const uint64_t tbl = DATA + 0x1000;

	put_desc(f, tbl, 0, DATA, 16, F_NEXT, 2);
	put_desc(f, tbl, 2, DATA + 0x40, 4096, F_NEXT | F_WRITE, 1);
	put_desc(f, tbl, 1, DATA + 0x2000, 1, F_WRITE, 0);
	put_desc(f, DESC, 0, tbl, 3 * 16, F_INDIRECT, 0);
	add_avail(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(f->chain.nr_out, 1);
	assert_int_equal(f->chain.nr_in, 2);
	assert_int_equal(f->chain.iov[1].iov_len, 4096);
	assert_int_equal(f->chain.in_len, 4097);
}

static void test_iov_copy(void **state)
{
	struct fx *f = *state;
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8] = { 0 };

	put_desc(f, DESC, 0, DATA, 3, F_NEXT | F_WRITE, 1);
	put_desc(f, DESC, 1, DATA + 0x100, 5, F_WRITE, 0);
	add_avail(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(vq_iov_write(f->chain.iov, 2, 1, buf, 8), 7);
	assert_int_equal(*(uint8_t *)gmem_ptr(&f->mem, DATA + 1, 1), 1);
	assert_int_equal(*(uint8_t *)gmem_ptr(&f->mem, DATA + 0x100, 1), 3);
	assert_int_equal(vq_iov_read(f->chain.iov, 2, 2, out, 8), 6);
	assert_memory_equal(out, buf + 1, 6);
}

static void test_cycle(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA, 8, F_NEXT, 1);
	put_desc(f, DESC, 1, DATA, 8, F_NEXT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_LOOP);
}

static void test_self_loop_writable(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 5, DATA, 8, F_NEXT | F_WRITE, 5);
	add_avail(f, 5);
	expect_error(f, VQ_E_LOOP);
}

static void test_chain_longer_than_queue(void **state)
{
	struct fx *f = *state;

	/* An indirect table may not hold more than queue size descriptors. */
	for (unsigned i = 0; i < QSZ + 1; i++)
		put_desc(f, DATA + 0x1000, i, DATA, 8, F_NEXT, (uint16_t)(i + 1));
	put_desc(f, DESC, 0, DATA + 0x1000, (QSZ + 1) * 16, F_INDIRECT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_INDIRECT);
}

static void test_indirect_cycle(void **state)
{
	struct fx *f = *state;

	for (unsigned i = 0; i < 4; i++)
		put_desc(f, DATA + 0x1000, i, DATA, 8, F_NEXT, (uint16_t)((i + 1) % 4));
	put_desc(f, DESC, 0, DATA + 0x1000, 4 * 16, F_INDIRECT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_LOOP);
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA, 8, F_NEXT, QSZ);
	add_avail(f, 0);
	expect_error(f, VQ_E_INDEX);
}

static void test_indirect_next_out_of_range(void **state)
{
	struct fx *f = *state;

	put_desc(f, DATA + 0x1000, 0, DATA, 8, F_NEXT, 2); /* table has 2 entries */
	put_desc(f, DESC, 0, DATA + 0x1000, 32, F_INDIRECT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_INDEX);
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;

	add_avail(f, QSZ);
	expect_error(f, VQ_E_INDEX);
}

static void test_avail_idx_far_ahead(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA, 8, 0, 0);
	avail_hdr(f)[1] = QSZ + 1;
	expect_error(f, VQ_E_AVAIL_IDX);
}

static void test_avail_idx_full_queue_ok(void **state)
{
	struct fx *f = *state;

	for (unsigned i = 0; i < QSZ; i++) {
		put_desc(f, DESC, i, DATA + 8 * i, 8, 0, 0);
		add_avail(f, (uint16_t)i);
	}
	for (unsigned i = 0; i < QSZ; i++) {
		assert_int_equal(vq_pop(&f->vq, &f->chain), 1);
		assert_int_equal(f->chain.head, i);
	}
	assert_int_equal(vq_pop(&f->vq, &f->chain), 0);
}

static void test_addr_outside_memory(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, 0x80000, 8, 0, 0); /* in the hole between regions */
	add_avail(f, 0);
	expect_error(f, VQ_E_FAULT);
}

static void test_addr_straddles_region_end(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, REGION0_SIZE - 4, 8, 0, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_FAULT);
}

static void test_zero_length(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA, 0, 0, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_ZERO_LEN);
}

static void test_huge_length_wraps(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, UINT64_MAX - 16, 0xffffffffu, 0, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_OVERFLOW);
}

static void test_huge_length_in_memory_start(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA, 0xffffffffu, 0, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_FAULT);
}

static void test_indirect_bad_len(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA + 0x1000, 24, F_INDIRECT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_INDIRECT);
}

static void test_indirect_zero_len(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA + 0x1000, 0, F_INDIRECT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_INDIRECT);
}

static void test_indirect_nested(void **state)
{
	struct fx *f = *state;

	put_desc(f, DATA + 0x1000, 0, DATA + 0x2000, 16, F_INDIRECT, 0);
	put_desc(f, DESC, 0, DATA + 0x1000, 16, F_INDIRECT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_PROTO);
}

static void test_indirect_outside_memory(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, REGION0_SIZE - 16, 32, F_INDIRECT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_FAULT);
}

static void test_indirect_with_next(void **state)
{
	struct fx *f = *state;

	put_desc(f, DATA + 0x1000, 0, DATA, 8, 0, 0);
	put_desc(f, DESC, 0, DATA + 0x1000, 16, F_INDIRECT | F_NEXT, 1);
	add_avail(f, 0);
	expect_error(f, VQ_E_PROTO);
}

static void test_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;

	assert_int_equal(vq_enable(&f->vq, &f->mem, QSZ, DESC, AVAIL, USED, false, false), 0);
	put_desc(f, DATA + 0x1000, 0, DATA, 8, 0, 0);
	put_desc(f, DESC, 0, DATA + 0x1000, 16, F_INDIRECT, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_PROTO);
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA, 8, F_NEXT | F_WRITE, 1);
	put_desc(f, DESC, 1, DATA, 8, 0, 0);
	add_avail(f, 0);
	expect_error(f, VQ_E_PROTO);
}

static void test_total_over_4g(void **state)
{
	const struct gmem_layout l[] = { { 0, 0x200000000ULL } }; /* 8 GiB, NORESERVE */
	struct gmem mem;
	struct vq vq;
	struct vq_chain *c = malloc(sizeof(*c));
	uint8_t *base;

	assert_non_null(c);
	if (gmem_init_anon(&mem, l, 1) < 0) {
		free(c);
		skip();
	}
	assert_int_equal(vq_enable(&vq, &mem, 4, 0, 0x100, 0x200, false, false), 0);
	base = gmem_ptr(&mem, 0, 0x300);
	for (unsigned i = 0; i < 2; i++) {
		uint64_t addr = 0x1000;
		uint32_t len = 0xf0000000u;
		uint16_t flags = i == 0 ? F_NEXT : 0, next = 1;

		memcpy(base + 16 * i, &addr, 8);
		memcpy(base + 16 * i + 8, &len, 4);
		memcpy(base + 16 * i + 12, &flags, 2);
		memcpy(base + 16 * i + 14, &next, 2);
	}
	((uint16_t *)(base + 0x100))[2] = 0;
	((uint16_t *)(base + 0x100))[1] = 1;
	assert_int_equal(vq_pop(&vq, c), VQ_E_OVERFLOW);
	gmem_destroy(&mem);
	free(c);
}

static void test_enable_checks(void **state)
{
	struct fx *f = *state;
	struct vq vq;

	assert_int_equal(vq_enable(&vq, &f->mem, 0, DESC, AVAIL, USED, false, false), VQ_E_INDEX);
	assert_int_equal(vq_enable(&vq, &f->mem, 12, DESC, AVAIL, USED, false, false), VQ_E_INDEX);
	assert_int_equal(vq_enable(&vq, &f->mem, 512, DESC, AVAIL, USED, false, false), VQ_E_INDEX);
	assert_int_equal(vq_enable(&vq, &f->mem, QSZ, DESC + 8, AVAIL, USED, false, false), VQ_E_FAULT);
	assert_int_equal(vq_enable(&vq, &f->mem, QSZ, DESC, AVAIL, USED + 2, false, false), VQ_E_FAULT);
	assert_int_equal(vq_enable(&vq, &f->mem, QSZ, DESC, AVAIL, REGION0_SIZE - 64, false, false), VQ_E_FAULT);
	assert_false(vq.ready);
	assert_int_equal(vq_pop(&vq, &f->chain), VQ_E_BROKEN);
}

static void test_no_interrupt_flag(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC, 0, DATA, 8, 0, 0);
	add_avail(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain), 1);
	vq_push(&f->vq, 0, 0);
	assert_true(vq_should_notify(&f->vq));
	avail_hdr(f)[0] = 1; /* VRING_AVAIL_F_NO_INTERRUPT */
	assert_false(vq_should_notify(&f->vq));
}

static void test_event_idx(void **state)
{
	struct fx *f = *state;
	uint16_t *used_event;

	assert_int_equal(vq_enable(&f->vq, &f->mem, QSZ, DESC, AVAIL, USED, true, false), 0);
	used_event = &avail_hdr(f)[2 + QSZ];
	for (unsigned i = 0; i < 8; i++)
		put_desc(f, DESC, i, DATA, 8, 0, 0);

	/* avail_event follows what we consumed, also when the queue runs empty. */
	add_avail(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(*(uint16_t *)(used_area(f) + 4 + 8 * QSZ), 1);
	assert_int_equal(vq_pop(&f->vq, &f->chain), 0);
	assert_int_equal(*(uint16_t *)(used_area(f) + 4 + 8 * QSZ), 1);

	*used_event = 0;
	vq_push(&f->vq, 0, 0); /* used idx 0 -> 1: first decision always notifies */
	assert_true(vq_should_notify(&f->vq));
	/* Nothing new pushed: no interrupt. */
	assert_false(vq_should_notify(&f->vq));

	/* Driver wants an interrupt only once used idx passes 3 (used_event = 3). */
	*used_event = 3;
	vq_push(&f->vq, 1, 0); /* 2 */
	assert_false(vq_should_notify(&f->vq));
	vq_push(&f->vq, 2, 0); /* 3 */
	assert_false(vq_should_notify(&f->vq));
	vq_push(&f->vq, 3, 0); /* 4: crosses event 3 */
	assert_true(vq_should_notify(&f->vq));
	/* Batched: two pushes crossing the event in one decision notify once. */
	*used_event = 4;
	vq_push(&f->vq, 4, 0);
	vq_push(&f->vq, 5, 0); /* 4 -> 6, event 4 in (4, 6] as new-event-1=1 < 2 */
	assert_true(vq_should_notify(&f->vq));
	/* Event index behind: no notification. */
	*used_event = 2;
	vq_push(&f->vq, 6, 0);
	assert_false(vq_should_notify(&f->vq));
	/* NO_INTERRUPT flag is ignored with EVENT_IDX. */
	avail_hdr(f)[0] = 1;
	*used_event = 7;
	vq_push(&f->vq, 7, 0); /* 7 -> 8 */
	assert_true(vq_should_notify(&f->vq));
}

static void test_event_idx_wraparound(void **state)
{
	struct fx *f = *state;
	uint16_t *used_event;

	assert_int_equal(vq_enable(&f->vq, &f->mem, QSZ, DESC, AVAIL, USED, true, false), 0);
	used_event = &avail_hdr(f)[2 + QSZ];
	f->vq.used_idx = 0xfffe;
	f->vq.signalled_used = 0xfffe;
	f->vq.signalled_valid = true;
	*used_event = 0xffff;
	vq_push(&f->vq, 0, 0); /* 0xffff */
	assert_false(vq_should_notify(&f->vq));
	vq_push(&f->vq, 0, 0); /* 0x0000: crosses 0xffff */
	assert_true(vq_should_notify(&f->vq));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_direct_chain),
		T(test_indirect_chain),
		T(test_iov_copy),
		T(test_cycle),
		T(test_self_loop_writable),
		T(test_chain_longer_than_queue),
		T(test_indirect_cycle),
		T(test_next_out_of_range),
		T(test_indirect_next_out_of_range),
		T(test_head_out_of_range),
		T(test_avail_idx_far_ahead),
		T(test_avail_idx_full_queue_ok),
		T(test_addr_outside_memory),
		T(test_addr_straddles_region_end),
		T(test_zero_length),
		T(test_huge_length_wraps),
		T(test_huge_length_in_memory_start),
		T(test_indirect_bad_len),
		T(test_indirect_zero_len),
		T(test_indirect_nested),
		T(test_indirect_outside_memory),
		T(test_indirect_with_next),
		T(test_indirect_not_negotiated),
		T(test_readable_after_writable),
		T(test_total_over_4g),
		T(test_enable_checks),
		T(test_no_interrupt_flag),
		T(test_event_idx),
		T(test_event_idx_wraparound),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
