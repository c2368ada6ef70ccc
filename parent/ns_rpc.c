// SPDX-License-Identifier: GPL-2.0-only
/* JSON-RPC 2.0 dispatcher of the namespace: one request line in, one response object out. */
#include "parent/ns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

typedef json_t *(*rpc_fn)(struct ns *ns, void *client, const json_t *params, struct ns_error *e);

/* A required string parameter; NULL with e set. */
static const char *param_str(const json_t *params, const char *name, struct ns_error *e)
{
	json_t *v = json_object_get(params, name);

	if (!v) {
		ns_fail(e, NS_ERR_INVALID_PARAMS, "missing parameter %s", name);
		return NULL;
	}
	if (!json_is_string(v)) {
		ns_fail(e, NS_ERR_INVALID_PARAMS, "parameter %s must be a string", name);
		return NULL;
	}
	return json_string_value(v);
}

/* Optional string: NULL when absent; sets e (and returns NULL) when present but not a string. */
static const char *param_opt_str(const json_t *params, const char *name, bool *bad, struct ns_error *e)
{
	json_t *v = json_object_get(params, name);

	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		ns_fail(e, NS_ERR_INVALID_PARAMS, "parameter %s must be a string", name);
		return NULL;
	}
	return json_string_value(v);
}

static json_t *class_json(const struct ns_class *c)
{
	json_t *props = json_array(), *methods = json_array();

	for (const struct ns_prop *p = c->props; p && p->name; p++)
		json_array_append_new(props, json_pack("{s:s, s:s, s:s, s:b}", "Name", p->name, "Type", p->type,
						       "Description", p->description,
						       "Key", strcmp(p->name, c->key) == 0));
	for (const struct ns_method *m = c->methods; m && m->name; m++) {
		json_t *params = json_array();

		for (const struct ns_param *a = m->params; a && a->name; a++)
			json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:s}", "Name", a->name,
								"Type", a->type, "Direction", a->out ? "out" : "in",
								"Description", a->description));
		json_array_append_new(methods, json_pack("{s:s, s:s, s:o}", "Name", m->name,
							 "Description", m->description, "Parameters", params));
	}
	return json_pack("{s:s, s:s?, s:s, s:s, s:o, s:o}", "Name", c->name, "Superclass", c->superclass,
			 "Description", c->description, "Key", c->key, "Properties", props, "Methods", methods);
}

static json_t *rpc_enumerate_classes(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < ns_nclasses; i++)
		json_array_append_new(arr, class_json(ns_classes[i]));
	return arr;
}

static json_t *rpc_get_class(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *name = param_str(params, "ClassName", e);
	const struct ns_class *c;

	if (!name)
		return NULL;
	c = ns_class_find(name);
	if (!c) {
		ns_fail(e, NS_ERR_NOT_FOUND, "class %s does not exist in %s (see EnumerateClasses)", name, NS_NAME);
		return NULL;
	}
	return class_json(c);
}

static json_t *rpc_enumerate_instances(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *name = param_str(params, "ClassName", e);

	return name ? ns_enumerate(ns, name, e) : NULL;
}

static json_t *rpc_get_instance(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *path = param_str(params, "ObjectPath", e);

	return path ? ns_get_instance(ns, path, e) : NULL;
}

/* Check the select list names properties of the class (WMI refuses unknown ones). */
static int check_select(const struct wql_query *q, struct ns_error *e)
{
	const struct ns_class *c = ns_class_find(wql_class(q));

	if (!c)
		return 0;
	for (size_t i = 0; i < wql_nprops(q); i++) {
		const char *p = wql_prop(q, i);
		bool ok = false;

		for (const struct ns_prop *d = c->props; d->name; d++)
			if (strcasecmp(d->name, p) == 0)
				ok = true;
		if (!ok)
			return ns_fail(e, NS_ERR_INVALID_QUERY, "class %s has no property %s", c->name, p);
	}
	return 0;
}

