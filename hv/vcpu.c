// SPDX-License-Identifier: GPL-2.0-only
/* vCPUs: creation (CPUID, MSRs, LAPIC wiring), register access, the KVM_RUN loop and kicks. */
#include "hv/kvm_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/util.h"

#define MSR_IA32_TSC 0x10U
#define MSR_IA32_APICBASE 0x1bU
#define MSR_IA32_MISC_ENABLE 0x1a0U
#define APICBASE_BSP (1ULL << 8)
#define APICBASE_ENABLE (1ULL << 11)
#define APICBASE_ADDR 0xfee00000ULL
#define MISC_ENABLE_FAST_STRING (1ULL << 0)

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_DM_MASK (7U << 8)
#define APIC_DM_NMI (4U << 8)
#define APIC_DM_EXTINT (7U << 8)

/* What the last stop was, for hv_vcpu_describe_exit(). */
struct exit_record {
	int stop; /* enum hv_stop, -errno, or 0 when never stopped */
	bool from_callback; /* the -errno came from an exit callback, not from KVM_RUN */
	uint32_t reason; /* KVM_EXIT_* */
	uint32_t suberror;
	uint32_t ndata;
	uint64_t data[4];
	uint64_t hw_reason;
	uint32_t event_type;
	bool bad_exit; /* an exit whose fields were out of range */
	bool regs_valid;
	uint64_t rip;
	uint64_t cs_base;
};

struct hv_vcpu {
	struct hv_vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	atomic_bool stop; /* a stop is requested; set before immediate_exit, see hv_vcpu_kick */
	pthread_mutex_t thread_lock; /* protects running and thread against kicks */
	bool running;
	pthread_t thread;
	/* An IN or MMIO read was answered but KVM_RUN has not yet copied it into the guest. */
	bool completion_pending;
	struct hv_vcpu_stats stats; /* written by the vCPU thread only, relaxed atomics */
	struct exit_record last;
};

#define STAT_INC(v, field) __atomic_store_n(&(v)->stats.field, (v)->stats.field + 1, __ATOMIC_RELAXED)

static int set_initial_msrs(struct hv_vcpu *vcpu)
{
	const struct kvm_msr_entry want[] = {
		{ .index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING },
		{ .index = MSR_IA32_APICBASE,
		  .data = APICBASE_ADDR | APICBASE_ENABLE | (vcpu->index == 0 ? APICBASE_BSP : 0) },
		{ .index = MSR_IA32_TSC, .data = 0 },
	};
	struct kvm_msrs *msrs;
	int r;

	msrs = calloc(1, sizeof(*msrs) + sizeof(want));
	if (!msrs)
		return -ENOMEM;
	msrs->nmsrs = ARRAY_SIZE(want);
	memcpy(msrs->entries, want, sizeof(want));
	r = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
	if (r < 0)
		r = -errno;
	else if ((size_t)r != ARRAY_SIZE(want))
		r = -EIO; /* KVM stops at the first MSR it refuses */
	else
		r = 0;
	free(msrs);
	return r;
}

/* As kvmtool: LINT0 delivers the PIC's ExtINT and LINT1 NMIs, so the legacy PIC works. The
 * mask bits stay as reset left them; the guest unmasks. */
