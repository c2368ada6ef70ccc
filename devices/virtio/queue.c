// SPDX-License-Identifier: GPL-2.0-only
/* Split virtqueue parsing: hostile guest rings in, bounded and range-checked segments out. */
#include "devices/virtio/queue.h"

#include <endian.h>
#include <string.h>

#include "lib/util.h"

#define DESC_SIZE 16u
#define DESC_F_NEXT 1u
#define DESC_F_WRITE 2u
#define DESC_F_INDIRECT 4u
#define AVAIL_F_NO_INTERRUPT 1u

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Stops the compiler from re-reading guest memory in place of a local copy. */
#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

/*
 * Reads one descriptor from guest memory exactly once. The guest can rewrite the table while we
 * look at it; validating the local copy (never the guest's bytes again) closes that window.
 */
static void desc_read(const uint8_t *table, unsigned i, struct desc *d)
{
	uint8_t raw[DESC_SIZE];

	memcpy(raw, table + (size_t)i * DESC_SIZE, DESC_SIZE);
	compiler_barrier();
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

int vq_enable(struct vq *vq, const struct gmem *mem, uint16_t size, uint64_t desc_gpa,
	      uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect)
{
	void *d, *a, *u;

	*vq = (struct vq){ .mem = mem };
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)))
		return VQ_E_INDEX;
	/* Alignments from virtio 1.2 2.7: descriptor table 16, driver area 2, device area 4. */
	if (!IS_ALIGNED(desc_gpa, 16) || !IS_ALIGNED(avail_gpa, 2) || !IS_ALIGNED(used_gpa, 4))
		return VQ_E_FAULT;
	d = gmem_ptr(mem, desc_gpa, (uint64_t)size * DESC_SIZE);
	a = gmem_ptr(mem, avail_gpa, 6 + 2 * (uint64_t)size);
	u = gmem_ptr(mem, used_gpa, 6 + 8 * (uint64_t)size);
	if (!d || !a || !u)
		return VQ_E_FAULT;
	vq->size = size;
	vq->desc_gpa = desc_gpa;
	vq->avail_gpa = avail_gpa;
	vq->used_gpa = used_gpa;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->ready = true;
	return 0;
}

void vq_disable(struct vq *vq)
{
	const struct gmem *mem = vq->mem;

	*vq = (struct vq){ .mem = mem };
}

static uint16_t *used_idx_ptr(struct vq *vq)
{
	return (uint16_t *)(vq->used + 2);
}

static uint16_t *avail_event_ptr(struct vq *vq)
{
	return (uint16_t *)(vq->used + 4 + 8 * (size_t)vq->size);
}

static uint16_t avail_idx_load(struct vq *vq)
{
	/* Acquire: the ring entries the driver wrote before bumping idx are visible after this. */
	return le16toh(__atomic_load_n(&vq->avail[1], __ATOMIC_ACQUIRE));
}

static int vq_fail(struct vq *vq, int err)
{
	vq->broken = true;
	return err;
}

