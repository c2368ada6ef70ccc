// SPDX-License-Identifier: GPL-2.0-only
/* The VM over /dev/kvm: API and capability checks, irqchip and PIT, memslots, the kick signal. */
#include "hv/kvm_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/util.h"

static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
	{ KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
};

int hv_kvm_open(int *ret_fd)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

int hv_kvm_check(int kvm_fd, const char **ret_missing)
{
	int v = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);

	if (v < 0)
		return -errno;
	if (v != KVM_API_VERSION) {
		if (ret_missing)
			*ret_missing = "KVM_GET_API_VERSION 12";
		return -EPROTO;
	}
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			if (ret_missing)
				*ret_missing = required_caps[i].name;
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static unsigned cap_value(int fd, int cap, unsigned fallback)
{
	int v = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return v > 0 ? (unsigned)v : fallback;
}

static int vm_setup(struct hv_vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t ident = HV_IDENTITY_MAP_ADDR;
	int r;

	r = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < 0)
		return -errno;
	if ((size_t)r < sizeof(struct kvm_run))
		return -EPROTO;
	vm->run_size = (size_t)r;

	/* KVM_CAP_NR_VCPUS is only the recommended count; MAX_VCPUS is the hard limit. */
	vm->max_vcpus = MIN(cap_value(vm->kvm_fd, KVM_CAP_MAX_VCPUS,
				      cap_value(vm->kvm_fd, KVM_CAP_NR_VCPUS, 4)), HV_MAX_VCPUS);
	vm->max_memslots = cap_value(vm->fd, KVM_CAP_NR_MEMSLOTS, 32);

	/* Both must precede the first vCPU: VMX needs them for real mode and unrestricted guests. */
	if (ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
		return -errno;
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)HV_TSS_ADDR) < 0)
		return -errno;
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	/* The dummy speaker answers port 0x61 in the kernel; Linux polls it to calibrate. */
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;
	r = hv_irq_init(vm);
	if (r < 0)
		return r;
	return hv_cpuid_load_supported(vm);
}

int hv_vm_create(int kvm_fd, struct hv_vm **ret)
{
	struct hv_vm *vm;
	int r;

	r = hv_kvm_check(kvm_fd, NULL);
	if (r < 0)
		return r;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->fd = -1;
	vm->nr_vcpus = 1;
	pthread_mutex_init(&vm->vcpus_lock, NULL);
	vm->kvm_fd = fcntl(kvm_fd, F_DUPFD_CLOEXEC, 3);
	if (vm->kvm_fd < 0) {
		r = -errno;
		goto fail;
	}
	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		r = -errno;
		goto fail;
	}
	/* Some kernels hand back a VM fd without close-on-exec. */
	(void)fcntl(vm->fd, F_SETFD, FD_CLOEXEC);
	r = vm_setup(vm);
	if (r < 0)
		goto fail;
	*ret = vm;
	return 0;
fail:
	hv_vm_destroy(vm);
	return r;
}

void hv_vm_destroy(struct hv_vm *vm)
{
	if (!vm)
		return;
	if (vm->irq.vm)
		hv_irq_fini(vm);
	free(vm->cpuid);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_mutex_destroy(&vm->vcpus_lock);
	free(vm);
}

int hv_vm_set_nr_vcpus(struct hv_vm *vm, unsigned nr)
{
	int r = 0;

	if (nr == 0)
		return -EINVAL;
	if (nr > vm->max_vcpus)
		return -E2BIG;
	pthread_mutex_lock(&vm->vcpus_lock);
	if (vm->vcpus_created)
		r = -EBUSY;
	else
		vm->nr_vcpus = nr;
	pthread_mutex_unlock(&vm->vcpus_lock);
	return r;
}

unsigned hv_vm_max_vcpus(const struct hv_vm *vm)
{
	return vm->max_vcpus;
}

int hv_vm_set_memory(struct hv_vm *vm, const struct gmem *m)
{
	if (vm->memory_set)
		return -EBUSY;
	if (m->nr == 0 || m->nr > GMEM_MAX_REGIONS)
		return -EINVAL;
	if (m->nr > vm->max_memslots)
		return -E2BIG;
	for (unsigned i = 0; i < m->nr; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.flags = 0,
			.guest_phys_addr = m->r[i].gpa,
			.memory_size = m->r[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)m->r[i].hva,
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			int r = -errno;

			/* Take back what was registered so a retry starts from nothing. */
			while (i-- > 0) {
				region = (struct kvm_userspace_memory_region){ .slot = i };
				(void)ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region);
			}
			return r;
		}
	}
	vm->memory_set = true;
	return 0;
}

struct hv_irq *hv_vm_irq(struct hv_vm *vm)
{
	return &vm->irq.base;
}

int hv_vm_fd(const struct hv_vm *vm)
{
	return vm->fd;
}

static void kick_handler(int sig)
{
	(void)sig;
}

int hv_signals_init(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigset_t set;

	/* No SA_RESTART: the point of the signal is to make KVM_RUN return -EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(HV_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, HV_KICK_SIGNAL);
	return -pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}
