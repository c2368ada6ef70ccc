/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A fake `struct hv_irq` for unit tests: it records every call a device makes (line levels
 * and edge counts per GSI, MSI routes, direct MSIs, irqfds, ioeventfds) so a test can assert
 * on what the device did, and it can be told to fail chosen operations.
 *
 * Usage:
 *	struct fake_irq fi;
 *	fake_irq_init(&fi);
 *	uart8250_init(&u, ..., &fi.irq, 4, ...);   // pass &fi.irq where a struct hv_irq * goes
 *	...
 *	assert_int_equal(fake_irq_level(&fi, 4), 1);
 *	assert_int_equal(fi.raises[4], 1);
 *	fake_irq_destroy(&fi);
 *
 * The fake behaves like the KVM implementation where a device could notice: msi_alloc hands
 * out distinct GSIs (starting at FAKE_IRQ_MSI_BASE), msi_update/msi_free refuse a GSI that
 * was not allocated (-EINVAL), attaching the same irqfd or ioeventfd twice gives -EEXIST and
 * detaching one that is not attached gives -ENOENT. All calls are serialized by a mutex, so
 * devices may call in from several threads. No fd is ever read, written or closed.
 */
#ifndef VMMS_TESTS_FAKE_IRQ_H
#define VMMS_TESTS_FAKE_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/irq.h"

#define FAKE_IRQ_NR_GSI 256      /* line_set on a GSI >= this gives -EINVAL */
#define FAKE_IRQ_MSI_BASE 24     /* first GSI msi_alloc hands out (after the IOAPIC pins) */
#define FAKE_IRQ_MAX_MSI 64      /* msi_alloc gives -ENOSPC past this many live routes */
#define FAKE_IRQ_MAX_IRQFD 64
#define FAKE_IRQ_MAX_IOEVENTFD 64
#define FAKE_IRQ_MAX_SIGNALS 64  /* direct MSIs remembered (the count goes on past this) */

/* Operations that can be made to fail, as bits for fake_irq_fail(). */
enum fake_irq_op {
	FAKE_IRQ_OP_LINE_SET = 1u << 0,
	FAKE_IRQ_OP_MSI_ALLOC = 1u << 1,
	FAKE_IRQ_OP_MSI_UPDATE = 1u << 2,
	FAKE_IRQ_OP_MSI_SIGNAL = 1u << 3,
	FAKE_IRQ_OP_IRQFD = 1u << 4,
	FAKE_IRQ_OP_IOEVENTFD = 1u << 5,
};

struct fake_irq_msi {
	bool used;
	uint64_t addr;
	uint32_t data;
	unsigned updates; /* msi_update calls on this route */
};

struct fake_irq_irqfd {
	int fd;
	unsigned gsi;
};

struct fake_irq_ioeventfd {
	int fd;
	uint64_t addr;
	unsigned len;
	bool pio;
	int64_t datamatch;
};

struct fake_irq_signal {
	uint64_t addr;
	uint32_t data;
};

struct fake_irq {
	struct hv_irq irq; /* hand &fi.irq to the device under test */
	pthread_mutex_t lock;

	/* line_set: current level, number of 0->1 and 1->0 transitions, and calls per GSI
	 * (calls > raises + lowers means the device set a level it already had). */
	int level[FAKE_IRQ_NR_GSI];
	unsigned raises[FAKE_IRQ_NR_GSI];
	unsigned lowers[FAKE_IRQ_NR_GSI];
	unsigned line_calls[FAKE_IRQ_NR_GSI];

	/* MSI routes, indexed by gsi - FAKE_IRQ_MSI_BASE. */
	struct fake_irq_msi msi[FAKE_IRQ_MAX_MSI];
	unsigned msi_allocs, msi_frees;

	/* msi_signal calls, oldest first. */
	struct fake_irq_signal signals[FAKE_IRQ_MAX_SIGNALS];
	unsigned nr_signals;

	/* Currently attached irqfds and ioeventfds (unordered). */
	struct fake_irq_irqfd irqfds[FAKE_IRQ_MAX_IRQFD];
	unsigned nr_irqfds;
	struct fake_irq_ioeventfd ioeventfds[FAKE_IRQ_MAX_IOEVENTFD];
	unsigned nr_ioeventfds;

	/* Failure injection: ops in fail_mask return fail_err (a negative errno). */
	unsigned fail_mask;
	int fail_err;
};

void fake_irq_init(struct fake_irq *fi);
void fake_irq_destroy(struct fake_irq *fi);
/* Makes the operations in mask (enum fake_irq_op bits) return err (negative errno) from now
 * on; mask 0 stops failing. */
void fake_irq_fail(struct fake_irq *fi, unsigned mask, int err);

/* Current level of gsi (0 for an out-of-range gsi). */
int fake_irq_level(struct fake_irq *fi, unsigned gsi);
/* Route of an allocated MSI GSI: 0, or -ENOENT when gsi is not allocated. */
int fake_irq_msi_route(struct fake_irq *fi, unsigned gsi, uint64_t *ret_addr, uint32_t *ret_data);
/* Number of MSI GSIs currently allocated. */
unsigned fake_irq_msi_count(struct fake_irq *fi);
/* fd of the irqfd attached to gsi, or -1. */
int fake_irq_irqfd_for(struct fake_irq *fi, unsigned gsi);
/* The attached ioeventfd at (addr, pio) for any len/datamatch, copied to *ret; true if found. */
bool fake_irq_ioeventfd_at(struct fake_irq *fi, uint64_t addr, bool pio, struct fake_irq_ioeventfd *ret);

#endif
