// SPDX-License-Identifier: GPL-2.0-only
/* Settings classes of a VM, built from its parsed definition: system, processor, memory, storage, serial port. */
#include "parent/ns.h"

#include <errno.h>
#include <stdio.h>

const struct ns_class ns_class_vssd;
const struct ns_class ns_class_processor_sd;
const struct ns_class ns_class_memory_sd;
const struct ns_class ns_class_storage_sd;
const struct ns_class ns_class_serial_port;

static json_t *rasd_new(const struct ns_class *c, const struct vm_entry *vm, const char *sub, int type)
{
	char id[VM_ID_LEN + 96];
	json_t *o;

	snprintf(id, sizeof(id), "vmms:%s\\%s", vm->id, sub);
	o = ns_instance_new(c, id);
	if (o && type)
		json_object_set_new(o, "ResourceType", json_integer(type));
	return o;
}

/* Run fn over vm (or every VM when only is NULL). */
static int for_vms(struct ns *ns, const struct vm_entry *only, json_t *arr,
		   int (*fn)(const struct vm_entry *vm, json_t *arr))
{
	for (size_t i = 0; i < registry_count(ns->reg); i++) {
		struct vm_entry *vm = registry_at(ns->reg, i);
		int r;

		if (only && vm != only)
			continue;
		r = fn(vm, arr);
		if (r < 0)
			return r;
	}
	return 0;
}

static int append(json_t *arr, json_t *o)
{
	return o && json_array_append_new(arr, o) == 0 ? 0 : -ENOMEM;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* ---- Msvm_VirtualSystemSettingData ---- */

static int vssd_one(const struct vm_entry *vm, json_t *arr)
{
	char id[VM_ID_LEN + 8];
	json_t *o;

	snprintf(id, sizeof(id), "vmms:%s", vm->id);
	o = ns_instance_new(&ns_class_vssd, id);
	if (!o)
		return -ENOMEM;
	json_object_set_new(o, "ElementName", json_string(vm->name));
	json_object_set_new(o, "VirtualSystemIdentifier", json_string(vm->id));
	json_object_set_new(o, "VirtualSystemType", json_string("Microsoft:Hyper-V:System:Realized"));
	json_object_set_new(o, "CreationTime", ns_datetime(vm->created));
	json_object_set_new(o, "KernelPath", str_or_null(vm->cfg->kernel));
	json_object_set_new(o, "InitrdPath", str_or_null(vm->cfg->initrd));
	json_object_set_new(o, "KernelCommandLine", str_or_null(vm->cfg->cmdline));
	json_object_set_new(o, "Definition", json_stringn(vm->xml, vm->xml_len));
	return append(arr, o);
}

static int vssd_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return for_vms(ns, only, arr, vssd_one);
}

static const struct ns_prop vssd_props[] = {
	{ "InstanceID", "string", "\"vmms:\" and the VM's GUID (key)" },
	{ "ElementName", "string", "the VM's name" },
	{ "VirtualSystemIdentifier", "string", "the VM's GUID" },
	{ "VirtualSystemType", "string", "\"Microsoft:Hyper-V:System:Realized\"" },
	{ "CreationTime", "datetime", "when the VM was defined" },
	{ "KernelPath", "string", "<os><kernel>, null when absent" },
	{ "InitrdPath", "string", "<os><initrd>, null when absent" },
	{ "KernelCommandLine", "string", "<os><cmdline>, null when absent" },
	{ "Definition", "string", "the stored libvirt domain XML" },
	{ NULL },
};

const struct ns_class ns_class_vssd = {
	.name = "Msvm_VirtualSystemSettingData",
	.superclass = "CIM_VirtualSystemSettingData",
	.description = "the settings of a VM",
	.key = "InstanceID",
	.props = vssd_props,
	.enumerate = vssd_enumerate,
};

/* ---- Msvm_ProcessorSettingData ---- */

static int proc_one(const struct vm_entry *vm, json_t *arr)
{
	json_t *o = rasd_new(&ns_class_processor_sd, vm, "Processor", 3);

	if (!o)
		return -ENOMEM;
	json_object_set_new(o, "ElementName", json_string("Processor"));
	json_object_set_new(o, "AllocationUnits", json_string("count"));
	json_object_set_new(o, "VirtualQuantity", json_integer(vm->cfg->vcpus));
	return append(arr, o);
}

static int proc_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return for_vms(ns, only, arr, proc_one);
}

static const struct ns_prop proc_props[] = {
	{ "InstanceID", "string", "\"vmms:<GUID>\\\\Processor\" (key)" },
	{ "ElementName", "string", "\"Processor\"" },
	{ "ResourceType", "uint16", "3 (Processor)" },
	{ "AllocationUnits", "string", "\"count\"" },
	{ "VirtualQuantity", "uint64", "number of virtual processors (<vcpu>)" },
	{ NULL },
};

const struct ns_class ns_class_processor_sd = {
	.name = "Msvm_ProcessorSettingData",
	.superclass = "CIM_ResourceAllocationSettingData",
	.description = "the virtual processors of a VM",
	.key = "InstanceID",
	.props = proc_props,
	.enumerate = proc_enumerate,
};

/* ---- Msvm_MemorySettingData ---- */

static int mem_one(const struct vm_entry *vm, json_t *arr)
{
	json_t *o = rasd_new(&ns_class_memory_sd, vm, "Memory", 4);
	json_int_t mb = (json_int_t)(vm->cfg->memory >> 20);

	if (!o)
		return -ENOMEM;
	json_object_set_new(o, "ElementName", json_string("Memory"));
	json_object_set_new(o, "AllocationUnits", json_string("byte * 2^20"));
	json_object_set_new(o, "VirtualQuantity", json_integer(mb));
	json_object_set_new(o, "Reservation", json_integer(mb));
	json_object_set_new(o, "Limit", json_integer(mb));
	json_object_set_new(o, "DynamicMemoryEnabled", json_false());
	return append(arr, o);
}

