// SPDX-License-Identifier: GPL-2.0-only
/* Machine assembly: memory layout, KVM VM, firmware tables, kernel, vCPU threads. */
#include "worker/machine.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "hv/acpi.h"
#include "hv/boot.h"
#include "hv/e820.h"
#include "lib/log.h"
#include "lib/util.h"
#include "worker/layout.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

const char *machine_outcome_name(enum machine_outcome o)
{
	switch (o) {
	case MACHINE_RUNNING: return "running";
	case MACHINE_POWEROFF: return "poweroff";
	case MACHINE_REBOOT: return "reboot";
	case MACHINE_CRASH: return "crash";
	case MACHINE_HOST_ERROR: return "host-error";
	case MACHINE_TURNED_OFF: return "turned-off";
	}
	return "unknown";
}

/* RAM below the PCI hole, the rest above 4 GiB. */
static unsigned machine_memory_layout(uint64_t size, struct gmem_layout *layout)
{
	if (size <= LAYOUT_PCI_HOLE) {
		layout[0] = (struct gmem_layout){ 0, size };
		return 1;
	}
	layout[0] = (struct gmem_layout){ 0, LAYOUT_PCI_HOLE };
	layout[1] = (struct gmem_layout){ LAYOUT_HIGH_RAM, size - LAYOUT_PCI_HOLE };
	return 2;
}

/* ---- exits ---------------------------------------------------------------------------- */

static int machine_pio(void *opaque, uint16_t port, void *data, unsigned size, bool is_write)
{
	struct machine *m = opaque;

	if (is_write)
		(void)bus_write(&m->pio, port, data, size);
	else
		(void)bus_read(&m->pio, port, data, size);
	return 0;
}

static int machine_mmio(void *opaque, uint64_t gpa, void *data, unsigned len, bool is_write)
{
	struct machine *m = opaque;

	if (is_write)
		(void)bus_write(&m->mmio, gpa, data, len);
	else
		(void)bus_read(&m->mmio, gpa, data, len);
	return 0;
}

static const struct hv_exit_ops machine_exit_ops = {
	.pio = machine_pio,
	.mmio = machine_mmio,
};

void machine_request_stop(struct machine *m, enum machine_outcome why, const char *detail)
{
	uint64_t one = 1;

	pthread_mutex_lock(&m->lock);
	if (m->outcome == MACHINE_RUNNING) {
		m->outcome = why;
		snprintf(m->outcome_detail, sizeof(m->outcome_detail), "%s", detail ? detail : "");
	}
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		if (m->vcpus[i].vcpu)
			hv_vcpu_kick(m->vcpus[i].vcpu);
	(void)!write(m->wake_fd, &one, sizeof(one));
}

enum machine_outcome machine_outcome(struct machine *m)
{
	enum machine_outcome o;

	pthread_mutex_lock(&m->lock);
	o = m->outcome;
	pthread_mutex_unlock(&m->lock);
	return o;
}

static void vcpu_stopped(struct vcpu_thread *t, int r)
{
	char why[200];

	switch (r) {
	case HV_STOP_SYSTEM_EVENT_RESET:
		machine_request_stop(t->m, MACHINE_REBOOT, "guest reset");
		return;
	case HV_STOP_SYSTEM_EVENT_SHUTDOWN:
		machine_request_stop(t->m, MACHINE_POWEROFF, "guest shutdown event");
		return;
	case HV_STOP_SHUTDOWN:
	case HV_STOP_INTERNAL_ERROR:
	case HV_STOP_SYSTEM_EVENT_CRASH:
		hv_vcpu_describe_exit(t->vcpu, why, sizeof(why));
		char line[256];
		snprintf(line, sizeof(line), "vCPU %u: %s", hv_vcpu_index(t->vcpu), why);
		machine_request_stop(t->m, MACHINE_CRASH, line);
		return;
	default:
		snprintf(why, sizeof(why), "vCPU %u: KVM_RUN failed: %s", hv_vcpu_index(t->vcpu),
			 r < 0 ? strerror(-r) : "unexpected stop");
		machine_request_stop(t->m, MACHINE_HOST_ERROR, why);
	}
}

