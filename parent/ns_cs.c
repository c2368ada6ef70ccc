// SPDX-License-Identifier: GPL-2.0-only
/* Msvm_ComputerSystem: one instance per defined VM; RequestStateChange goes to the worker manager. */
#include "parent/ns.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const struct ns_class ns_class_computer_system;

json_t *ns_cs_instance(struct ns *ns, const struct vm_entry *vm)
{
	json_t *o = ns_instance_new(&ns_class_computer_system, vm->id);

	if (!o)
		return NULL;
	json_object_set_new(o, "ElementName", json_string(vm->name));
	json_object_set_new(o, "CreationClassName", json_string("Msvm_ComputerSystem"));
	json_object_set_new(o, "Caption", json_string("Virtual Machine"));
	json_object_set_new(o, "Description", json_string("vmms Virtual Machine"));
	json_object_set_new(o, "EnabledState", json_integer(vm->last_state));
	json_object_set_new(o, "RequestedState", json_integer(vm->requested_state ? vm->requested_state : 5));
	json_object_set_new(o, "HealthState", json_integer(vm->health));
	json_object_set_new(o, "ProcessID", vm->pid > 0 ? json_integer(vm->pid) : json_null());
	json_object_set_new(o, "OnTimeInMilliseconds",
			    json_integer(vm->last_state == VM_STATE_RUNNING || vm->last_state == VM_STATE_PAUSED
					 ? ns_now_ms() - vm->last_change : 0));
	json_object_set_new(o, "TimeOfLastStateChange", ns_datetime(vm->last_change));
	json_object_set_new(o, "InstallDate", ns_datetime(vm->created));
	json_object_set_new(o, "ErrorDescription", vm->reason[0] ? json_string(vm->reason) : json_null());
	return o;
}

static int cs_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	for (size_t i = 0; i < registry_count(ns->reg); i++) {
		struct vm_entry *vm = registry_at(ns->reg, i);
		json_t *o;

		if (only && vm != only)
			continue;
		o = ns_cs_instance(ns, vm);
		if (!o || json_array_append_new(arr, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

static const char *state_name(int s)
{
	switch (s) {
	case VM_STATE_RUNNING: return "Running";
	case VM_STATE_OFF: return "Off";
	case VM_STATE_SHUTTING_DOWN: return "Shutting Down";
	case VM_STATE_SAVED: return "Saved";
	case VM_STATE_PAUSED: return "Paused";
	case VM_STATE_STARTING: return "Starting";
	case VM_STATE_SAVING: return "Saving";
	case VM_STATE_STOPPING: return "Stopping";
	case VM_STATE_PAUSING: return "Pausing";
	case VM_STATE_RESUMING: return "Resuming";
	}
	return "Unknown";
}

static int cs_request_state_change(struct ns *ns, const json_t *inst, const json_t *params, json_t *out,
				   struct ns_error *e)
{
	json_t *v = json_object_get(params, "RequestedState");
	struct vm_entry *vm;
	enum worker_op op;
	struct ns_job *job = NULL;
	int want, cur, r;
	char err[256] = "";

	if (!inst)
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "RequestStateChange needs an instance path (Msvm_ComputerSystem.Name=\"...\")");
	vm = ns_instance_vm(ns, inst);
	if (!vm)
		return ns_fail(e, NS_ERR_NOT_FOUND, "the VM disappeared");
	if (!json_is_integer(v))
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "RequestedState must be an integer: 2 start/resume, 3 turn off, 4 shut down, 6 save, 9 pause, 11 reset");
	want = (int)json_integer_value(v);
	cur = vm->last_state;
	switch (want) {
	case 2:
		if (cur == VM_STATE_OFF || cur == VM_STATE_SAVED)
			op = WORKER_START;
		else if (cur == VM_STATE_PAUSED)
			op = WORKER_RESUME;
		else
			goto invalid;
		break;
	case 3:
		if (cur == VM_STATE_OFF)
			goto invalid;
		op = WORKER_STOP;
		break;
	case 9:
		if (cur != VM_STATE_RUNNING)
			goto invalid;
		op = WORKER_PAUSE;
		break;
	case 11:
		if (cur != VM_STATE_RUNNING && cur != VM_STATE_PAUSED)
			goto invalid;
		op = WORKER_RESET;
		break;
	case 4:
		if (cur != VM_STATE_RUNNING)
			goto invalid;
		/* Orderly: the guest agent, or the power button when none answers (a job). */
		return ns_guest_shutdown(ns, vm, false, 0, "RequestStateChange(4)", out, e);
	case 6:
		if (cur != VM_STATE_RUNNING && cur != VM_STATE_PAUSED)
			goto invalid;
		return ns_fail(e, NS_ERR_NOT_SUPPORTED, "saving a VM (6) is not implemented yet");
	default:
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "RequestedState %d is not one of 2 start/resume, 3 turn off, 4 shut down, 6 save, 9 pause, 11 reset", want);
	}
	/* Start and reset take a while: they run as a Msvm_ConcreteJob (ReturnValue 4096). */
	if (op == WORKER_START || op == WORKER_RESET) {
		char caption[128];

		snprintf(caption, sizeof(caption), "%s VM '%s'", op == WORKER_START ? "Start" : "Reset", vm->name);
		job = ns_job_new(ns, caption);
		if (!job)
			return ns_fail(e, NS_ERR_LIMIT, "too many jobs are running (at most %d); try again later", NS_MAX_JOBS);
	}
	vm->requested_state = want;
	r = workers_request(ns->workers, vm, job ? job->id : NULL, op, err, sizeof(err));
	if (r < 0 && (r == -EOPNOTSUPP || r == -EBUSY || r == -ESRCH || !job)) {
		if (job)
			ns_job_finish(ns, job, 32768, err);
		vm->requested_state = 5;
		if (r == -EOPNOTSUPP)
			return ns_fail(e, NS_ERR_NOT_SUPPORTED, "%s", err);
		if (r == -EBUSY)
			return ns_fail(e, NS_ERR_INVALID_STATE, "%s", err);
		return ns_fail(e, NS_ERR_FAILED, "VM '%s': %s", vm->name, err[0] ? err : strerror(-r));
	}
	if (r < 0) {
		/* The job itself failed (a missing file, the sandbox): the caller learns why from it. */
		char desc[400];

		snprintf(desc, sizeof(desc), "VM '%s': %s", vm->name, err[0] ? err : strerror(-r));
		ns_job_finish(ns, job, 32768, desc);
	}
	if (job) {
		json_object_set_new(out, "Job", ns_job_path(job));
		return 4096;
	}
	json_object_set_new(out, "Job", json_null());
	return 0;
invalid:
	return ns_fail(e, NS_ERR_INVALID_STATE, "VM '%s' is %s (%d); it cannot go to RequestedState %d", vm->name,
		       state_name(cur), cur, want);
}