static int mem_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return for_vms(ns, only, arr, mem_one);
}

static const struct ns_prop mem_props[] = {
	{ "InstanceID", "string", "\"vmms:<GUID>\\\\Memory\" (key)" },
	{ "ElementName", "string", "\"Memory\"" },
	{ "ResourceType", "uint16", "4 (Memory)" },
	{ "AllocationUnits", "string", "\"byte * 2^20\" (MiB)" },
	{ "VirtualQuantity", "uint64", "guest memory in MiB (<memory>)" },
	{ "Reservation", "uint64", "same as VirtualQuantity (memory is static)" },
	{ "Limit", "uint64", "same as VirtualQuantity" },
	{ "DynamicMemoryEnabled", "boolean", "always false" },
	{ NULL },
};

const struct ns_class ns_class_memory_sd = {
	.name = "Msvm_MemorySettingData",
	.superclass = "CIM_ResourceAllocationSettingData",
	.description = "the memory of a VM",
	.key = "InstanceID",
	.props = mem_props,
	.enumerate = mem_enumerate,
};

/* ---- Msvm_StorageAllocationSettingData ---- */

static int disk_all(const struct vm_entry *vm, json_t *arr)
{
	for (unsigned i = 0; i < vm->cfg->nr_disks && i < VM_MAX_DISKS; i++) {
		const struct vm_disk *d = &vm->cfg->disks[i];
		char sub[96];
		json_t *o;

		snprintf(sub, sizeof(sub), "Disk\\%s", d->target ? d->target : "?");
		o = rasd_new(&ns_class_storage_sd, vm, sub, 31);
		if (!o)
			return -ENOMEM;
		json_object_set_new(o, "ElementName", json_string("Hard Disk Image"));
		json_object_set_new(o, "ResourceSubType", json_string("Microsoft:Hyper-V:Virtual Hard Disk"));
		json_object_set_new(o, "HostResource", json_pack("[s?]", d->path));
		json_object_set_new(o, "Address", str_or_null(d->target));
		json_object_set_new(o, "ReadOnly", json_boolean(d->readonly));
		json_object_set_new(o, "Serial", str_or_null(d->serial));
		if (append(arr, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int disk_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return for_vms(ns, only, arr, disk_all);
}

static const struct ns_prop disk_props[] = {
	{ "InstanceID", "string", "\"vmms:<GUID>\\\\Disk\\\\<target>\" (key)" },
	{ "ElementName", "string", "\"Hard Disk Image\"" },
	{ "ResourceType", "uint16", "31 (Logical Disk)" },
	{ "ResourceSubType", "string", "\"Microsoft:Hyper-V:Virtual Hard Disk\"" },
	{ "HostResource", "string[]", "the image file (<source file>)" },
	{ "Address", "string", "the guest device name (<target dev>)" },
	{ "ReadOnly", "boolean", "<readonly/>" },
	{ "Serial", "string", "<serial>, null when absent" },
	{ NULL },
};

const struct ns_class ns_class_storage_sd = {
	.name = "Msvm_StorageAllocationSettingData",
	.superclass = "CIM_ResourceAllocationSettingData",
	.description = "a disk image attached to a VM",
	.key = "InstanceID",
	.props = disk_props,
	.enumerate = disk_enumerate,
};

/* ---- Msvm_SerialPort ---- */

static const char *chardev_kind(enum vm_chardev_kind k)
{
	switch (k) {
	case VM_CHARDEV_STDIO: return "stdio";
	case VM_CHARDEV_FILE: return "file";
	case VM_CHARDEV_UNIX: return "unix";
	case VM_CHARDEV_NULL: return "null";
	case VM_CHARDEV_NONE: break;
	}
	return "none";
}

static int serial_one(const struct vm_entry *vm, json_t *arr)
{
	char id[VM_ID_LEN + 16];
	json_t *o;

	if (vm->cfg->serial.kind == VM_CHARDEV_NONE)
		return 0;
	snprintf(id, sizeof(id), "vmms:%s\\COM1", vm->id);
	o = ns_instance_new(&ns_class_serial_port, id);
	if (!o)
		return -ENOMEM;
	json_object_set_new(o, "ElementName", json_string("COM 1"));
	json_object_set_new(o, "SystemName", json_string(vm->id));
	json_object_set_new(o, "SystemCreationClassName", json_string("Msvm_ComputerSystem"));
	json_object_set_new(o, "ConnectionType", json_string(chardev_kind(vm->cfg->serial.kind)));
	json_object_set_new(o, "Connection", json_pack("[s?]", vm->cfg->serial.path));
	return append(arr, o);
}

static int serial_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	return for_vms(ns, only, arr, serial_one);
}

static const struct ns_prop serial_props[] = {
	{ "DeviceID", "string", "\"vmms:<GUID>\\\\COM1\" (key)" },
	{ "ElementName", "string", "\"COM 1\"" },
	{ "SystemName", "string", "the VM's GUID" },
	{ "SystemCreationClassName", "string", "\"Msvm_ComputerSystem\"" },
	{ "ConnectionType", "string", "stdio, file, unix or null (the <serial type>)" },
	{ "Connection", "string[]", "the host path for file and unix, else [null]" },
	{ NULL },
};

const struct ns_class ns_class_serial_port = {
	.name = "Msvm_SerialPort",
	.superclass = "CIM_SerialController",
	.description = "the first serial port (COM1) of a VM, when it has one",
	.key = "DeviceID",
	.props = serial_props,
	.enumerate = serial_enumerate,
};