static int setup_lapic(struct hv_vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t lint0, lint1;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	memcpy(&lint0, &lapic.regs[APIC_LVT_LINT0], sizeof(lint0));
	memcpy(&lint1, &lapic.regs[APIC_LVT_LINT1], sizeof(lint1));
	lint0 = (lint0 & ~APIC_DM_MASK) | APIC_DM_EXTINT;
	lint1 = (lint1 & ~APIC_DM_MASK) | APIC_DM_NMI;
	memcpy(&lapic.regs[APIC_LVT_LINT0], &lint0, sizeof(lint0));
	memcpy(&lapic.regs[APIC_LVT_LINT1], &lint1, sizeof(lint1));
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

static int setup_cpuid(struct hv_vcpu *vcpu)
{
	struct hv_vm *vm = vcpu->vm;
	struct kvm_cpuid2 *c;
	int r;

	c = calloc(1, sizeof(*c) + vm->cpuid_capacity * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	memcpy(c, vm->cpuid, sizeof(*c) + vm->cpuid->nent * sizeof(c->entries[0]));
	r = hv_cpuid_patch(c, vm->cpuid_capacity, vcpu->index, vm->nr_vcpus);
	if (r == 0 && ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0)
		r = -errno;
	free(c);
	return r;
}

int hv_vcpu_create(struct hv_vm *vm, unsigned index, struct hv_vcpu **ret)
{
	struct hv_vcpu *vcpu;
	void *p;
	int r;

	pthread_mutex_lock(&vm->vcpus_lock);
	if (index >= vm->nr_vcpus)
		r = -EINVAL;
	else if (vm->vcpu_index_used[index])
		r = -EEXIST;
	else {
		vm->vcpu_index_used[index] = true;
		vm->vcpus_created++;
		r = 0;
	}
	pthread_mutex_unlock(&vm->vcpus_lock);
	if (r < 0)
		return r;

	vcpu = calloc(1, sizeof(*vcpu));
	if (!vcpu) {
		pthread_mutex_lock(&vm->vcpus_lock);
		vm->vcpu_index_used[index] = false;
		vm->vcpus_created--;
		pthread_mutex_unlock(&vm->vcpus_lock);
		return -ENOMEM;
	}
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->run_size = vm->run_size;
	pthread_mutex_init(&vcpu->thread_lock, NULL);
	atomic_init(&vcpu->stop, false);

	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		r = -errno;
		goto fail;
	}
	(void)fcntl(vcpu->fd, F_SETFD, FD_CLOEXEC);
	p = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	vcpu->run = p;

	r = setup_cpuid(vcpu);
	if (r < 0)
		goto fail;
	r = set_initial_msrs(vcpu);
	if (r < 0)
		goto fail;
	r = setup_lapic(vcpu);
	if (r < 0)
		goto fail;
	r = hv_vcpu_set_mp_state(vcpu, index == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED);
	if (r < 0)
		goto fail;
	*ret = vcpu;
	return 0;
fail:
	hv_vcpu_destroy(vcpu);
	return r;
}

void hv_vcpu_destroy(struct hv_vcpu *vcpu)
{
	if (!vcpu)
		return;
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	pthread_mutex_destroy(&vcpu->thread_lock);
	/* KVM cannot destroy a single vCPU: the index stays taken until the VM goes. */
	free(vcpu);
}

unsigned hv_vcpu_index(const struct hv_vcpu *vcpu)
{
	return vcpu->index;
}

int hv_vcpu_fd(const struct hv_vcpu *vcpu)
{
	return vcpu->fd;
}

static int vcpu_ioctl(struct hv_vcpu *vcpu, unsigned long req, const void *arg)
{
	return ioctl(vcpu->fd, req, arg) < 0 ? -errno : 0;
}

int hv_vcpu_get_regs(struct hv_vcpu *vcpu, struct kvm_regs *regs)
{
	return vcpu_ioctl(vcpu, KVM_GET_REGS, regs);
}

int hv_vcpu_set_regs(struct hv_vcpu *vcpu, const struct kvm_regs *regs)
{
	return vcpu_ioctl(vcpu, KVM_SET_REGS, regs);
}

int hv_vcpu_get_sregs(struct hv_vcpu *vcpu, struct kvm_sregs *sregs)
{
	return vcpu_ioctl(vcpu, KVM_GET_SREGS, sregs);
}

int hv_vcpu_set_sregs(struct hv_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	return vcpu_ioctl(vcpu, KVM_SET_SREGS, sregs);
}

int hv_vcpu_get_fpu(struct hv_vcpu *vcpu, struct kvm_fpu *fpu)
{
	return vcpu_ioctl(vcpu, KVM_GET_FPU, fpu);
}

int hv_vcpu_set_fpu(struct hv_vcpu *vcpu, const struct kvm_fpu *fpu)
{
	return vcpu_ioctl(vcpu, KVM_SET_FPU, fpu);
}

int hv_vcpu_get_mp_state(struct hv_vcpu *vcpu, uint32_t *ret_state)
{
	struct kvm_mp_state mp = { 0 };
	int r = vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &mp);

	if (r == 0)
		*ret_state = mp.mp_state;
	return r;
}

