/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Split virtqueue (virtio 1.2 section 2.7) over guest memory. The ring lives in memory the
 * guest owns and may change at any time: every descriptor is read once into a local copy and
 * validated there, chains are bounded by the queue size, and every buffer handed to a device
 * is a host pointer that gmem_ptr() has checked to lie wholly inside one guest RAM region.
 * A vq is used by one thread at a time (the device's io thread, under the device lock).
 */
#ifndef VMMS_DEVICES_VIRTIO_QUEUE_H
#define VMMS_DEVICES_VIRTIO_QUEUE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "hv/mem.h"

/* Largest queue size any vmms device offers; also the bound on segments in one chain. */
#define VQ_MAX_SIZE 256

/*
 * Errors from vq_enable()/vq_pop(), each distinct so tests and logs can tell them apart.
 * After any of them the transport puts the device in DEVICE_NEEDS_RESET.
 */
#define VQ_E_AVAIL_IDX  (-EBADMSG)    /* avail->idx ran more than queue size ahead */
#define VQ_E_INDEX      (-ERANGE)     /* head or next index >= table size */
#define VQ_E_LOOP       (-ELOOP)      /* chain longer than the queue size (cycle) */
#define VQ_E_FAULT      (-EFAULT)     /* buffer/table/ring not wholly inside guest RAM */
#define VQ_E_ZERO_LEN   (-EINVAL)     /* zero-length buffer */
#define VQ_E_OVERFLOW   (-EOVERFLOW)  /* addr+len wraps, or chain total over 4 GiB */
#define VQ_E_INDIRECT   (-EMSGSIZE)   /* indirect table length 0, not a multiple of 16, or > queue size */
#define VQ_E_PROTO      (-EPROTO)     /* nested indirect, INDIRECT|NEXT, indirect not negotiated,
					 readable after writable segment */
#define VQ_E_BROKEN     (-EIO)        /* queue already failed: nothing more until reset */

struct vq {
	const struct gmem *mem;
	uint16_t size;            /* power of two, <= VQ_MAX_SIZE */
	bool ready;               /* set by vq_enable() */
	bool broken;              /* an error was seen: pop refuses until vq_enable() again */
	bool event_idx;           /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;            /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host views of the three areas, checked once at enable (guest RAM does not move). */
	uint8_t *desc;            /* struct vring_desc[size] */
	uint16_t *avail;          /* flags, idx, ring[size], used_event */
	uint8_t *used;            /* flags, idx, {id,len}[size], avail_event */
	uint16_t last_avail;      /* next avail ring slot we will consume */
	uint16_t used_idx;        /* our copy of used->idx (we are its only writer) */
	uint16_t signalled_used;  /* used_idx when we last decided about an interrupt */
	bool signalled_valid;
};

/* One popped request: out (device-readable) segments first, then in (device-writable). */
struct vq_chain {
	uint16_t head;
	unsigned nr_out, nr_in;
	uint64_t out_len, in_len; /* byte totals */
	struct iovec iov[VQ_MAX_SIZE]; /* [0, nr_out) readable, [nr_out, nr_out+nr_in) writable */
};

/* Checks the three ring areas (alignment, inside guest RAM) and resets indices. 0 or VQ_E_*. */
int vq_enable(struct vq *vq, const struct gmem *mem, uint16_t size, uint64_t desc_gpa,
	      uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect);
/* Forgets the ring (device reset or queue disable). */
void vq_disable(struct vq *vq);

/* Pops the next available chain into *ret: 1 when one was popped, 0 when the queue is empty,
 * VQ_E_* (negative) when the guest's ring is malformed (the queue is then marked broken). */
int vq_pop(struct vq *vq, struct vq_chain *ret);
/* Returns a chain to the driver with the number of bytes written into its writable part. */
void vq_push(struct vq *vq, uint16_t head, uint32_t written_len);
/* True when the driver wants an interrupt for what was pushed since the last call
 * (VIRTIO_F_EVENT_IDX used_event, else VRING_AVAIL_F_NO_INTERRUPT). */
bool vq_should_notify(struct vq *vq);

/* Copy between a buffer and segments [skip bytes in]; return bytes copied. The segments were
 * range-checked at pop, so no further guest checks are needed. */
size_t vq_iov_read(const struct iovec *iov, unsigned nr, size_t skip, void *buf, size_t len);
size_t vq_iov_write(const struct iovec *iov, unsigned nr, size_t skip, const void *buf, size_t len);

#endif
