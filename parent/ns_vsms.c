// SPDX-License-Identifier: GPL-2.0-only
/* Msvm_VirtualSystemManagementService: define, destroy and change the settings of VMs. */
#include "parent/ns.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct ns_class ns_class_vsms;

#define VSMS_NAME "vmms"

static int vsms_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	json_t *o;

	if (only)
		return 0;
	o = ns_instance_new(&ns_class_vsms, VSMS_NAME);
	if (!o)
		return -ENOMEM;
	json_object_set_new(o, "ElementName", json_string("Virtual Machine Management Service"));
	json_object_set_new(o, "SystemName", json_string(ns->hostname));
	json_object_set_new(o, "Started", json_true());
	json_object_set_new(o, "EnabledState", json_integer(2));
	json_object_set_new(o, "StartTime", ns_datetime(ns->started));
	return json_array_append_new(arr, o) < 0 ? -ENOMEM : 0;
}

static int map_define_error(struct ns_error *e, int r, const char *err)
{
	switch (r) {
	case -EEXIST: return ns_fail(e, NS_ERR_ALREADY_EXISTS, "%s", err);
	case -EINVAL: return ns_fail(e, NS_ERR_INVALID_PARAMETER, "%s", err);
	case -ENOSPC: return ns_fail(e, NS_ERR_LIMIT, "%s", err);
	default: return ns_fail(e, NS_ERR_FAILED, "%s", err[0] ? err : strerror(-r));
	}
}

static const char *get_str(const json_t *params, const char *name, struct ns_error *e)
{
	json_t *v = json_object_get(params, name);

	if (!json_is_string(v)) {
		ns_fail(e, NS_ERR_INVALID_PARAMETER, "parameter %s is required and must be a string", name);
		return NULL;
	}
	return json_string_value(v);
}

/* The VM named by a path parameter (an Msvm_ComputerSystem or its settings). */
static struct vm_entry *vm_param(struct ns *ns, const json_t *params, const char *name, struct ns_error *e)
{
	const char *path = get_str(params, name, e);
	struct vm_entry *vm;
	json_t *inst;

	if (!path)
		return NULL;
	inst = ns_get_instance(ns, path, e);
	if (!inst)
		return NULL;
	vm = ns_instance_vm(ns, inst);
	json_decref(inst);
	if (!vm)
		ns_fail(e, NS_ERR_INVALID_PARAMETER, "%s '%s' does not name a VM or its settings", name, path);
	return vm;
}

static int require_off(const struct vm_entry *vm, const char *what, struct ns_error *e)
{
	if (vm->last_state == VM_STATE_OFF)
		return 0;
	return ns_fail(e, NS_ERR_INVALID_STATE, "VM '%s' is not off (EnabledState %d); turn it off before %s",
		       vm->name, vm->last_state, what);
}

static int vsms_define(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	const char *xml = get_str(params, "SystemDefinition", e);
	struct vm_entry *vm;
	char err[512] = "";
	json_t *cs;
	int r;

	if (!xml)
		return -1;
	r = registry_define(ns->reg, xml, strlen(xml), &vm, err, sizeof(err));
	if (r < 0)
		return map_define_error(e, r, err);
	cs = ns_cs_instance(ns, vm);
	json_object_set(out, "ResultingSystem", json_object_get(cs, "__PATH"));
	json_object_set_new(out, "Job", json_null());
	ns_emit(ns, "__InstanceCreationEvent", cs, NULL);
	json_decref(cs);
	return 0;
}

static int vsms_destroy(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	struct vm_entry *vm = vm_param(ns, params, "AffectedSystem", e);
	json_t *cs;
	char name[VM_NAME_MAX + 1];
	int r;

	if (!vm || require_off(vm, "destroying it", e) < 0)
		return -1;
	cs = ns_cs_instance(ns, vm);
	snprintf(name, sizeof(name), "%s", vm->name);
	r = registry_remove(ns->reg, vm);
	if (r < 0) {
		json_decref(cs);
		return ns_fail(e, NS_ERR_FAILED, "cannot remove VM '%s': %s", name, strerror(-r));
	}
	if (ns->console_forget)
		ns->console_forget(ns->notify_ud, name);
	json_object_set_new(out, "Job", json_null());
	if (cs)
		ns_emit(ns, "__InstanceDeletionEvent", cs, NULL);
	json_decref(cs);
	return 0;
}

/* Store a new definition for vm and emit the modification event. */
static int replace_definition(struct ns *ns, struct vm_entry *vm, const char *xml, size_t len, struct ns_error *e)
{
	json_t *prev = ns_cs_instance(ns, vm), *cur;
	char err[512] = "";
	int r;

	r = registry_replace(ns->reg, vm, xml, len, err, sizeof(err));
	if (r < 0) {
		json_decref(prev);
		return map_define_error(e, r, err);
	}
	cur = ns_cs_instance(ns, vm);
	if (cur && prev)
		ns_emit(ns, "__InstanceModificationEvent", cur, prev);
	json_decref(prev);
	json_decref(cur);
	return 0;
}

