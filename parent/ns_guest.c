// SPDX-License-Identifier: GPL-2.0-only
/* The guest additions classes: Msvm_HeartbeatComponent, Msvm_ShutdownComponent, Msvm_KvpExchangeComponent, Msvm_GuestServiceInterfaceComponent. */
#include "parent/ns.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/domxml.h"
#include "parent/guest.h"

const struct ns_class ns_class_heartbeat;
const struct ns_class ns_class_shutdown;
const struct ns_class ns_class_kvp;
const struct ns_class ns_class_guest_service;

static bool has_vsock(const struct vm_entry *vm)
{
	return vm->cfg && vm->cfg->vsock.enabled;
}

static bool vm_up(const struct vm_entry *vm)
{
	return vm->last_state == VM_STATE_RUNNING || vm->last_state == VM_STATE_PAUSED;
}

/* The common part of the per-VM integration components: key DeviceID "<VM GUID>\<what>". */
static json_t *component_new(const struct ns_class *c, const struct vm_entry *vm, const char *what,
			     const char *element)
{
	char key[VM_ID_LEN + 48];
	json_t *o;

	snprintf(key, sizeof(key), "%s\\%s", vm->id, what);
	o = ns_instance_new(c, key);
	if (!o)
		return NULL;
	json_object_set_new(o, "SystemName", json_string(vm->id));
	json_object_set_new(o, "SystemCreationClassName", json_string("Msvm_ComputerSystem"));
	json_object_set_new(o, "CreationClassName", json_string(c->name));
	json_object_set_new(o, "ElementName", json_string(element));
	json_object_set_new(o, "VMName", json_string(vm->name));
	json_object_set_new(o, "EnabledState", json_integer(vm_up(vm) ? 2 : 3));
	return o;
}