static json_t *rpc_exec_query(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *text = param_str(params, "Query", e);
	struct wql_query *q;
	char err[256];
	json_t *all, *out, *v;
	size_t i;

	if (!text)
		return NULL;
	if (wql_parse(text, &q, err, sizeof(err)) < 0) {
		ns_fail(e, NS_ERR_INVALID_QUERY, "%s", err);
		return NULL;
	}
	if (wql_is_event(q)) {
		wql_free(q);
		ns_fail(e, NS_ERR_INVALID_QUERY, "event queries go to Subscribe, not ExecQuery");
		return NULL;
	}
	if (check_select(q, e) < 0 || !(all = ns_enumerate(ns, wql_class(q), e))) {
		wql_free(q);
		return NULL;
	}
	out = json_array();
	json_array_foreach(all, i, v)
		if (wql_match(q, v, ns_isa, NULL))
			json_array_append_new(out, wql_project(q, v));
	json_decref(all);
	wql_free(q);
	return out;
}

/* Associations: which classes relate, through which association class. */
static const struct {
	const char *assoc, *a, *b;
	bool same_vm;       /* related only within one VM; otherwise all instances relate */
} assocs[] = {
	{ "Msvm_SettingsDefineState", "Msvm_ComputerSystem", "Msvm_VirtualSystemSettingData", true },
	{ "Msvm_VirtualSystemSettingDataComponent", "Msvm_VirtualSystemSettingData", "Msvm_ProcessorSettingData", true },
	{ "Msvm_VirtualSystemSettingDataComponent", "Msvm_VirtualSystemSettingData", "Msvm_MemorySettingData", true },
	{ "Msvm_VirtualSystemSettingDataComponent", "Msvm_VirtualSystemSettingData", "Msvm_StorageAllocationSettingData", true },
	{ "Msvm_VirtualSystemSettingDataComponent", "Msvm_VirtualSystemSettingData", "Msvm_SerialPort", true },
	{ "Msvm_SystemDevice", "Msvm_ComputerSystem", "Msvm_SerialPort", true },
	{ "Msvm_HostedDependency", "Msvm_HostComputerSystem", "Msvm_ComputerSystem", false },
	{ "Msvm_HostedService", "Msvm_HostComputerSystem", "Msvm_VirtualSystemManagementService", false },
	{ "Msvm_OwningJobElement", "Msvm_VirtualSystemManagementService", "Msvm_ConcreteJob", false },
};

static json_t *rpc_associators(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *path = param_str(params, "ObjectPath", e), *assoc_cls, *result_cls, *cls;
	json_t *inst, *out;
	struct vm_entry *vm;
	bool bad = false;

	if (!path)
		return NULL;
	assoc_cls = param_opt_str(params, "AssocClass", &bad, e);
	result_cls = param_opt_str(params, "ResultClass", &bad, e);
	if (bad)
		return NULL;
	inst = ns_get_instance(ns, path, e);
	if (!inst)
		return NULL;
	cls = json_string_value(json_object_get(inst, "__CLASS"));
	vm = ns_instance_vm(ns, inst);
	out = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(assocs); i++) {
		const char *other;
		const struct ns_class *oc;
		json_t *cand, *v;
		size_t k;

		if (strcmp(cls, assocs[i].a) == 0)
			other = assocs[i].b;
		else if (strcmp(cls, assocs[i].b) == 0)
			other = assocs[i].a;
		else
			continue;
		if (assoc_cls && strcasecmp(assoc_cls, assocs[i].assoc) != 0)
			continue;
		if (result_cls && !ns_isa(other, result_cls, NULL))
			continue;
		oc = ns_class_find(other);
		cand = json_array();
		if (!oc || !cand || oc->enumerate(ns, assocs[i].same_vm ? vm : NULL, cand) < 0) {
			json_decref(cand);
			continue;
		}
		json_array_foreach(cand, k, v)
			if (!assocs[i].same_vm || (vm && ns_instance_vm(ns, v) == vm))
				json_array_append(out, v);
		json_decref(cand);
	}
	json_decref(inst);
	return out;
}