static int vsms_modify_system(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	struct vm_entry *vm = vm_param(ns, params, "AffectedSystem", e);
	const char *xml;

	if (!vm || !(xml = get_str(params, "SystemDefinition", e)) || require_off(vm, "changing its settings", e) < 0)
		return -1;
	if (replace_definition(ns, vm, xml, strlen(xml), e) < 0)
		return -1;
	json_object_set_new(out, "Job", json_null());
	return 0;
}

/* ---- resource settings: edits of the stored domain XML, then re-validated as a whole ---- */

static xmlNode *child(xmlNode *parent, const char *name)
{
	for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
			return n;
	return NULL;
}

static xmlNode *find_disk(xmlNode *devices, const char *target)
{
	for (xmlNode *n = devices ? devices->children : NULL; n; n = n->next) {
		xmlNode *t;
		xmlChar *dev;
		bool match;

		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "disk") != 0)
			continue;
		t = child(n, "target");
		dev = t ? xmlGetProp(t, (const xmlChar *)"dev") : NULL;
		match = dev && strcmp((const char *)dev, target) == 0;
		xmlFree(dev);
		if (match)
			return n;
	}
	return NULL;
}

static void set_text(xmlNode *parent, const char *name, const char *value, const char *unit)
{
	xmlNode *n = child(parent, name);

	if (!n)
		n = xmlNewChild(parent, NULL, (const xmlChar *)name, NULL);
	if (!n)
		return;
	xmlNodeSetContent(n, (const xmlChar *)value);
	if (unit)
		xmlSetProp(n, (const xmlChar *)"unit", (const xmlChar *)unit);
}

static int get_u64(const json_t *o, const char *name, uint64_t max, uint64_t *ret, struct ns_error *e)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_integer(v) || json_integer_value(v) <= 0 || (uint64_t)json_integer_value(v) > max)
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "%s must be an integer from 1 to %llu", name,
			       (unsigned long long)max);
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

enum rs_op { RS_ADD, RS_MODIFY, RS_REMOVE };

/* Apply one setting (an embedded instance, or for RS_REMOVE an object path) to the document. */
static int apply_setting(struct ns *ns, struct vm_entry *vm, xmlNode *root, enum rs_op op, const json_t *s,
			 struct ns_error *e)
{
	xmlNode *devices = child(root, "devices");
	const char *cls, *id = NULL;
	char buf[64];
	uint64_t q;

	if (!json_is_object(s))
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "ResourceSettings must be embedded instances (objects with __CLASS)");
	cls = json_string_value(json_object_get(s, "__CLASS"));
	if (!cls)
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "a resource setting needs __CLASS");
	if (op == RS_MODIFY) {
		char want[VM_ID_LEN + 8];

		id = json_string_value(json_object_get(s, "InstanceID"));
		snprintf(want, sizeof(want), "vmms:%s\\", vm->id);
		if (!id || strncasecmp(id, want, strlen(want)) != 0)
			return ns_fail(e, NS_ERR_INVALID_PARAMETER, "InstanceID must name a setting of VM '%s'", vm->name);
	}
	if (strcasecmp(cls, "Msvm_MemorySettingData") == 0 && op == RS_MODIFY) {
		if (get_u64(s, "VirtualQuantity", 1ULL << 24, &q, e) < 0)
			return -1;
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)q);
		set_text(root, "memory", buf, "MiB");
		if (child(root, "currentMemory"))
			set_text(root, "currentMemory", buf, "MiB");
		return 0;
	}
	if (strcasecmp(cls, "Msvm_ProcessorSettingData") == 0 && op == RS_MODIFY) {
		if (get_u64(s, "VirtualQuantity", VM_MAX_VCPUS, &q, e) < 0)
			return -1;
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)q);
		set_text(root, "vcpu", buf, NULL);
		return 0;
	}
	if (strcasecmp(cls, "Msvm_StorageAllocationSettingData") == 0 && op == RS_ADD) {
		const char *addr = json_string_value(json_object_get(s, "Address"));
		json_t *hr = json_object_get(s, "HostResource");
		const char *path = json_is_array(hr) ? json_string_value(json_array_get(hr, 0)) : NULL;
		xmlNode *d, *n;

		if (!addr || !path || json_array_size(hr) != 1)
			return ns_fail(e, NS_ERR_INVALID_PARAMETER, "a disk needs Address (e.g. \"vdb\") and HostResource [\"/path/image\"]");
		if (find_disk(devices, addr))
			return ns_fail(e, NS_ERR_ALREADY_EXISTS, "VM '%s' already has a disk %s", vm->name, addr);
		if (!devices)
			devices = xmlNewChild(root, NULL, (const xmlChar *)"devices", NULL);
		d = xmlNewChild(devices, NULL, (const xmlChar *)"disk", NULL);
		if (!d)
			return ns_fail(e, NS_ERR_INTERNAL, "out of memory");
		xmlSetProp(d, (const xmlChar *)"type", (const xmlChar *)"file");
		xmlSetProp(d, (const xmlChar *)"device", (const xmlChar *)"disk");
		n = xmlNewChild(d, NULL, (const xmlChar *)"driver", NULL);
		xmlSetProp(n, (const xmlChar *)"name", (const xmlChar *)"qemu");
		xmlSetProp(n, (const xmlChar *)"type", (const xmlChar *)"raw");
		n = xmlNewChild(d, NULL, (const xmlChar *)"source", NULL);
		xmlSetProp(n, (const xmlChar *)"file", (const xmlChar *)path);
		n = xmlNewChild(d, NULL, (const xmlChar *)"target", NULL);
		xmlSetProp(n, (const xmlChar *)"dev", (const xmlChar *)addr);
		xmlSetProp(n, (const xmlChar *)"bus", (const xmlChar *)"virtio");
		if (json_is_true(json_object_get(s, "ReadOnly")))
			xmlNewChild(d, NULL, (const xmlChar *)"readonly", NULL);
		return 0;
	}
	return ns_fail(e, NS_ERR_NOT_SUPPORTED, "%s of %s is not supported (supported: modify memory and processor, add and remove disks)",
		       op == RS_ADD ? "adding" : "modifying", cls);
}

