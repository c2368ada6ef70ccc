// SPDX-License-Identifier: GPL-2.0-only
/* Interval-map bus: binary search over sorted, non-overlapping ranges. */
#include "devices/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

int bus_init(struct bus *bus, const char *name)
{
	*bus = (struct bus){ .name = name };
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	if (!bus)
		return;
	free(bus->ranges);
	pthread_rwlock_destroy(&bus->lock);
	bus->ranges = NULL;
	bus->nr = bus->cap = 0;
}

/* Index of the first range whose end is above addr (caller holds the lock). */
static unsigned bus_lower_bound(const struct bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nr;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (r->base + r->len - 1 < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int bus_insert_locked(struct bus *bus, const struct bus_range *nr)
{
	unsigned i;

	i = bus_lower_bound(bus, nr->base);
	if (i < bus->nr && bus->ranges[i].base <= nr->base + nr->len - 1)
		return -EEXIST;
	if (bus->nr == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_range *n = realloc(bus->ranges, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		bus->ranges = n;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nr - i) * sizeof(*nr));
	bus->ranges[i] = *nr;
	bus->nr++;
	return 0;
}

static int bus_find_locked(const struct bus *bus, uint64_t base, void *dev)
{
	unsigned i = bus_lower_bound(bus, base);

	if (i < bus->nr && bus->ranges[i].base == base && bus->ranges[i].dev == dev)
		return (int)i;
	return -ENOENT;
}

static void bus_remove_locked(struct bus *bus, unsigned i)
{
	memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->nr - i - 1) * sizeof(bus->ranges[0]));
	bus->nr--;
}

int bus_map(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops, void *dev)
{
	struct bus_range nr = { .base = base, .len = len, .ops = ops, .dev = dev };
	int r;

	if (len == 0 || base + (len - 1) < base || !ops)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	r = bus_insert_locked(bus, &nr);
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

int bus_unmap(struct bus *bus, uint64_t base, void *dev)
{
	int i;

	pthread_rwlock_wrlock(&bus->lock);
	i = bus_find_locked(bus, base, dev);
	if (i >= 0)
		bus_remove_locked(bus, (unsigned)i);
	pthread_rwlock_unlock(&bus->lock);
	return i < 0 ? i : 0;
}

int bus_remap(struct bus *bus, uint64_t old_base, uint64_t new_base, void *dev)
{
	struct bus_range saved;
	int i, r;

	pthread_rwlock_wrlock(&bus->lock);
	i = bus_find_locked(bus, old_base, dev);
	if (i < 0) {
		r = i;
		goto out;
	}
	saved = bus->ranges[i];
	if (new_base + (saved.len - 1) < new_base) {
		r = -EINVAL;
		goto out;
	}
	bus_remove_locked(bus, (unsigned)i);
	saved.base = new_base;
	r = bus_insert_locked(bus, &saved);
	if (r < 0) {
		saved.base = old_base;
		(void)bus_insert_locked(bus, &saved);
	}
out:
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

static const struct bus_range *bus_lookup_locked(const struct bus *bus, uint64_t addr, unsigned len)
{
	unsigned i = bus_lower_bound(bus, addr);
	const struct bus_range *r;

	if (i >= bus->nr)
		return NULL;
	r = &bus->ranges[i];
	if (addr < r->base || !range_within(addr - r->base, len, r->len))
		return NULL;
	return r;
}

bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len)
{
	const struct bus_range *r;
	bool hit = false;

	pthread_rwlock_rdlock(&bus->lock);
	r = bus_lookup_locked(bus, addr, len);
	if (r && r->ops->read) {
		r->ops->read(r->dev, addr - r->base, data, len);
		hit = true;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!hit) {
		memset(data, 0xff, len);
		__atomic_add_fetch(&bus->unmapped_accesses, 1, __ATOMIC_RELAXED);
	}
	return hit;
}

bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len)
{
	const struct bus_range *r;
	bool hit = false;

	pthread_rwlock_rdlock(&bus->lock);
	r = bus_lookup_locked(bus, addr, len);
	if (r && r->ops->write) {
		r->ops->write(r->dev, addr - r->base, data, len);
		hit = true;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!hit)
		__atomic_add_fetch(&bus->unmapped_accesses, 1, __ATOMIC_RELAXED);
	return hit;
}