static json_t *rpc_invoke_method(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *path = param_str(params, "ObjectPath", e), *mname;
	const struct ns_class *c;
	const struct ns_method *m = NULL;
	json_t *inst = NULL, *args, *out;
	struct ns_path p;
	int rv;

	if (!path || !(mname = param_str(params, "MethodName", e)))
		return NULL;
	args = json_object_get(params, "Parameters");
	if (args && !json_is_object(args) && !json_is_null(args)) {
		ns_fail(e, NS_ERR_INVALID_PARAMS, "Parameters must be an object of name: value");
		return NULL;
	}
	if (ns_path_parse(path, true, &p, e) < 0)
		return NULL;
	c = ns_class_find(p.cls);
	if (!c) {
		ns_fail(e, NS_ERR_NOT_FOUND, "class %s does not exist in %s", p.cls, NS_NAME);
		ns_path_clear(&p);
		return NULL;
	}
	for (const struct ns_method *x = c->methods; x && x->name; x++)
		if (strcasecmp(x->name, mname) == 0)
			m = x;
	if (!m) {
		ns_fail(e, NS_ERR_NOT_FOUND, "class %s has no method %s (see GetClass)", c->name, mname);
		ns_path_clear(&p);
		return NULL;
	}
	if (p.nkeys > 0) {
		inst = ns_get_instance(ns, path, e);
		if (!inst) {
			ns_path_clear(&p);
			return NULL;
		}
	}
	ns_path_clear(&p);
	/* Every input a client sends must be a declared input parameter. */
	if (args && json_is_object(args)) {
		const char *k;
		json_t *v;

		json_object_foreach(args, k, v) {
			bool ok = false;

			for (const struct ns_param *a = m->params; a && a->name; a++)
				if (!a->out && strcmp(a->name, k) == 0)
					ok = true;
			if (!ok) {
				json_decref(inst);
				ns_fail(e, NS_ERR_INVALID_PARAMETER, "method %s.%s has no input parameter %s",
					c->name, m->name, k);
				return NULL;
			}
		}
	}
	out = json_object();
	rv = m->fn(ns, inst, args && json_is_object(args) ? args : NULL, out, e);
	json_decref(inst);
	if (rv < 0) {
		json_decref(out);
		return NULL;
	}
	json_object_set_new(out, "ReturnValue", json_integer(rv));
	return out;
}

