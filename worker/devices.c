// SPDX-License-Identifier: GPL-2.0-only
/* The device set of a machine: where each device sits and what it is connected to. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/rtc.h"
#include "devices/uart8250.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/console.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "lib/log.h"
#include "lib/util.h"
#include "worker/layout.h"
#include "worker/machine.h"
#include "worker/vsock_host.h"

struct machine_devices {
	struct uart8250 com1;
	struct i8042 kbd;
	struct rtc rtc;
	struct acpi_pm pm;
	bool have_com1, have_kbd, have_rtc, have_pm, have_pci;
	unsigned nr_virtio;
	struct virtio_dev *virtio[VM_MAX_DISKS + 3];
	struct virtio_blk blk[VM_MAX_DISKS];
	struct virtio_rng rng;
	struct virtio_console con;
	struct virtio_vsock vsock;
};

static void serial_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct machine *m = opaque;

	chardev_write(&m->res->serial, buf, len);
}

static void console_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct machine *m = opaque;

	chardev_write(&m->res->console, buf, len);
}

static void guest_poweroff(void *opaque)
{
	machine_request_stop(opaque, MACHINE_POWEROFF, "guest powered off (ACPI S5)");
}

static void guest_reset(void *opaque)
{
	machine_request_stop(opaque, MACHINE_REBOOT, "guest reset");
}

static int add_virtio(struct machine *m, struct virtio_dev *vdev, const char *what, char *err, size_t errlen)
{
	int r = pci_host_add(&m->pci, &vdev->pci, -1);

	if (r < 0) {
		snprintf(err, errlen, "%s: cannot plug it into the PCI bus: %s", what, strerror(-r));
		virtio_dev_destroy(vdev);
		return r;
	}
	m->devs->virtio[m->devs->nr_virtio++] = vdev;
	return 0;
}

int machine_devices_create(struct machine *m, char *err, size_t errlen)
{
	const struct vm_config *cfg = m->cfg;
	struct hv_irq *irq = hv_vm_irq(m->vm);
	struct machine_devices *d;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	m->devs = d;

	r = uart8250_init(&d->com1, "com1", &m->pio, LAYOUT_PORT_COM1, irq, LAYOUT_IRQ_COM1, serial_tx, m);
	if (r < 0)
		goto fail_msg;
	d->have_com1 = true;
	r = i8042_init(&d->kbd, &m->pio, irq, LAYOUT_IRQ_I8042, guest_reset, m);
	if (r < 0)
		goto fail_msg;
	d->have_kbd = true;
	r = rtc_init(&d->rtc, &m->pio, LAYOUT_PORT_RTC);
	if (r < 0)
		goto fail_msg;
	rtc_set_memory(&d->rtc, MIN(cfg->memory, LAYOUT_PCI_HOLE),
		       cfg->memory > LAYOUT_PCI_HOLE ? cfg->memory - LAYOUT_PCI_HOLE : 0);
	d->have_rtc = true;
	r = acpi_pm_init(&d->pm, &(struct acpi_pm_config){
			.pio = &m->pio,
			.irq = irq,
			.sci_gsi = LAYOUT_IRQ_SCI,
			LAYOUT_ACPI_PM_FIELDS,
			.poweroff = guest_poweroff,
			.reset = guest_reset,
			.opaque = m,
		});
	if (r < 0)
		goto fail_msg;
	d->have_pm = true;

	r = pci_host_init(&m->pci, &m->pio, &m->mmio, LAYOUT_PCI_ECAM, LAYOUT_PCI_MMIO, LAYOUT_PCI_MMIO_SIZE,
			  LAYOUT_PCI_PIO, LAYOUT_PCI_PIO_SIZE);
	if (r < 0)
		goto fail_msg;
	pci_host_set_irq(&m->pci, irq, LAYOUT_IRQ_PCI_INTX);
	d->have_pci = true;

	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct vm_disk *disk = &cfg->disks[i];
		char what[80];

		snprintf(what, sizeof(what), "disk %s (%s)", disk->target, disk->path);
		r = virtio_blk_init(&d->blk[i], &m->mem, irq, disk->target, m->res->disk_fds[i], disk->readonly,
				    disk->serial);
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", what, strerror(-r));
			goto fail;
		}
		r = add_virtio(m, &d->blk[i].vdev, what, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (cfg->rng) {
		r = virtio_rng_init(&d->rng, &m->mem, irq, "rng0");
		if (r < 0 || (r = add_virtio(m, &d->rng.vdev, "rng", err, errlen)) < 0)
			goto fail_msg;
	}
	if (cfg->console.kind != VM_CHARDEV_NONE) {
		r = virtio_console_init(&d->con, &m->mem, irq, "console0", console_tx, m);
		if (r < 0 || (r = add_virtio(m, &d->con.vdev, "virtio console", err, errlen)) < 0)
			goto fail_msg;
	}
	if (cfg->vsock.enabled) {
		/* Without a host side (no socket given) the guest still sees the device; its
		 * connections to the host are refused, unless a path (foreground) or vmmsd's
		 * connector (worker/vsock_host.h) can reach the host's listeners. The ops are
		 * given whenever there is a host side: a connector may arrive later (a restarted
		 * vmmsd's), and until then host_connect refuses by itself. */
		struct vsock_host *vh = m->res->vsock;

		r = virtio_vsock_init(&d->vsock, &m->mem, irq, "vsock0", cfg->vsock.cid, vh ? vh->listen_fd : -1,
				      vh ? &vsock_host_ops : NULL, vh);
		if (r < 0 || (r = add_virtio(m, &d->vsock.vdev, "vsock", err, errlen)) < 0)
			goto fail_msg;
	}
	return 0;
fail_msg:
	if (!err[0])
		snprintf(err, errlen, "cannot create the devices: %s", strerror(-r));
fail:
	return r;
}

void machine_devices_start(struct machine *m)
{
	struct machine_devices *d = m->devs;

	for (unsigned i = 0; i < d->nr_virtio; i++) {
		int r = virtio_dev_start(d->virtio[i]);

		if (r < 0)
			log_error_errno(r, "%s: cannot start its io thread", d->virtio[i]->pci.dev.id);
	}
}

void machine_devices_pause(struct machine *m, bool pause)
{
	struct machine_devices *d = m->devs;

	for (unsigned i = 0; i < d->nr_virtio; i++) {
		if (pause)
			virtio_dev_pause(d->virtio[i]);
		else
			virtio_dev_resume(d->virtio[i]);
	}
}

int machine_devices_power_button(struct machine *m)
{
	if (!m->devs || !m->devs->have_pm)
		return -ENODEV;
	acpi_pm_power_button(&m->devs->pm);
	return 0;
}

size_t machine_devices_serial_input(struct machine *m, const uint8_t *buf, size_t len)
{
	if (!m->devs || !m->devs->have_com1)
		return 0;
	return uart8250_receive(&m->devs->com1, buf, len);
}

void machine_devices_destroy(struct machine *m)
{
	struct machine_devices *d = m->devs;

	if (!d)
		return;
	for (unsigned i = 0; i < d->nr_virtio; i++)
		virtio_dev_destroy(d->virtio[i]);
	if (d->have_pci)
		pci_host_destroy(&m->pci);
	if (d->have_pm)
		acpi_pm_destroy(&d->pm);
	if (d->have_rtc)
		rtc_destroy(&d->rtc);
	if (d->have_kbd)
		i8042_destroy(&d->kbd);
	if (d->have_com1)
		uart8250_destroy(&d->com1);
	free(d);
	m->devs = NULL;
}
