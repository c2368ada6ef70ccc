/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * An address bus (PIO or MMIO): a sorted interval map from address ranges to device
 * callbacks. Overlapping mappings are refused; reads where nothing is mapped return all
 * ones, writes there are dropped. vCPU threads dispatch concurrently; the map is guarded by a
 * read-write lock because the guest can move PCI BARs while other vCPUs run.
 */
#ifndef VMMS_DEVICES_BUS_H
#define VMMS_DEVICES_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* offset is relative to the start of the mapping; len is 1, 2, 4 or 8 (MMIO may be other sizes up to 8). */
struct bus_ops {
	void (*read)(void *dev, uint64_t offset, void *data, unsigned len);
	void (*write)(void *dev, uint64_t offset, const void *data, unsigned len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *dev;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;
	unsigned nr, cap;
	struct bus_range *ranges;
	uint64_t unmapped_accesses; /* counted, for tests and statistics */
};

int bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);
/* 0, -EINVAL (empty or wrapping range), -EEXIST (overlap), -ENOMEM. */
int bus_map(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops, void *dev);
/* Removes the mapping starting exactly at base owned by dev. 0 or -ENOENT. */
int bus_unmap(struct bus *bus, uint64_t base, void *dev);
/* Moves dev's mapping from old_base to new_base (PCI BAR programming). */
int bus_remap(struct bus *bus, uint64_t old_base, uint64_t new_base, void *dev);
/* Dispatch. An access that straddles the end of a mapping is treated as unmapped.
 * Return true when a device handled it. */
bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len);
bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len);

#endif