static int remove_setting(struct ns *ns, struct vm_entry *vm, xmlNode *root, const json_t *s, struct ns_error *e)
{
	json_t *inst;
	const char *cls, *addr;
	xmlNode *d;

	if (!json_is_string(s))
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "ResourceSettings must be object paths");
	inst = ns_get_instance(ns, json_string_value(s), e);
	if (!inst)
		return -1;
	cls = json_string_value(json_object_get(inst, "__CLASS"));
	if (ns_instance_vm(ns, inst) != vm || strcmp(cls, "Msvm_StorageAllocationSettingData") != 0) {
		json_decref(inst);
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "%s is not a disk of VM '%s' (only disks can be removed)",
			       json_string_value(s), vm->name);
	}
	addr = json_string_value(json_object_get(inst, "Address"));
	d = addr ? find_disk(child(root, "devices"), addr) : NULL;
	json_decref(inst);
	if (!d)
		return ns_fail(e, NS_ERR_NOT_FOUND, "disk not found in the definition of VM '%s'", vm->name);
	xmlUnlinkNode(d);
	xmlFreeNode(d);
	return 0;
}

static int resource_op(struct ns *ns, const json_t *params, json_t *out, enum rs_op op, struct ns_error *e)
{
	json_t *list = json_object_get(params, "ResourceSettings"), *s;
	struct vm_entry *vm = NULL;
	xmlDoc *doc;
	xmlChar *mem = NULL;
	int len = 0, r = 0;
	size_t i;

	if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 64)
		return ns_fail(e, NS_ERR_INVALID_PARAMETER, "ResourceSettings must be an array of 1 to 64 settings");
	if (op == RS_ADD) {
		vm = vm_param(ns, params, "AffectedConfiguration", e);
	} else {
		/* The VM comes from the first setting: an InstanceID or a path. */
		const json_t *first = json_array_get(list, 0);
		const char *path = json_is_string(first) ? json_string_value(first)
			: json_string_value(json_object_get(first, "__PATH"));
		json_t *inst;

		if (!path)
			return ns_fail(e, NS_ERR_INVALID_PARAMETER, "each setting needs __PATH (or is an object path)");
		inst = ns_get_instance(ns, path, e);
		if (!inst)
			return -1;
		vm = ns_instance_vm(ns, inst);
		json_decref(inst);
		if (!vm)
			return ns_fail(e, NS_ERR_INVALID_PARAMETER, "%s is not a VM setting", path);
	}
	if (!vm || require_off(vm, "changing its resources", e) < 0)
		return -1;
	/* Our own stored XML, already validated; still parsed without network or entities. */
	doc = xmlReadMemory(vm->xml, (int)vm->xml_len, "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return ns_fail(e, NS_ERR_FAILED, "the stored definition of VM '%s' cannot be parsed", vm->name);
	json_array_foreach(list, i, s) {
		r = op == RS_REMOVE ? remove_setting(ns, vm, xmlDocGetRootElement(doc), s, e)
				    : apply_setting(ns, vm, xmlDocGetRootElement(doc), op, s, e);
		if (r < 0)
			break;
	}
	if (r == 0) {
		xmlDocDumpMemory(doc, &mem, &len);
		if (!mem)
			r = ns_fail(e, NS_ERR_INTERNAL, "out of memory");
		else
			r = replace_definition(ns, vm, (const char *)mem, (size_t)len, e);
	}
	xmlFree(mem);
	xmlFreeDoc(doc);
	if (r < 0)
		return -1;
	json_object_set_new(out, "Job", json_null());
	return 0;
}