static void *vcpu_thread_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct machine *m = t->m;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, HV_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (m->res->thread_init) {
		int r = m->res->thread_init(m->res->thread_opaque, MACHINE_THREAD_VCPU);

		if (r < 0) {
			char why[128];

			snprintf(why, sizeof(why), "vCPU %u: cannot set up the thread: %s", hv_vcpu_index(t->vcpu),
				 strerror(-r));
			machine_request_stop(m, MACHINE_HOST_ERROR, why);
			return NULL;
		}
	}

	for (;;) {
		int r = hv_vcpu_run(t->vcpu, &machine_exit_ops, m);

		if (r != HV_STOP_REQUESTED && r != HV_STOP_HLT) {
			vcpu_stopped(t, r);
			break;
		}
		/* A requested stop: either the boot is over or we are asked to park. */
		pthread_mutex_lock(&m->lock);
		if (m->outcome != MACHINE_RUNNING) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		if (m->paused) {
			m->parked++;
			pthread_cond_broadcast(&m->cond);
			while (m->paused && m->outcome == MACHINE_RUNNING)
				pthread_cond_wait(&m->cond, &m->lock);
			m->parked--;
		}
		hv_vcpu_clear_stop(t->vcpu);
		pthread_mutex_unlock(&m->lock);
		if (machine_outcome(m) != MACHINE_RUNNING)
			break;
	}
	return NULL;
}

int machine_pause(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
	if (m->paused) {
		pthread_mutex_unlock(&m->lock);
		return -EALREADY;
	}
	m->paused = true;
	pthread_mutex_unlock(&m->lock);
	for (unsigned i = 0; i < m->nr_vcpus; i++)
		hv_vcpu_kick(m->vcpus[i].vcpu);
	pthread_mutex_lock(&m->lock);
	while (m->parked < m->nr_vcpus && m->outcome == MACHINE_RUNNING)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	machine_devices_pause(m, true);
	return 0;
}

int machine_resume(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->paused) {
		pthread_mutex_unlock(&m->lock);
		return -EALREADY;
	}
	pthread_mutex_unlock(&m->lock);
	machine_devices_pause(m, false);
	pthread_mutex_lock(&m->lock);
	m->paused = false;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void machine_power_button(struct machine *m)
{
	(void)machine_devices_power_button(m);
}

void machine_console_input(struct machine *m, const uint8_t *buf, size_t len)
{
	(void)machine_devices_serial_input(m, buf, len);
}

/* ---- assembly ------------------------------------------------------------------------- */