static const struct ns_prop cs_props[] = {
	{ "Name", "string", "the VM's GUID (key)" },
	{ "ElementName", "string", "the VM's name, as in the definition's <name>" },
	{ "CreationClassName", "string", "always Msvm_ComputerSystem" },
	{ "Caption", "string", "\"Virtual Machine\"" },
	{ "Description", "string", "\"vmms Virtual Machine\"" },
	{ "EnabledState", "uint16", "2 Running, 3 Off, 4 Shutting Down, 6 Saved, 9 Paused, 10 Starting, 32773 Saving, 32774 Stopping, 32776 Pausing, 32777 Resuming" },
	{ "RequestedState", "uint16", "the state last requested while a change is under way; 5 (No Change) otherwise" },
	{ "HealthState", "uint16", "5 OK, 20 Major Failure, 25 Critical Failure" },
	{ "ProcessID", "uint32", "the worker process's pid, null when it has none" },
	{ "OnTimeInMilliseconds", "uint64", "time since the VM last started, 0 when off" },
	{ "TimeOfLastStateChange", "datetime", "when EnabledState last changed" },
	{ "InstallDate", "datetime", "when the VM was defined" },
	{ "ErrorDescription", "string", "why the VM last stopped abnormally, null when nothing to report" },
	{ NULL },
};

static const struct ns_param rsc_params[] = {
	{ "RequestedState", "uint16", false, "2 start or resume, 3 turn off, 4 shut down, 6 save, 9 pause, 11 reset" },
	{ "TimeoutPeriod", "datetime", false, "accepted and ignored" },
	{ "Job", "ref", true, "the Msvm_ConcreteJob when ReturnValue is 4096, else null" },
	{ NULL },
};

static const struct ns_method cs_methods[] = {
	{ "RequestStateChange", "change the VM's state", rsc_params, cs_request_state_change },
	{ NULL },
};

const struct ns_class ns_class_computer_system = {
	.name = "Msvm_ComputerSystem",
	.superclass = "CIM_ComputerSystem",
	.description = "a virtual machine",
	.key = "Name",
	.props = cs_props,
	.methods = cs_methods,
	.enumerate = cs_enumerate,
};
