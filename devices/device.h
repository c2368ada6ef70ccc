/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The device life-cycle ops table. Each device model fills one static const table with
 * designated initializers; any op may be NULL. The worker keeps the list of devices of a
 * machine and walks it for reset, pause, resume and teardown.
 */
#ifndef VMMS_DEVICES_DEVICE_H
#define VMMS_DEVICES_DEVICE_H

struct device;

struct device_ops {
	const char *name; /* "8250", "virtio-blk", ... */
	int (*realize)(struct device *dev);
	void (*reset)(struct device *dev);
	void (*pause)(struct device *dev);  /* stop touching guest memory; in-flight I/O drains */
	void (*resume)(struct device *dev);
	void (*destroy)(struct device *dev);
	/* save/load come with the state-file format (issue for snapshots). */
};

/* Embedded in every device model; the worker links them into its device list. */
struct device {
	const struct device_ops *ops;
	const char *id; /* instance name for messages, e.g. "vda", "com1" */
	struct device *next;
};

#endif