static int each_vsock_vm(struct ns *ns, const struct vm_entry *only, json_t *arr,
			 json_t *(*make)(struct ns *ns, const struct vm_entry *vm))
{
	for (size_t i = 0; i < registry_count(ns->reg); i++) {
		struct vm_entry *vm = registry_at(ns->reg, i);
		json_t *o;

		if ((only && vm != only) || !has_vsock(vm))
			continue;
		o = make(ns, vm);
		if (!o || json_array_append_new(arr, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- Msvm_HeartbeatComponent --------------------------------------------------------------- */

static const char *hb_text(int hb)
{
	return hb == GUEST_HB_OK ? "OK" : hb == GUEST_HB_LOST ? "Lost Communication" : "No Contact";
}

static json_t *hb_instance_for(struct ns *ns, const struct vm_entry *vm, int hb)
{
	json_t *o = component_new(&ns_class_heartbeat, vm, "Heartbeat", "Heartbeat");

	if (!o)
		return NULL;
	json_object_set_new(o, "OperationalStatus", json_pack("[i]", hb));
	json_object_set_new(o, "StatusDescriptions", json_pack("[s]", hb_text(hb)));
	json_object_set_new(o, "HealthState", json_integer(hb == GUEST_HB_OK ? 5 : hb == GUEST_HB_LOST ? 20 : 0));
	return o;
}

static json_t *hb_instance(struct ns *ns, const struct vm_entry *vm)
{
	return hb_instance_for(ns, vm, ns->guests ? guests_heartbeat(ns->guests, vm->name) : GUEST_HB_NO_CONTACT);
}

static int hb_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return each_vsock_vm(ns, only, arr, hb_instance);
}

void ns_guest_heartbeat_changed(struct ns *ns, const char *vm_name, int old, int cur)
{
	struct vm_entry *vm = registry_find(ns->reg, vm_name);
	json_t *prev, *now;

	if (!vm)
		return;
	prev = hb_instance_for(ns, vm, old);
	now = hb_instance_for(ns, vm, cur);
	if (prev && now)
		ns_emit(ns, "__InstanceModificationEvent", now, prev);
	json_decref(prev);
	json_decref(now);
}

static const struct ns_prop hb_props[] = {
	{ "DeviceID", "string", "\"<VM GUID>\\Heartbeat\" (key)" },
	{ "SystemName", "string", "the VM's GUID (Msvm_ComputerSystem.Name)" },
	{ "VMName", "string", "the VM's name" },
	{ "ElementName", "string", "\"Heartbeat\"" },
	{ "EnabledState", "uint16", "2 while the VM runs, 3 otherwise" },
	{ "OperationalStatus", "uint16[]", "[2] OK (the agent answers), [12] No Contact (it has not answered since the VM started), [13] Lost Communication (it answered before and does not now)" },
	{ "StatusDescriptions", "string[]", "OperationalStatus in words" },
	{ "HealthState", "uint16", "5 OK, 20 Major Failure (lost), 0 Unknown (no contact)" },
	{ NULL },
};

const struct ns_class ns_class_heartbeat = {
	.name = "Msvm_HeartbeatComponent",
	.superclass = "CIM_LogicalDevice",
	.description = "the guest agent's heartbeat, one per VM with a vsock device; an __InstanceModificationEvent when OperationalStatus changes",
	.key = "DeviceID",
	.props = hb_props,
	.enumerate = hb_enumerate,
};

/* ---- Msvm_ShutdownComponent ---------------------------------------------------------------- */

int ns_guest_shutdown(struct ns *ns, struct vm_entry *vm, bool force, unsigned timeout_s, const char *reason,
		      json_t *out, struct ns_error *e)
{
	struct ns_job *job;
	char caption[128], err[256] = "";
	int r;

	if (vm->last_state != VM_STATE_RUNNING)
		return ns_fail(e, NS_ERR_INVALID_STATE, "VM '%s' is not running (EnabledState %d); only a running VM can be shut down",
			       vm->name, vm->last_state);
	if (!ns->guests)
		return ns_fail(e, NS_ERR_NOT_SUPPORTED, "guest services are not available in this vmmsd");
	snprintf(caption, sizeof(caption), "Shut down VM '%s'", vm->name);
	job = ns_job_new(ns, caption);
	if (!job)
		return ns_fail(e, NS_ERR_LIMIT, "too many jobs are running (at most %d); try again later", NS_MAX_JOBS);
	r = guests_shutdown(ns->guests, vm->name, force, timeout_s, reason, job->id, err, sizeof(err));
	if (r < 0) {
		ns_job_finish(ns, job, 32768, err);
		if (r == -EBUSY)
			return ns_fail(e, NS_ERR_INVALID_STATE, "%s", err);
		return ns_fail(e, NS_ERR_FAILED, "VM '%s': cannot shut down: %s", vm->name, err[0] ? err : strerror(-r));
	}
	json_object_set_new(out, "Job", ns_job_path(job));
	return 4096;
}

static json_t *sd_instance(struct ns *ns, const struct vm_entry *vm)
{
	json_t *o = component_new(&ns_class_shutdown, vm, "Shutdown", "Shutdown");
	int hb = ns->guests ? guests_heartbeat(ns->guests, vm->name) : GUEST_HB_NO_CONTACT;

	if (o)
		json_object_set_new(o, "OperationalStatus", json_pack("[i]", hb));
	return o;
}

static int sd_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return each_vsock_vm(ns, only, arr, sd_instance);
}

static int sd_initiate(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	json_t *force = json_object_get(params, "Force"), *reason = json_object_get(params, "Reason");
	json_t *timeout = json_object_get(params, "Timeout");
	struct vm_entry *vm;
	const char *k;
	json_t *v;

	if (!inst)
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "InitiateShutdown needs an instance path (Msvm_ShutdownComponent.DeviceID=\"...\")");
	json_object_foreach((json_t *)params, k, v)
		if (strcmp(k, "Force") != 0 && strcmp(k, "Reason") != 0 && strcmp(k, "Timeout") != 0)
			return ns_fail(e, NS_ERR_INVALID_PARAMETER, "InitiateShutdown has no parameter %.64s (Force, Reason, Timeout)", k);
	if (force && !json_is_boolean(force))
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "Force must be true or false");
	if (reason && !json_is_string(reason))
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "Reason must be a string");
	if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 1 || json_integer_value(timeout) > 86400))
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "Timeout must be a number of seconds from 1 to 86400");
	vm = ns_instance_vm(ns, inst);
	if (!vm)
		return ns_fail(e, NS_ERR_NOT_FOUND, "the VM disappeared");
	return ns_guest_shutdown(ns, vm, json_is_true(force), timeout ? (unsigned)json_integer_value(timeout) : 0,
				 reason ? json_string_value(reason) : NULL, out, e);
}

static const struct ns_prop sd_props[] = {
	{ "DeviceID", "string", "\"<VM GUID>\\Shutdown\" (key)" },
	{ "SystemName", "string", "the VM's GUID" },
	{ "VMName", "string", "the VM's name" },
	{ "EnabledState", "uint16", "2 while the VM runs, 3 otherwise" },
	{ "OperationalStatus", "uint16[]", "as the heartbeat's: [2] the agent answers" },
	{ NULL },
};