static json_t *rpc_subscribe(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *text = param_str(params, "Query", e), *target;
	struct wql_query *q;
	struct ns_sub *ns_subs;
	size_t mine = 0;
	char err[256];

	if (!text)
		return NULL;
	if (wql_parse(text, &q, err, sizeof(err)) < 0) {
		ns_fail(e, NS_ERR_INVALID_QUERY, "%s", err);
		return NULL;
	}
	if (!wql_is_event(q)) {
		wql_free(q);
		ns_fail(e, NS_ERR_INVALID_QUERY, "Subscribe needs an event query (FROM __InstanceCreationEvent, "
			"__InstanceModificationEvent or __InstanceDeletionEvent)");
		return NULL;
	}
	target = wql_event_target(q);
	if (!target || !ns_class_find(target)) {
		ns_fail(e, NS_ERR_INVALID_QUERY, "%s", target ? "the class after TargetInstance ISA does not exist"
			: "an event query needs WHERE TargetInstance ISA 'Class'");
		wql_free(q);
		return NULL;
	}
	for (size_t i = 0; i < ns->nsubs; i++)
		mine += ns->subs[i].client == client;
	if (ns->nsubs >= NS_MAX_SUBS || mine >= NS_MAX_SUBS_PER_CLIENT) {
		wql_free(q);
		ns_fail(e, NS_ERR_LIMIT, "too many subscriptions (at most %d per connection)", NS_MAX_SUBS_PER_CLIENT);
		return NULL;
	}
	ns_subs = realloc(ns->subs, (ns->nsubs + 1) * sizeof(*ns_subs));
	if (!ns_subs) {
		wql_free(q);
		ns_fail(e, NS_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	ns->subs = ns_subs;
	ns->subs[ns->nsubs] = (struct ns_sub){ .id = ns->next_sub++, .client = client, .q = q };
	return json_pack("{s:I}", "SubscriptionId", (json_int_t)ns->subs[ns->nsubs++].id);
}

static json_t *rpc_unsubscribe(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	json_t *v = json_object_get(params, "SubscriptionId");

	if (!json_is_integer(v)) {
		ns_fail(e, NS_ERR_INVALID_PARAMS, "parameter SubscriptionId must be an integer");
		return NULL;
	}
	for (size_t i = 0; i < ns->nsubs; i++) {
		if (ns->subs[i].client != client || (json_int_t)ns->subs[i].id != json_integer_value(v))
			continue;
		wql_free(ns->subs[i].q);
		memmove(ns->subs + i, ns->subs + i + 1, (ns->nsubs - i - 1) * sizeof(*ns->subs));
		ns->nsubs--;
		return json_object();
	}
	ns_fail(e, NS_ERR_NOT_FOUND, "no subscription %" JSON_INTEGER_FORMAT " on this connection",
		json_integer_value(v));
	return NULL;
}

/* AttachConsole {"Name": vm name or GUID, "Mode": "read"|"write" (default), "Force": bool}:
 * the reply is the last JSON on the connection; raw console bytes follow it both ways. */
static json_t *rpc_attach_console(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *name = param_str(params, "Name", e), *mode = "write";
	json_t *force = json_object_get(params, "Force");
	struct vm_entry *vm;
	bool bad = false, write;
	const char *k;
	json_t *v;

	if (!name)
		return NULL;
	json_object_foreach((json_t *)params, k, v)
		if (strcmp(k, "Name") != 0 && strcmp(k, "Mode") != 0 && strcmp(k, "Force") != 0) {
			ns_fail(e, NS_ERR_INVALID_PARAMS, "AttachConsole has no parameter %.64s (Name, Mode, Force)", k);
			return NULL;
		}
	if (json_object_get(params, "Mode"))
		mode = param_opt_str(params, "Mode", &bad, e);
	if (bad)
		return NULL;
	if (!mode || (strcmp(mode, "read") != 0 && strcmp(mode, "write") != 0)) {
		ns_fail(e, NS_ERR_INVALID_PARAMS, "Mode must be \"read\" or \"write\"");
		return NULL;
	}
	if (force && !json_is_boolean(force)) {
		ns_fail(e, NS_ERR_INVALID_PARAMS, "parameter Force must be true or false");
		return NULL;
	}
	write = strcmp(mode, "write") == 0;
	vm = registry_find(ns->reg, name);
	if (!vm) {
		ns_fail(e, NS_ERR_NOT_FOUND, "no VM named %.80s (virtctl list shows them)", name);
		return NULL;
	}
	if (!ns->console_attach) {
		ns_fail(e, NS_ERR_NOT_SUPPORTED, "consoles are not available in this vmmsd");
		return NULL;
	}
	if (ns->console_attach(ns->notify_ud, client, vm->name, write, json_is_true(force), e) < 0)
		return NULL;
	/* Stream "raw": from the next byte on, the connection carries console bytes both ways;
	 * the client detaches by closing it (vmmsd closes it when the VM stops). */
	return json_pack("{s:s, s:s, s:s, s:s}", "Name", vm->name, "Id", vm->id, "Mode", mode, "Stream", "raw");
}

/* AttachGuestChannel {"Name": vm name or GUID}: the reply is the last JSON line; guest agent
 * frames (lib/guestproto.h) follow it both ways, starting with vmmsd's {"type":"channel"}. */
static json_t *rpc_attach_guest_channel(struct ns *ns, void *client, const json_t *params, struct ns_error *e)
{
	const char *name = param_str(params, "Name", e);
	struct vm_entry *vm;
	const char *k;
	json_t *v;

	if (!name)
		return NULL;
	json_object_foreach((json_t *)params, k, v)
		if (strcmp(k, "Name") != 0) {
			ns_fail(e, NS_ERR_INVALID_PARAMS, "AttachGuestChannel has no parameter %.64s (Name)", k);
			return NULL;
		}
	vm = registry_find(ns->reg, name);
	if (!vm) {
		ns_fail(e, NS_ERR_NOT_FOUND, "no VM named %.80s (virtctl list shows them)", name);
		return NULL;
	}
	if (!ns->guest_attach) {
		ns_fail(e, NS_ERR_NOT_SUPPORTED, "guest channels are not available in this vmmsd");
		return NULL;
	}
	if (ns->guest_attach(ns->notify_ud, client, vm->name, e) < 0)
		return NULL;
	return json_pack("{s:s, s:s, s:s}", "Name", vm->name, "Id", vm->id, "Stream", "guestproto");
}

static const struct {
	const char *name;
	rpc_fn fn;
} rpc_methods[] = {
	{ "AttachConsole", rpc_attach_console },
	{ "AttachGuestChannel", rpc_attach_guest_channel },
	{ "EnumerateClasses", rpc_enumerate_classes },
	{ "GetClass", rpc_get_class },
	{ "EnumerateInstances", rpc_enumerate_instances },
	{ "GetInstance", rpc_get_instance },
	{ "ExecQuery", rpc_exec_query },
	{ "Associators", rpc_associators },
	{ "InvokeMethod", rpc_invoke_method },
	{ "Subscribe", rpc_subscribe },
	{ "Unsubscribe", rpc_unsubscribe },
};

/* The line is client input: parsed by jansson with limits, every member type-checked. */
json_t *ns_rpc_handle(struct ns *ns, void *client, const char *line, size_t len)
{
	struct ns_error e = { 0 };
	json_error_t jerr;
	json_t *req, *id, *params, *result, *resp, *ver, *method;
	rpc_fn fn = NULL;

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!req) {
		char msg[300];

		snprintf(msg, sizeof(msg), "not valid JSON: %s (column %d)", jerr.text, jerr.column);
		return ns_rpc_error(NULL, NS_ERR_PARSE, msg);
	}
	if (!json_is_object(req)) {
		json_decref(req);
		return ns_rpc_error(NULL, NS_ERR_INVALID_REQUEST,
				    "a request must be a JSON object (batches are not supported)");
	}
	id = json_object_get(req, "id");
	if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id)) {
		json_decref(req);
		return ns_rpc_error(NULL, NS_ERR_INVALID_REQUEST, "id must be a string, an integer or null");
	}
	ver = json_object_get(req, "jsonrpc");
	method = json_object_get(req, "method");
	params = json_object_get(req, "params");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0)
		ns_fail(&e, NS_ERR_INVALID_REQUEST, "\"jsonrpc\": \"2.0\" is required");
	else if (!method)
		ns_fail(&e, NS_ERR_INVALID_REQUEST, "missing \"method\"");
	else if (!json_is_string(method))
		ns_fail(&e, NS_ERR_INVALID_REQUEST, "\"method\" must be a string");
	else if (params && !json_is_object(params))
		ns_fail(&e, NS_ERR_INVALID_PARAMS, "\"params\" must be an object of named parameters");
	if (e.code) {
		resp = ns_rpc_error(id, e.code, e.message);
		json_decref(req);
		return resp;
	}
	for (size_t i = 0; i < ARRAY_SIZE(rpc_methods); i++)
		if (strcmp(rpc_methods[i].name, json_string_value(method)) == 0)
			fn = rpc_methods[i].fn;
	if (!fn) {
		char msg[400];

		snprintf(msg, sizeof(msg), "unknown method '%.64s' (methods: EnumerateClasses, GetClass, "
			 "EnumerateInstances, GetInstance, ExecQuery, Associators, InvokeMethod, Subscribe, "
			 "Unsubscribe, AttachConsole, AttachGuestChannel)", json_string_value(method));
		resp = id ? ns_rpc_error(id, NS_ERR_METHOD_NOT_FOUND, msg) : NULL;
		json_decref(req);
		return resp;
	}
	if (!params) {
		params = json_object();
		json_object_set_new(req, "params", params);
	}
	result = fn(ns, client, params, &e);
	if (!result && !e.code)
		ns_fail(&e, NS_ERR_INTERNAL, "out of memory");
	if (!id) {
		/* A notification: no reply, even for errors (JSON-RPC 2.0). */
		json_decref(result);
		json_decref(req);
		return NULL;
	}
	if (result)
		resp = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
	else
		resp = ns_rpc_error(id, e.code, e.message);
	json_decref(req);
	return resp;
}
