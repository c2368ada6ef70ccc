// SPDX-License-Identifier: GPL-2.0-only
/* A recording fake of the hv_irq interface for unit tests (see fake_irq.h). */
#include "tests/unit/support/fake_irq.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

static struct fake_irq *fake_of(struct hv_irq *irq)
{
	return container_of(irq, struct fake_irq, irq);
}

/* Returns the injected error for op (caller holds the lock), or 0. */
static int fake_failing(const struct fake_irq *fi, unsigned op)
{
	return (fi->fail_mask & op) ? fi->fail_err : 0;
}

static int fake_line_set(struct hv_irq *irq, unsigned gsi, int level)
{
	struct fake_irq *fi = fake_of(irq);
	int r;

	pthread_mutex_lock(&fi->lock);
	r = fake_failing(fi, FAKE_IRQ_OP_LINE_SET);
	if (!r && gsi >= FAKE_IRQ_NR_GSI)
		r = -EINVAL;
	if (!r) {
		level = !!level;
		fi->line_calls[gsi]++;
		if (level && !fi->level[gsi])
			fi->raises[gsi]++;
		else if (!level && fi->level[gsi])
			fi->lowers[gsi]++;
		fi->level[gsi] = level;
	}
	pthread_mutex_unlock(&fi->lock);
	return r;
}

static int fake_msi_alloc(struct hv_irq *irq, unsigned *ret_gsi)
{
	struct fake_irq *fi = fake_of(irq);
	int r = -ENOSPC;

	pthread_mutex_lock(&fi->lock);
	if (fake_failing(fi, FAKE_IRQ_OP_MSI_ALLOC)) {
		r = fake_failing(fi, FAKE_IRQ_OP_MSI_ALLOC);
		goto out;
	}
	for (unsigned i = 0; i < FAKE_IRQ_MAX_MSI; i++) {
		if (!fi->msi[i].used) {
			fi->msi[i] = (struct fake_irq_msi){ .used = true };
			fi->msi_allocs++;
			*ret_gsi = FAKE_IRQ_MSI_BASE + i;
			r = 0;
			break;
		}
	}
out:
	pthread_mutex_unlock(&fi->lock);
	return r;
}

/* The route slot for gsi when allocated (caller holds the lock), else NULL. */
static struct fake_irq_msi *fake_msi_slot(struct fake_irq *fi, unsigned gsi)
{
	if (gsi < FAKE_IRQ_MSI_BASE || gsi - FAKE_IRQ_MSI_BASE >= FAKE_IRQ_MAX_MSI)
		return NULL;
	if (!fi->msi[gsi - FAKE_IRQ_MSI_BASE].used)
		return NULL;
	return &fi->msi[gsi - FAKE_IRQ_MSI_BASE];
}

static int fake_msi_update(struct hv_irq *irq, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct fake_irq *fi = fake_of(irq);
	struct fake_irq_msi *m;
	int r;

	pthread_mutex_lock(&fi->lock);
	r = fake_failing(fi, FAKE_IRQ_OP_MSI_UPDATE);
	if (!r) {
		m = fake_msi_slot(fi, gsi);
		if (!m) {
			r = -EINVAL;
		} else {
			m->addr = addr;
			m->data = data;
			m->updates++;
		}
	}
	pthread_mutex_unlock(&fi->lock);
	return r;
}

static void fake_msi_free(struct hv_irq *irq, unsigned gsi)
{
	struct fake_irq *fi = fake_of(irq);
	struct fake_irq_msi *m;

	pthread_mutex_lock(&fi->lock);
	m = fake_msi_slot(fi, gsi);
	if (m) {
		m->used = false;
		fi->msi_frees++;
	}
	pthread_mutex_unlock(&fi->lock);
}

static int fake_msi_signal(struct hv_irq *irq, uint64_t addr, uint32_t data)
{
	struct fake_irq *fi = fake_of(irq);
	int r;

	pthread_mutex_lock(&fi->lock);
	r = fake_failing(fi, FAKE_IRQ_OP_MSI_SIGNAL);
	if (!r) {
		if (fi->nr_signals < FAKE_IRQ_MAX_SIGNALS)
			fi->signals[fi->nr_signals] = (struct fake_irq_signal){ addr, data };
		fi->nr_signals++;
	}
	pthread_mutex_unlock(&fi->lock);
	return r;
}

static int fake_irqfd(struct hv_irq *irq, int fd, unsigned gsi, bool assign)
{
	struct fake_irq *fi = fake_of(irq);
	int r, found = -1;

	pthread_mutex_lock(&fi->lock);
	r = fake_failing(fi, FAKE_IRQ_OP_IRQFD);
	if (r)
		goto out;
	/* KVM keys irqfds by fd: one eventfd attaches to at most one GSI. */
	for (unsigned i = 0; i < fi->nr_irqfds; i++)
		if (fi->irqfds[i].fd == fd)
			found = (int)i;
	if (assign) {
		if (fd < 0)
			r = -EBADF;
		else if (found >= 0)
			r = -EEXIST;
		else if (fi->nr_irqfds == FAKE_IRQ_MAX_IRQFD)
			r = -ENOSPC;
		else
			fi->irqfds[fi->nr_irqfds++] = (struct fake_irq_irqfd){ fd, gsi };
	} else {
		if (found < 0 || fi->irqfds[found].gsi != gsi)
			r = -ENOENT;
		else
			fi->irqfds[found] = fi->irqfds[--fi->nr_irqfds];
	}
out:
	pthread_mutex_unlock(&fi->lock);
	return r;
}