static const struct ns_param sd_params[] = {
	{ "Force", "boolean", false, "turn the VM off when the guest has not finished in time" },
	{ "Reason", "string", false, "why (logged)" },
	{ "Timeout", "uint32", false, "seconds to wait for the guest (default 60)" },
	{ "Job", "ref", true, "the Msvm_ConcreteJob: completes when the VM is Off; fails when the guest did not finish in time and Force was not given" },
	{ NULL },
};

static const struct ns_method sd_methods[] = {
	{ "InitiateShutdown", "orderly shutdown through the guest agent (the ACPI power button when no agent answers)", sd_params, sd_initiate },
	{ NULL },
};

const struct ns_class ns_class_shutdown = {
	.name = "Msvm_ShutdownComponent",
	.superclass = "CIM_LogicalDevice",
	.description = "orderly shutdown of the guest, one per VM with a vsock device",
	.key = "DeviceID",
	.props = sd_props,
	.methods = sd_methods,
	.enumerate = sd_enumerate,
};

/* ---- Msvm_KvpExchangeComponent ------------------------------------------------------------- */

/* Items as Msvm_KvpExchangeDataItem objects: Source 0 host, 1 guest, 2 guest intrinsic. */
static json_t *items(json_t *pairs, int source)
{
	json_t *a = json_array(), *v;
	const char *k;

	if (!a || !pairs) {
		json_decref(pairs);
		return a;
	}
	json_object_foreach(pairs, k, v)
		json_array_append_new(a, json_pack("{s:s, s:s, s:O, s:i}", "__CLASS", "Msvm_KvpExchangeDataItem", "Name", k,
						   "Data", v, "Source", source));
	json_decref(pairs);
	return a;
}

static json_t *kvp_instance(struct ns *ns, const struct vm_entry *vm)
{
	json_t *o = component_new(&ns_class_kvp, vm, "KvpExchange", "Key-Value Pair Exchange");

	if (!o)
		return NULL;
	json_object_set_new(o, "GuestIntrinsicExchangeItems",
			    items(ns->guests ? guests_kvp_guest(ns->guests, vm->name) : json_object(), 2));
	json_object_set_new(o, "GuestExchangeItems", json_array());
	json_object_set_new(o, "HostExchangeItems",
			    items(ns->guests ? guests_kvp_host(ns->guests, vm->name) : json_object(), 0));
	json_object_set_new(o, "OperationalStatus",
			    json_pack("[i]", ns->guests ? guests_heartbeat(ns->guests, vm->name) : GUEST_HB_NO_CONTACT));
	return o;
}

static int kvp_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return each_vsock_vm(ns, only, arr, kvp_instance);
}

static const struct ns_prop kvp_props[] = {
	{ "DeviceID", "string", "\"<VM GUID>\\KvpExchange\" (key)" },
	{ "SystemName", "string", "the VM's GUID" },
	{ "VMName", "string", "the VM's name" },
	{ "GuestIntrinsicExchangeItems", "object[]", "facts the agent reports ({Name, Data, Source 2}): FullyQualifiedDomainName, OSName, OSVersion, OSId, OSKernelName, OSKernelVersion, ProcessorArchitecture, IntegrationServicesVersion, NetworkAddressIPv4, NetworkAddressIPv6 (';'-separated)" },
	{ "GuestExchangeItems", "object[]", "pairs set by the guest (none: the agent does not publish any yet)" },
	{ "HostExchangeItems", "object[]", "pairs set by the host ({Name, Data, Source 0}) with Msvm_VirtualSystemManagementService.AddKvpItems, ModifyKvpItems, RemoveKvpItems; the guest reads them in /run/vmms/kvp/<Name>" },
	{ "OperationalStatus", "uint16[]", "as the heartbeat's" },
	{ NULL },
};

const struct ns_class ns_class_kvp = {
	.name = "Msvm_KvpExchangeComponent",
	.superclass = "CIM_LogicalDevice",
	.description = "key-value pairs exchanged with the guest agent, one per VM with a vsock device",
	.key = "DeviceID",
	.props = kvp_props,
	.enumerate = kvp_enumerate,
};