static int machine_firmware(struct machine *m, struct hv_boot_state *st, char *err, size_t errlen)
{
	const struct vm_config *cfg = m->cfg;
	struct acpi_config acfg = {
		.nr_cpus = cfg->vcpus,
		.ioapic_addr = LAYOUT_IOAPIC,
		.lapic_addr = LAYOUT_LAPIC,
		LAYOUT_ACPI_PM_FIELDS,
		.sci_irq = LAYOUT_IRQ_SCI,
		.ecam_base = LAYOUT_PCI_ECAM,
		.ecam_size = LAYOUT_PCI_ECAM_SIZE,
		.pci_mmio_base = LAYOUT_PCI_MMIO,
		.pci_mmio_size = LAYOUT_PCI_MMIO_SIZE,
		.com1_port = LAYOUT_PORT_COM1,
		.com1_irq = LAYOUT_IRQ_COM1,
	};
	struct e820_entry reserved[] = {
		{ 0x9fc00, 0x400, E820_RESERVED },                   /* EBDA-like hole */
		{ LAYOUT_ACPI_BASE, LAYOUT_ACPI_SIZE, E820_ACPI },
		{ LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, E820_RESERVED },
	};
	struct e820_table e820;
	struct hv_boot_config bcfg;
	uint64_t rsdp = 0;
	size_t acpi_len = 0;
	void *acpi;
	int r;

	acpi = gmem_ptr(&m->mem, LAYOUT_ACPI_BASE, LAYOUT_ACPI_SIZE);
	if (!acpi)
		return hv_boot_err(err, errlen, -EINVAL, "memory %llu MiB is too small for the firmware tables",
				   (unsigned long long)(cfg->memory >> 20));
	r = acpi_build(acpi, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_BASE, &acfg, &rsdp, &acpi_len);
	if (r < 0)
		return hv_boot_err(err, errlen, r, "cannot build ACPI tables");
	r = e820_build(&e820, &m->mem, reserved, ARRAY_SIZE(reserved));
	if (r < 0)
		return hv_boot_err(err, errlen, r, "cannot build the e820 memory map");

	bcfg = (struct hv_boot_config){
		.cmdline = cfg->cmdline,
		.zero_page = LAYOUT_ZERO_PAGE,
		.gdt = LAYOUT_BOOT_GDT,
		.tss = LAYOUT_BOOT_TSS,
		.page_tables = LAYOUT_BOOT_PML4,
		.page_tables_size = 0x6000,
		.cmdline_addr = LAYOUT_CMDLINE,
		.cmdline_max = LAYOUT_CMDLINE_MAX,
		.kernel_addr = LAYOUT_KERNEL,
		.rsdp = rsdp,
		.e820 = &e820,
	};
	r = hv_boot_blob_from_fd(m->res->kernel_fd, &bcfg.kernel);
	if (r < 0)
		return hv_boot_err(err, errlen, r, "kernel %s: cannot read it", cfg->kernel);
	if (m->res->initrd_fd >= 0) {
		r = hv_boot_blob_from_fd(m->res->initrd_fd, &bcfg.initrd);
		if (r < 0)
			return hv_boot_err(err, errlen, r, "initrd %s: cannot read it", cfg->initrd);
	}
	return hv_boot_load(&m->mem, &bcfg, st, err, errlen);
}

static int machine_vcpus_create(struct machine *m, const struct hv_boot_state *st, char *err, size_t errlen)
{
	struct kvm_sregs sregs;
	int r;

	m->vcpus = calloc(m->nr_vcpus, sizeof(*m->vcpus));
	if (!m->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		m->vcpus[i].m = m;
		r = hv_vcpu_create(m->vm, i, &m->vcpus[i].vcpu);
		if (r < 0) {
			snprintf(err, errlen, "cannot create vCPU %u: %s", i, strerror(-r));
			return r;
		}
	}
	r = hv_vcpu_get_sregs(m->vcpus[0].vcpu, &sregs);
	if (r < 0)
		goto fail;
	hv_boot_apply_sregs(st, &sregs);
	r = hv_vcpu_set_sregs(m->vcpus[0].vcpu, &sregs);
	if (r < 0)
		goto fail;
	r = hv_vcpu_set_regs(m->vcpus[0].vcpu, &st->regs);
	if (r < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot set the boot registers of vCPU 0: %s", strerror(-r));
	return r;
}

int machine_create(const struct vm_config *cfg, struct machine_resources *res, struct machine **ret,
		   char *err, size_t errlen)
{
	struct gmem_layout layout[2];
	struct hv_boot_state st;
	const char *missing = NULL;
	struct machine *m;
	unsigned nr;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = cfg;
	m->res = res;
	m->nr_vcpus = cfg->vcpus;
	m->wake_fd = -1;
	m->mem.fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");

	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	r = hv_kvm_check(res->kvm_fd, &missing);
	if (r < 0) {
		snprintf(err, errlen, "/dev/kvm lacks %s, which vmms needs", missing ? missing : "the KVM API version 12");
		goto fail;
	}
	nr = machine_memory_layout(cfg->memory, layout);
	r = gmem_init(&m->mem, layout, nr, false);
	if (r < 0) {
		snprintf(err, errlen, "cannot allocate %llu MiB of guest memory: %s",
			 (unsigned long long)(cfg->memory >> 20), strerror(-r));
		goto fail;
	}
	r = hv_vm_create(res->kvm_fd, &m->vm);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the KVM VM: %s", strerror(-r));
		goto fail;
	}
	r = hv_vm_set_nr_vcpus(m->vm, m->nr_vcpus);
	if (r < 0) {
		snprintf(err, errlen, "%u vCPUs: this host allows at most %u", m->nr_vcpus, hv_vm_max_vcpus(m->vm));
		goto fail;
	}
	r = hv_vm_set_memory(m->vm, &m->mem);
	if (r < 0) {
		snprintf(err, errlen, "cannot register guest memory with KVM: %s", strerror(-r));
		goto fail;
	}
	r = machine_devices_create(m, err, errlen);
	if (r < 0)
		goto fail;
	r = machine_firmware(m, &st, err, errlen);
	if (r < 0)
		goto fail;
	r = machine_vcpus_create(m, &st, err, errlen);
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;
fail:
	machine_destroy(m);
	return r < 0 ? r : -EIO;
}