int hv_vcpu_set_mp_state(struct hv_vcpu *vcpu, uint32_t state)
{
	struct kvm_mp_state mp = { .mp_state = state };

	return vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &mp);
}

/* ---- stopping ---------------------------------------------------------------------------- */

void hv_vcpu_kick(struct hv_vcpu *vcpu)
{
	/* Order matters: the flag first, then immediate_exit, then the signal. The run loop
	 * clears immediate_exit before it reads the flag, so whichever side comes second sees
	 * the other's store: either the loop sees the flag, or KVM_RUN sees immediate_exit (or is
	 * interrupted by the signal). Both stores are sequentially consistent for that reason. */
	atomic_store(&vcpu->stop, true);
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vcpu->thread_lock);
	/* Only while running: the thread id is not ours to signal once the loop has returned. */
	if (vcpu->running && !pthread_equal(vcpu->thread, pthread_self()))
		(void)pthread_kill(vcpu->thread, HV_KICK_SIGNAL);
	pthread_mutex_unlock(&vcpu->thread_lock);
}

void hv_vcpu_clear_stop(struct hv_vcpu *vcpu)
{
	atomic_store(&vcpu->stop, false);
}

bool hv_vcpu_stop_requested(const struct hv_vcpu *vcpu)
{
	return atomic_load(&vcpu->stop);
}

/* ---- the run loop ------------------------------------------------------------------------ */

static int internal_error(struct hv_vcpu *vcpu)
{
	return HV_STOP_INTERNAL_ERROR;
}

/* KVM fills these, but a broken or hostile kernel interface must not walk us off the page. */
static int handle_io(struct hv_vcpu *vcpu, const struct hv_exit_ops *ops, void *opaque)
{
	struct kvm_run *run = vcpu->run;
	unsigned size = run->io.size, count = run->io.count;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint64_t off = run->io.data_offset;
	uint8_t *data;

	if ((size != 1 && size != 2 && size != 4) || count == 0 ||
	    !range_within(off, (uint64_t)size * count, vcpu->run_size)) {
		vcpu->last.bad_exit = true;
		return internal_error(vcpu);
	}
	data = (uint8_t *)run + off;
	for (unsigned i = 0; i < count; i++) {
		uint8_t *p = data + (size_t)i * size;
		int r;

		if (ops && ops->pio) {
			r = ops->pio(opaque, run->io.port, p, size, is_write);
			if (r < 0) {
				vcpu->last.from_callback = true;
				return r;
			}
		} else if (!is_write) {
			memset(p, 0xff, size);
		}
	}
	vcpu->completion_pending = !is_write;
	return 0;
}

static int handle_mmio(struct hv_vcpu *vcpu, const struct hv_exit_ops *ops, void *opaque)
{
	struct kvm_run *run = vcpu->run;
	unsigned len = run->mmio.len;
	bool is_write = run->mmio.is_write;
	int r;

	if (len == 0 || len > sizeof(run->mmio.data)) {
		vcpu->last.bad_exit = true;
		return internal_error(vcpu);
	}
	if (ops && ops->mmio) {
		r = ops->mmio(opaque, run->mmio.phys_addr, run->mmio.data, len, is_write);
		if (r < 0) {
			vcpu->last.from_callback = true;
			return r;
		}
	} else if (!is_write) {
		memset(run->mmio.data, 0xff, len);
	}
	vcpu->completion_pending = !is_write;
	return 0;
}