/* Msvm_VirtualSystemManagementService.{Add,Modify,Remove}KvpItems(TargetSystem, DataItems). */
static int kvp_items(struct ns *ns, const json_t *params, json_t *out, int mode, struct ns_error *e)
{
	json_t *target = json_object_get(params, "TargetSystem"), *list = json_object_get(params, "DataItems");
	json_t *inst, *it;
	struct vm_entry *vm;
	size_t i;

	if (!json_is_string(target))
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "TargetSystem must be a Msvm_ComputerSystem path");
	if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > GUEST_MAX_HOST_ITEMS)
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "DataItems must be an array of 1 to %d {\"Name\": ..., \"Data\": ...} objects",
			       GUEST_MAX_HOST_ITEMS);
	inst = ns_get_instance(ns, json_string_value(target), e);
	if (!inst)
		return -1;
	vm = ns_instance_vm(ns, inst);
	json_decref(inst);
	if (!vm)
		return ns_fail(e, NS_ERR_NOT_FOUND, "TargetSystem is not a VM");
	if (!has_vsock(vm))
		return ns_fail(e, NS_ERR_NOT_SUPPORTED, "VM '%s' has no vsock device (<vsock model='virtio'>), so no guest agent to exchange pairs with",
			       vm->name);
	if (!ns->guests)
		return ns_fail(e, NS_ERR_NOT_SUPPORTED, "guest services are not available in this vmmsd");
	/* Check every item before changing anything. */
	json_array_foreach(list, i, it) {
		json_t *name = json_object_get(it, "Name"), *data = json_object_get(it, "Data");

		if (!json_is_object(it) || !json_is_string(name) || (mode != 2 && !json_is_string(data)))
			return ns_fail(e, NS_ERR_INVALID_PARAMETER, "DataItems[%zu] must be {\"Name\": string%s}", i,
				       mode != 2 ? ", \"Data\": string" : "");
	}
	json_array_foreach(list, i, it) {
		char err[256] = "";
		int r = guests_kvp_host_set(ns->guests, vm->name, mode, json_string_value(json_object_get(it, "Name")),
					    json_string_value(json_object_get(it, "Data")), err, sizeof(err));

		if (r < 0)
			return ns_fail(e, r == -EEXIST ? NS_ERR_ALREADY_EXISTS : r == -ENOENT ? NS_ERR_NOT_FOUND :
				       r == -ENOSPC ? NS_ERR_LIMIT : r == -EINVAL ? NS_ERR_INVALID_PARAMETER : NS_ERR_FAILED,
				       "DataItems[%zu]: %s", i, err[0] ? err : strerror(-r));
	}
	json_object_set_new(out, "Job", json_null());
	return 0;
}

int ns_vsms_add_kvp(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	(void)inst;
	return kvp_items(ns, params, out, 0, e);
}

int ns_vsms_modify_kvp(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	(void)inst;
	return kvp_items(ns, params, out, 1, e);
}

int ns_vsms_remove_kvp(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	(void)inst;
	return kvp_items(ns, params, out, 2, e);
}

const struct ns_param ns_vsms_kvp_params[] = {
	{ "TargetSystem", "ref", false, "the Msvm_ComputerSystem" },
	{ "DataItems", "object[]", false, "[{\"Name\": key, \"Data\": value}] (Data is ignored by RemoveKvpItems); keys 1-64 of A-Z a-z 0-9 . _ -, values at most 4096 bytes" },
	{ "Job", "ref", true, "always null (done at once)" },
	{ NULL },
};

/* ---- Msvm_GuestServiceInterfaceComponent --------------------------------------------------- */

static json_t *gsi_instance(struct ns *ns, const struct vm_entry *vm)
{
	json_t *o = component_new(&ns_class_guest_service, vm, "GuestService", "Guest Service Interface");

	if (o)
		json_object_set_new(o, "OperationalStatus",
				    json_pack("[i]", ns->guests ? guests_heartbeat(ns->guests, vm->name) : GUEST_HB_NO_CONTACT));
	return o;
}

static int gsi_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return each_vsock_vm(ns, only, arr, gsi_instance);
}

static const struct ns_prop gsi_props[] = {
	{ "DeviceID", "string", "\"<VM GUID>\\GuestService\" (key)" },
	{ "SystemName", "string", "the VM's GUID" },
	{ "VMName", "string", "the VM's name" },
	{ "OperationalStatus", "uint16[]", "as the heartbeat's" },
	{ NULL },
};

const struct ns_class ns_class_guest_service = {
	.name = "Msvm_GuestServiceInterfaceComponent",
	.superclass = "CIM_LogicalDevice",
	.description = "running commands in the guest and copying files to it: the JSON-RPC method AttachGuestChannel turns a connection into a channel to the guest agent (vmms-namespace(7))",
	.key = "DeviceID",
	.props = gsi_props,
	.enumerate = gsi_enumerate,
};