static bool fake_ioeventfd_same(const struct fake_irq_ioeventfd *e, int fd, uint64_t addr,
				unsigned len, bool pio, int64_t datamatch)
{
	return e->fd == fd && e->addr == addr && e->len == len && e->pio == pio &&
	       e->datamatch == datamatch;
}

static int fake_ioeventfd(struct hv_irq *irq, int fd, uint64_t addr, unsigned len, bool pio,
			  int64_t datamatch, bool assign)
{
	struct fake_irq *fi = fake_of(irq);
	int r, found = -1;

	pthread_mutex_lock(&fi->lock);
	r = fake_failing(fi, FAKE_IRQ_OP_IOEVENTFD);
	if (r)
		goto out;
	if (len != 0 && len != 1 && len != 2 && len != 4 && len != 8) {
		r = -EINVAL;
		goto out;
	}
	for (unsigned i = 0; i < fi->nr_ioeventfds; i++) {
		const struct fake_irq_ioeventfd *e = &fi->ioeventfds[i];

		if (assign) {
			/* KVM refuses a second eventfd on the same address, width and match. */
			if (e->addr == addr && e->len == len && e->pio == pio && e->datamatch == datamatch)
				found = (int)i;
		} else if (fake_ioeventfd_same(e, fd, addr, len, pio, datamatch)) {
			found = (int)i;
		}
	}
	if (assign) {
		if (fd < 0)
			r = -EBADF;
		else if (found >= 0)
			r = -EEXIST;
		else if (fi->nr_ioeventfds == FAKE_IRQ_MAX_IOEVENTFD)
			r = -ENOSPC;
		else
			fi->ioeventfds[fi->nr_ioeventfds++] =
				(struct fake_irq_ioeventfd){ fd, addr, len, pio, datamatch };
	} else {
		if (found < 0)
			r = -ENOENT;
		else
			fi->ioeventfds[found] = fi->ioeventfds[--fi->nr_ioeventfds];
	}
out:
	pthread_mutex_unlock(&fi->lock);
	return r;
}

static const struct hv_irq_ops fake_irq_ops = {
	.line_set = fake_line_set,
	.msi_alloc = fake_msi_alloc,
	.msi_update = fake_msi_update,
	.msi_free = fake_msi_free,
	.msi_signal = fake_msi_signal,
	.irqfd = fake_irqfd,
	.ioeventfd = fake_ioeventfd,
};

void fake_irq_init(struct fake_irq *fi)
{
	memset(fi, 0, sizeof(*fi));
	fi->irq.ops = &fake_irq_ops;
	pthread_mutex_init(&fi->lock, NULL);
}

void fake_irq_destroy(struct fake_irq *fi)
{
	if (!fi)
		return;
	pthread_mutex_destroy(&fi->lock);
}

void fake_irq_fail(struct fake_irq *fi, unsigned mask, int err)
{
	pthread_mutex_lock(&fi->lock);
	fi->fail_mask = mask;
	fi->fail_err = err;
	pthread_mutex_unlock(&fi->lock);
}

int fake_irq_level(struct fake_irq *fi, unsigned gsi)
{
	int level = 0;

	pthread_mutex_lock(&fi->lock);
	if (gsi < FAKE_IRQ_NR_GSI)
		level = fi->level[gsi];
	pthread_mutex_unlock(&fi->lock);
	return level;
}

int fake_irq_msi_route(struct fake_irq *fi, unsigned gsi, uint64_t *ret_addr, uint32_t *ret_data)
{
	struct fake_irq_msi *m;
	int r = -ENOENT;

	pthread_mutex_lock(&fi->lock);
	m = fake_msi_slot(fi, gsi);
	if (m) {
		*ret_addr = m->addr;
		*ret_data = m->data;
		r = 0;
	}
	pthread_mutex_unlock(&fi->lock);
	return r;
}

unsigned fake_irq_msi_count(struct fake_irq *fi)
{
	unsigned n = 0;

	pthread_mutex_lock(&fi->lock);
	for (unsigned i = 0; i < FAKE_IRQ_MAX_MSI; i++)
		n += fi->msi[i].used;
	pthread_mutex_unlock(&fi->lock);
	return n;
}

int fake_irq_irqfd_for(struct fake_irq *fi, unsigned gsi)
{
	int fd = -1;

	pthread_mutex_lock(&fi->lock);
	for (unsigned i = 0; i < fi->nr_irqfds; i++)
		if (fi->irqfds[i].gsi == gsi)
			fd = fi->irqfds[i].fd;
	pthread_mutex_unlock(&fi->lock);
	return fd;
}

bool fake_irq_ioeventfd_at(struct fake_irq *fi, uint64_t addr, bool pio, struct fake_irq_ioeventfd *ret)
{
	bool found = false;

	pthread_mutex_lock(&fi->lock);
	for (unsigned i = 0; i < fi->nr_ioeventfds; i++) {
		if (fi->ioeventfds[i].addr == addr && fi->ioeventfds[i].pio == pio) {
			if (ret)
				*ret = fi->ioeventfds[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&fi->lock);
	return found;
}