/* 0 to go on running, else the value hv_vcpu_run() returns. */
static int handle_exit(struct hv_vcpu *vcpu, const struct hv_exit_ops *ops, void *opaque)
{
	struct kvm_run *run = vcpu->run;

	vcpu->last.reason = run->exit_reason;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		STAT_INC(vcpu, pio);
		return handle_io(vcpu, ops, opaque);
	case KVM_EXIT_MMIO:
		STAT_INC(vcpu, mmio);
		return handle_mmio(vcpu, ops, opaque);
	case KVM_EXIT_INTR:
		STAT_INC(vcpu, intr);
		return 0;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		STAT_INC(vcpu, other);
		return 0;
	case KVM_EXIT_HLT:
		STAT_INC(vcpu, hlt);
		return HV_STOP_HLT;
	case KVM_EXIT_SHUTDOWN:
		STAT_INC(vcpu, other);
		return HV_STOP_SHUTDOWN;
	case KVM_EXIT_SYSTEM_EVENT:
		STAT_INC(vcpu, other);
		vcpu->last.event_type = run->system_event.type;
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			return HV_STOP_SYSTEM_EVENT_SHUTDOWN;
		case KVM_SYSTEM_EVENT_RESET:
			return HV_STOP_SYSTEM_EVENT_RESET;
		case KVM_SYSTEM_EVENT_CRASH:
			return HV_STOP_SYSTEM_EVENT_CRASH;
		default:
			return internal_error(vcpu);
		}
	case KVM_EXIT_INTERNAL_ERROR:
		STAT_INC(vcpu, other);
		vcpu->last.suberror = run->internal.suberror;
		vcpu->last.ndata = run->internal.ndata;
		for (unsigned i = 0; i < MIN(run->internal.ndata, ARRAY_SIZE(vcpu->last.data)); i++)
			vcpu->last.data[i] = run->internal.data[i];
		return internal_error(vcpu);
	case KVM_EXIT_FAIL_ENTRY:
		STAT_INC(vcpu, other);
		vcpu->last.hw_reason = run->fail_entry.hardware_entry_failure_reason;
		return internal_error(vcpu);
	default:
		STAT_INC(vcpu, other);
		return internal_error(vcpu);
	}
}

static void record_stop(struct hv_vcpu *vcpu, int stop)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	vcpu->last.stop = stop;
	vcpu->last.regs_valid = false;
	if (stop == HV_STOP_REQUESTED)
		return;
	/* Only for stops a person may have to read about; never on the hot path. */
	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0 && ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) == 0) {
		vcpu->last.rip = regs.rip;
		vcpu->last.cs_base = sregs.cs.base;
		vcpu->last.regs_valid = true;
	}
}

static int handle_exit(struct hv_vcpu *vcpu, const struct hv_exit_ops *ops, void *opaque);

/* Lets KVM finish an IN or MMIO read it handed us, so the stopped state is consistent for
 * save/restore: KVM_RUN with immediate_exit = 1 completes the access and returns -EINTR
 * without entering the guest. A string IN may need more data first (KVM_RUN returns 0 with
 * a new exit): serve those, a bounded number of times. */
static void complete_pending(struct hv_vcpu *vcpu, const struct hv_exit_ops *ops, void *opaque)
{
	for (unsigned i = 0; i < 4096 && vcpu->completion_pending; i++) {
		vcpu->completion_pending = false;
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0)
			break;
		STAT_INC(vcpu, exits);
		if (handle_exit(vcpu, ops, opaque) != 0)
			break;
	}
	vcpu->completion_pending = false;
}

int hv_vcpu_run(struct hv_vcpu *vcpu, const struct hv_exit_ops *ops, void *opaque)
{
	struct kvm_run *run = vcpu->run;
	int ret;

	pthread_mutex_lock(&vcpu->thread_lock);
	if (vcpu->running) {
		pthread_mutex_unlock(&vcpu->thread_lock);
		return -EBUSY;
	}
	vcpu->running = true;
	vcpu->thread = pthread_self();
	pthread_mutex_unlock(&vcpu->thread_lock);

	vcpu->last = (struct exit_record){ 0 };
	for (;;) {
		/* Clear, then read the flag: pairs with the flag-then-set order in hv_vcpu_kick.
		 * The seq_cst store is a full barrier, so the load cannot pass it. */
		__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		if (atomic_load(&vcpu->stop)) {
			complete_pending(vcpu, ops, opaque);
			ret = HV_STOP_REQUESTED;
			break;
		}
		STAT_INC(vcpu, runs);
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* Any pending read was completed before KVM saw the signal. */
				vcpu->completion_pending = false;
				STAT_INC(vcpu, intr);
				continue;
			}
			ret = -errno;
			break;
		}
		vcpu->completion_pending = false;
		STAT_INC(vcpu, exits);
		ret = handle_exit(vcpu, ops, opaque);
		if (ret != 0)
			break;
	}
	record_stop(vcpu, ret);

	pthread_mutex_lock(&vcpu->thread_lock);
	vcpu->running = false;
	pthread_mutex_unlock(&vcpu->thread_lock);
	return ret;
}