/* Starts the io threads from a thread of their own that first calls thread_init: what it
 * installs (a seccomp filter) is inherited by every io thread it creates, so the io threads
 * are narrowed before they run, without the device code knowing. */
static void *io_starter(void *arg)
{
	struct machine *m = arg;
	int r = m->res->thread_init(m->res->thread_opaque, MACHINE_THREAD_IO);

	if (r == 0)
		machine_devices_start(m);
	return (void *)(intptr_t)r;
}

static int machine_start_devices(struct machine *m)
{
	pthread_t t;
	void *ret = NULL;
	int r;

	if (!m->res->thread_init) {
		machine_devices_start(m);
		return 0;
	}
	r = -pthread_create(&t, NULL, io_starter, m);
	if (r < 0)
		return r;
	pthread_join(t, &ret);
	return (int)(intptr_t)ret;
}

int machine_start(struct machine *m)
{
	int r;

	r = hv_signals_init();
	if (r < 0)
		return r;
	r = machine_start_devices(m);
	if (r < 0) {
		machine_request_stop(m, MACHINE_HOST_ERROR, "cannot start the io threads");
		return r;
	}
	m->boot_ns = now_ns();
	for (unsigned i = 0; i < m->nr_vcpus; i++) {
		r = -pthread_create(&m->vcpus[i].thread, NULL, vcpu_thread_main, &m->vcpus[i]);
		if (r < 0) {
			machine_request_stop(m, MACHINE_HOST_ERROR, "cannot start vCPU threads");
			return r;
		}
		m->vcpus[i].started = true;
	}
	return 0;
}

void machine_destroy(struct machine *m)
{
	if (!m)
		return;
	if (m->vcpus) {
		bool any = false;

		for (unsigned i = 0; i < m->nr_vcpus; i++)
			any |= m->vcpus[i].started;
		if (any && machine_outcome(m) == MACHINE_RUNNING)
			machine_request_stop(m, MACHINE_TURNED_OFF, "machine destroyed");
		for (unsigned i = 0; i < m->nr_vcpus; i++)
			if (m->vcpus[i].started)
				pthread_join(m->vcpus[i].thread, NULL);
	}
	machine_devices_destroy(m);
	if (m->vcpus)
		for (unsigned i = 0; i < m->nr_vcpus; i++)
			hv_vcpu_destroy(m->vcpus[i].vcpu);
	free(m->vcpus);
	hv_vm_destroy(m->vm);
	gmem_destroy(&m->mem);
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	if (m->wake_fd >= 0)
		close(m->wake_fd);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