/* Walks one chain starting at head. Guest input: every field is checked before use. */
static int chain_walk(struct vq *vq, uint16_t head, struct vq_chain *c)
{
	const uint8_t *table = vq->desc;
	unsigned table_size = vq->size, idx = head, count = 0;
	bool in_indirect = false;
	uint64_t total = 0;
	struct desc d;

	c->head = head;
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		void *p;

		if (idx >= table_size)
			return VQ_E_INDEX;
		desc_read(table, idx, &d);
		if (d.flags & DESC_F_INDIRECT) {
			if (!vq->indirect || in_indirect || (d.flags & DESC_F_NEXT))
				return VQ_E_PROTO;
			if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > vq->size)
				return VQ_E_INDIRECT;
			if (!range_within(d.addr, d.len, UINT64_MAX))
				return VQ_E_OVERFLOW;
			p = gmem_ptr(vq->mem, d.addr, d.len);
			if (!p)
				return VQ_E_FAULT;
			table = p;
			table_size = d.len / DESC_SIZE;
			in_indirect = true;
			idx = 0;
			continue;
		}
		/* Every descriptor, direct or in an indirect table, counts against one bound:
		 * a cycle anywhere ends here instead of spinning. */
		if (++count > vq->size)
			return VQ_E_LOOP;
		if (d.len == 0)
			return VQ_E_ZERO_LEN;
		if (!range_within(d.addr, d.len, UINT64_MAX))
			return VQ_E_OVERFLOW;
		p = gmem_ptr(vq->mem, d.addr, d.len);
		if (!p)
			return VQ_E_FAULT;
		total += d.len;
		if (total > UINT32_MAX)
			return VQ_E_OVERFLOW;
		if (d.flags & DESC_F_WRITE) {
			c->iov[c->nr_out + c->nr_in] = (struct iovec){ p, d.len };
			c->nr_in++;
			c->in_len += d.len;
		} else {
			if (c->nr_in)
				return VQ_E_PROTO;
			c->iov[c->nr_out] = (struct iovec){ p, d.len };
			c->nr_out++;
			c->out_len += d.len;
		}
		if (!(d.flags & DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

int vq_pop(struct vq *vq, struct vq_chain *ret)
{
	uint16_t avail_idx, pending, head;
	int r;

	if (!vq->ready || vq->broken)
		return VQ_E_BROKEN;
	avail_idx = avail_idx_load(vq);
	pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0 && vq->event_idx) {
		/*
		 * Tell the driver which index to kick at, then look again: the full barrier orders
		 * our avail_event store before the re-read of avail->idx, pairing with the driver's
		 * barrier between its idx store and its avail_event load. Without it a buffer added
		 * in between would get neither a kick nor our attention.
		 */
		__atomic_store_n(avail_event_ptr(vq), htole16(vq->last_avail), __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = avail_idx_load(vq);
		pending = (uint16_t)(avail_idx - vq->last_avail);
	}
	if (pending == 0)
		return 0;
	if (pending > vq->size)
		return vq_fail(vq, VQ_E_AVAIL_IDX);
	head = le16toh(__atomic_load_n(&vq->avail[2 + (vq->last_avail & (vq->size - 1))], __ATOMIC_RELAXED));
	if (head >= vq->size)
		return vq_fail(vq, VQ_E_INDEX);
	r = chain_walk(vq, head, ret);
	if (r < 0)
		return vq_fail(vq, r);
	vq->last_avail++;
	if (vq->event_idx)
		__atomic_store_n(avail_event_ptr(vq), htole16(vq->last_avail), __ATOMIC_RELAXED);
	return 1;
}

void vq_push(struct vq *vq, uint16_t head, uint32_t written_len)
{
	uint8_t *elem;
	uint32_t id = htole32(head), len = htole32(written_len);

	if (!vq->ready)
		return;
	elem = vq->used + 4 + 8 * (size_t)(vq->used_idx & (vq->size - 1));
	memcpy(elem, &id, 4);
	memcpy(elem + 4, &len, 4);
	vq->used_idx++;
	/* Release: the element and the data written into the buffers are visible to the driver
	 * before it can see the new used->idx. */
	__atomic_store_n(used_idx_ptr(vq), htole16(vq->used_idx), __ATOMIC_RELEASE);
}

bool vq_should_notify(struct vq *vq)
{
	uint16_t old, new, event;
	bool valid;

	if (!vq->ready)
		return false;
	/* Full barrier: our used->idx store must be visible before we read the driver's
	 * suppression fields, or we could skip an interrupt the driver is waiting for. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(le16toh(__atomic_load_n(&vq->avail[0], __ATOMIC_RELAXED)) & AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_valid;
	new = vq->used_idx;
	vq->signalled_used = new;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	event = le16toh(__atomic_load_n(&vq->avail[2 + vq->size], __ATOMIC_RELAXED));
	/* virtio 1.2 2.7.10: notify when used_event lies in (old, new]. */
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

size_t vq_iov_read(const struct iovec *iov, unsigned nr, size_t skip, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < nr && done < len; i++) {
		size_t n;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		n = MIN(iov[i].iov_len - skip, len - done);
		memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + skip, n);
		done += n;
		skip = 0;
	}
	return done;
}

size_t vq_iov_write(const struct iovec *iov, unsigned nr, size_t skip, const void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < nr && done < len; i++) {
		size_t n;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		n = MIN(iov[i].iov_len - skip, len - done);
		memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)buf + done, n);
		done += n;
		skip = 0;
	}
	return done;
}
