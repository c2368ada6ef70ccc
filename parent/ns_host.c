// SPDX-License-Identifier: GPL-2.0-only
/* Msvm_HostComputerSystem: the one host this vmmsd runs on. */
#include "parent/ns.h"

#include <errno.h>
#include <unistd.h>

const struct ns_class ns_class_host_computer_system;

static int host_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	json_t *o;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	if (only)
		return 0;
	o = ns_instance_new(&ns_class_host_computer_system, ns->hostname);
	if (!o)
		return -ENOMEM;
	json_object_set_new(o, "ElementName", json_string(ns->hostname));
	json_object_set_new(o, "CreationClassName", json_string("Msvm_HostComputerSystem"));
	json_object_set_new(o, "EnabledState", json_integer(2));
	json_object_set_new(o, "HealthState", json_integer(5));
	json_object_set_new(o, "NumberOfLogicalProcessors", json_integer(n > 0 ? n : 0));
	json_object_set_new(o, "TotalPhysicalMemory", json_integer(pages > 0 && psz > 0 ? (json_int_t)pages * psz : 0));
	return json_array_append_new(arr, o) < 0 ? -ENOMEM : 0;
}

static const struct ns_prop host_props[] = {
	{ "Name", "string", "the host name (key)" },
	{ "ElementName", "string", "the host name" },
	{ "CreationClassName", "string", "always Msvm_HostComputerSystem" },
	{ "EnabledState", "uint16", "2 (Running)" },
	{ "HealthState", "uint16", "5 (OK)" },
	{ "NumberOfLogicalProcessors", "uint32", "online CPUs" },
	{ "TotalPhysicalMemory", "uint64", "bytes of RAM" },
	{ NULL },
};

const struct ns_class ns_class_host_computer_system = {
	.name = "Msvm_HostComputerSystem",
	.superclass = "CIM_ComputerSystem",
	.description = "the host",
	.key = "Name",
	.props = host_props,
	.enumerate = host_enumerate,
};