/* ---- reporting --------------------------------------------------------------------------- */

static const char *suberror_name(uint32_t s)
{
	switch (s) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "emulation failure";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception during exception delivery";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "event delivery failed";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected exit reason";
	default:
		return "unknown";
	}
}

void hv_vcpu_describe_exit(const struct hv_vcpu *vcpu, char *buf, size_t len)
{
	const struct exit_record *l = &vcpu->last;
	char where[96] = "";

	if (!buf || len == 0)
		return;
	if (l->regs_valid)
		snprintf(where, sizeof(where), " at RIP 0x%" PRIx64 " (CS base 0x%" PRIx64 ")",
			 l->rip, l->cs_base);

	switch (l->stop) {
	case 0:
		snprintf(buf, len, "has not stopped");
		break;
	case HV_STOP_REQUESTED:
		snprintf(buf, len, "stopped on request");
		break;
	case HV_STOP_SHUTDOWN:
		snprintf(buf, len, "triple fault%s", where);
		break;
	case HV_STOP_SYSTEM_EVENT_RESET:
		snprintf(buf, len, "guest requested a reset%s", where);
		break;
	case HV_STOP_SYSTEM_EVENT_SHUTDOWN:
		snprintf(buf, len, "guest requested power-off%s", where);
		break;
	case HV_STOP_SYSTEM_EVENT_CRASH:
		snprintf(buf, len, "guest reported a crash%s", where);
		break;
	case HV_STOP_HLT:
		snprintf(buf, len, "halted%s", where);
		break;
	case HV_STOP_INTERNAL_ERROR:
		if (l->bad_exit)
			snprintf(buf, len, "malformed exit (reason %u)%s",
				     l->reason, where);
		else if (l->reason == KVM_EXIT_INTERNAL_ERROR)
			snprintf(buf, len,
				     "internal error suberror %u (%s)%s, %u data words: 0x%" PRIx64
				     " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64,
				     l->suberror, suberror_name(l->suberror), where, l->ndata,
				     l->data[0], l->data[1], l->data[2], l->data[3]);
		else if (l->reason == KVM_EXIT_FAIL_ENTRY)
			snprintf(buf, len, "VM entry failed, hardware reason 0x%" PRIx64 "%s",
				 l->hw_reason, where);
		else if (l->reason == KVM_EXIT_SYSTEM_EVENT)
			snprintf(buf, len, "unknown system event %u%s",
				     l->event_type, where);
		else
			snprintf(buf, len, "unhandled exit reason %u%s",
				     l->reason, where);
		break;
	default:
		if (l->stop < 0)
			snprintf(buf, len, "%s failed: %s%s",
				     l->from_callback ? "exit handler" : "KVM_RUN", strerror(-l->stop), where);
		else
			snprintf(buf, len, "stop %d%s", l->stop, where);
		break;
	}
}

void hv_vcpu_get_stats(const struct hv_vcpu *vcpu, struct hv_vcpu_stats *ret)
{
	ret->runs = __atomic_load_n(&vcpu->stats.runs, __ATOMIC_RELAXED);
	ret->exits = __atomic_load_n(&vcpu->stats.exits, __ATOMIC_RELAXED);
	ret->pio = __atomic_load_n(&vcpu->stats.pio, __ATOMIC_RELAXED);
	ret->mmio = __atomic_load_n(&vcpu->stats.mmio, __ATOMIC_RELAXED);
	ret->intr = __atomic_load_n(&vcpu->stats.intr, __ATOMIC_RELAXED);
	ret->hlt = __atomic_load_n(&vcpu->stats.hlt, __ATOMIC_RELAXED);
	ret->other = __atomic_load_n(&vcpu->stats.other, __ATOMIC_RELAXED);
}