static int vsms_add_rs(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	return resource_op(ns, params, out, RS_ADD, e);
}

static int vsms_modify_rs(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	return resource_op(ns, params, out, RS_MODIFY, e);
}

static int vsms_remove_rs(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e)
{
	return resource_op(ns, params, out, RS_REMOVE, e);
}

static const struct ns_prop vsms_props[] = {
	{ "Name", "string", "\"vmms\" (key)" },
	{ "ElementName", "string", "\"Virtual Machine Management Service\"" },
	{ "SystemName", "string", "the host name" },
	{ "Started", "boolean", "true" },
	{ "EnabledState", "uint16", "2 (Running)" },
	{ "StartTime", "datetime", "when vmmsd started" },
	{ NULL },
};

static const struct ns_param define_params[] = {
	{ "SystemDefinition", "string", false, "libvirt domain XML (type kvm)" },
	{ "ResultingSystem", "ref", true, "path of the new Msvm_ComputerSystem" },
	{ "Job", "ref", true, "null: the call completes at once" },
	{ NULL },
};

static const struct ns_param destroy_params[] = {
	{ "AffectedSystem", "ref", false, "path of the Msvm_ComputerSystem to delete (it must be off)" },
	{ "Job", "ref", true, "null" },
	{ NULL },
};

static const struct ns_param modify_sys_params[] = {
	{ "AffectedSystem", "ref", false, "path of the Msvm_ComputerSystem (it must be off)" },
	{ "SystemDefinition", "string", false, "the complete new libvirt domain XML (same name and uuid)" },
	{ "Job", "ref", true, "null" },
	{ NULL },
};

static const struct ns_param add_rs_params[] = {
	{ "AffectedConfiguration", "ref", false, "path of the VM's Msvm_VirtualSystemSettingData (or its Msvm_ComputerSystem)" },
	{ "ResourceSettings", "object[]", false, "Msvm_StorageAllocationSettingData objects with Address and HostResource" },
	{ "Job", "ref", true, "null" },
	{ NULL },
};

static const struct ns_param modify_rs_params[] = {
	{ "ResourceSettings", "object[]", false, "Msvm_MemorySettingData or Msvm_ProcessorSettingData objects (with __PATH and InstanceID) carrying a new VirtualQuantity" },
	{ "Job", "ref", true, "null" },
	{ NULL },
};

static const struct ns_param remove_rs_params[] = {
	{ "ResourceSettings", "ref[]", false, "paths of Msvm_StorageAllocationSettingData to detach" },
	{ "Job", "ref", true, "null" },
	{ NULL },
};

static const struct ns_method vsms_methods[] = {
	{ "DefineSystem", "define a new VM from libvirt domain XML", define_params, vsms_define },
	{ "DestroySystem", "delete a VM that is off, with its stored definition", destroy_params, vsms_destroy },
	{ "ModifySystemSettings", "replace the definition of a VM that is off", modify_sys_params, vsms_modify_system },
	{ "AddResourceSettings", "attach disks to a VM that is off", add_rs_params, vsms_add_rs },
	{ "ModifyResourceSettings", "change memory or processor count of a VM that is off", modify_rs_params, vsms_modify_rs },
	{ "RemoveResourceSettings", "detach disks from a VM that is off", remove_rs_params, vsms_remove_rs },
	{ "AddKvpItems", "add host key-value pairs for the guest agent", ns_vsms_kvp_params, ns_vsms_add_kvp },
	{ "ModifyKvpItems", "change host key-value pairs", ns_vsms_kvp_params, ns_vsms_modify_kvp },
	{ "RemoveKvpItems", "remove host key-value pairs", ns_vsms_kvp_params, ns_vsms_remove_kvp },
	{ NULL },
};

const struct ns_class ns_class_vsms = {
	.name = "Msvm_VirtualSystemManagementService",
	.superclass = "CIM_VirtualSystemManagementService",
	.description = "defines, changes and deletes VMs",
	.key = "Name",
	.props = vsms_props,
	.methods = vsms_methods,
	.enumerate = vsms_enumerate,
};
