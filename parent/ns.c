// SPDX-License-Identifier: GPL-2.0-only
/* Namespace core: errors, object paths, class lookup, enumeration, events and jobs. */
#include "parent/ns.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

static const struct {
	const char *name;
	int number;
} errcodes[] = {
	[NS_ERR_PARSE] = { "ParseError", -32700 },
	[NS_ERR_INVALID_REQUEST] = { "InvalidRequest", -32600 },
	[NS_ERR_METHOD_NOT_FOUND] = { "MethodNotFound", -32601 },
	[NS_ERR_INVALID_PARAMS] = { "InvalidParams", -32602 },
	[NS_ERR_INTERNAL] = { "InternalError", -32603 },
	[NS_ERR_NOT_FOUND] = { "NotFound", -32001 },
	[NS_ERR_INVALID_PARAMETER] = { "InvalidParameter", -32002 },
	[NS_ERR_INVALID_STATE] = { "InvalidStateTransition", -32003 },
	[NS_ERR_ALREADY_EXISTS] = { "AlreadyExists", -32004 },
	[NS_ERR_ACCESS_DENIED] = { "AccessDenied", -32005 },
	[NS_ERR_NOT_SUPPORTED] = { "NotSupported", -32006 },
	[NS_ERR_INVALID_QUERY] = { "InvalidQuery", -32007 },
	[NS_ERR_INVALID_PATH] = { "InvalidObjectPath", -32008 },
	[NS_ERR_FAILED] = { "Failed", -32009 },
	[NS_ERR_LIMIT] = { "LimitExceeded", -32010 },
};

int ns_fail(struct ns_error *e, enum ns_errcode code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return -1;
}

const char *ns_errcode_name(enum ns_errcode code)
{
	if ((size_t)code >= ARRAY_SIZE(errcodes) || !errcodes[code].name)
		return "InternalError";
	return errcodes[code].name;
}

int ns_errcode_number(enum ns_errcode code)
{
	if ((size_t)code >= ARRAY_SIZE(errcodes) || !errcodes[code].name)
		return -32603;
	return errcodes[code].number;
}

json_t *ns_rpc_error(json_t *id, enum ns_errcode code, const char *message)
{
	return json_pack("{s:s, s:O?, s:{s:i, s:s, s:{s:s}}}", "jsonrpc", "2.0", "id", id, "error",
			 "code", ns_errcode_number(code), "message", message, "data", "name",
			 ns_errcode_name(code));
}

int64_t ns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *ns_datetime(int64_t ms)
{
	char buf[64];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return json_null();
	snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02d.%06d+000", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000) * 1000);
	return json_string(buf);
}

/* ---- object paths ------------------------------------------------------------------------ */

void ns_path_clear(struct ns_path *p)
{
	for (size_t i = 0; i < p->nkeys; i++)
		json_decref(p->keys[i].value);
	p->nkeys = 0;
}

static bool ident_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' || (!first && isdigit((unsigned char)c));
}

/* Client input: parsed strictly, no whitespace, every length bounded. */
int ns_path_parse(const char *text, bool allow_class, struct ns_path *p, struct ns_error *e)
{
	const char *s = text;
	size_t n;

	memset(p, 0, sizeof(*p));
	if (!text || !*text)
		return ns_fail(e, NS_ERR_INVALID_PATH, "empty object path");
	if (strnlen(text, NS_PATH_MAX + 1) > NS_PATH_MAX)
		return ns_fail(e, NS_ERR_INVALID_PATH, "object path longer than %d characters", NS_PATH_MAX);
	for (n = 0; ident_char(s[n], n == 0); n++)
		;
	if (n == 0)
		return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': expected a class name at column 1", text);
	if (n >= sizeof(p->cls))
		return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': class name too long", text);
	memcpy(p->cls, s, n);
	s += n;
	if (*s == '\0') {
		if (allow_class)
			return 0;
		return ns_fail(e, NS_ERR_INVALID_PATH,
			       "object path '%s' names a class, not an instance (write Class.Key=\"value\")", text);
	}
	if (*s != '.')
		return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': expected '.' after the class name at column %zu",
			       text, (size_t)(s - text) + 1);
	s++;
	for (;;) {
		char val[NS_PATH_MAX + 1];
		size_t vn = 0;

		if (p->nkeys >= NS_PATH_MAX_KEYS) {
			ns_path_clear(p);
			return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': more than %d keys", text, NS_PATH_MAX_KEYS);
		}
		for (n = 0; ident_char(s[n], n == 0); n++)
			;
		if (n == 0 || n >= sizeof(p->keys[0].name) || s[n] != '=') {
			ns_path_clear(p);
			return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': expected Key=value at column %zu",
				       text, (size_t)(s - text) + 1);
		}
		memcpy(p->keys[p->nkeys].name, s, n);
		p->keys[p->nkeys].name[n] = '\0';
		s += n + 1;
		if (*s == '"') {
			s++;
			while (*s && *s != '"') {
				if (*s == '\\') {
					s++;
					if (*s != '"' && *s != '\\') {
						ns_path_clear(p);
						return ns_fail(e, NS_ERR_INVALID_PATH,
							       "object path '%s': only \\\" and \\\\ may be escaped (column %zu)",
							       text, (size_t)(s - text) + 1);
					}
				}
				val[vn++] = *s++;
			}
			if (*s != '"') {
				ns_path_clear(p);
				return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': unterminated string", text);
			}
			s++;
			val[vn] = '\0';
			p->keys[p->nkeys].value = json_string(val);
			if (!p->keys[p->nkeys].value) {
				ns_path_clear(p);
				return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': key value is not UTF-8", text);
			}
		} else if (isdigit((unsigned char)*s) || *s == '-') {
			char *end;
			long long v;

			errno = 0;
			v = strtoll(s, &end, 10);
			if (errno || end == s || (*end && *end != ',')) {
				ns_path_clear(p);
				return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': bad number at column %zu",
					       text, (size_t)(s - text) + 1);
			}
			s = end;
			p->keys[p->nkeys].value = json_integer(v);
		} else {
			ns_path_clear(p);
			return ns_fail(e, NS_ERR_INVALID_PATH,
				       "object path '%s': expected a quoted value or a number at column %zu",
				       text, (size_t)(s - text) + 1);
		}
		p->nkeys++;
		if (*s == '\0')
			return 0;
		if (*s != ',') {
			ns_path_clear(p);
			return ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': unexpected '%c' at column %zu",
				       text, *s, (size_t)(s - text) + 1);
		}
		s++;
	}
}

json_t *ns_path_make(const char *cls, const char *key, const char *value)
{
	size_t n = strlen(value), o = 0;
	char *esc = malloc(2 * n + 1), *buf;
	json_t *j;

	if (!esc)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (value[i] == '"' || value[i] == '\\')
			esc[o++] = '\\';
		esc[o++] = value[i];
	}
	esc[o] = '\0';
	if (asprintf(&buf, "%s.%s=\"%s\"", cls, key, esc) < 0) {
		free(esc);
		return NULL;
	}
	free(esc);
	j = json_string(buf);
	free(buf);
	return j;
}

/* ---- classes and instances --------------------------------------------------------------- */

const struct ns_class *ns_class_find(const char *name)
{
	for (size_t i = 0; i < ns_nclasses; i++)
		if (strcasecmp(ns_classes[i]->name, name) == 0)
			return ns_classes[i];
	return NULL;
}

bool ns_isa(const char *cls, const char *base, void *userdata)
{
	/* The chain is walked through the table; bounded by the table size against cycles. */
	for (size_t hop = 0; cls && hop <= ns_nclasses + 1; hop++) {
		const struct ns_class *c;

		if (strcasecmp(cls, base) == 0)
			return true;
		c = ns_class_find(cls);
		cls = c ? c->superclass : NULL;
	}
	return false;
}

json_t *ns_instance_new(const struct ns_class *c, const char *keyval)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "__CLASS", json_string(c->name));
	json_object_set_new(o, "__PATH", ns_path_make(c->name, c->key, keyval));
	json_object_set_new(o, c->key, json_string(keyval));
	return o;
}

json_t *ns_enumerate(struct ns *ns, const char *cls, struct ns_error *e)
{
	json_t *arr = json_array();
	bool any = false;

	if (!arr) {
		ns_fail(e, NS_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < ns_nclasses; i++) {
		const struct ns_class *c = ns_classes[i];

		if (!ns_isa(c->name, cls, NULL))
			continue;
		any = true;
		if (c->enumerate && c->enumerate(ns, NULL, arr) < 0) {
			json_decref(arr);
			ns_fail(e, NS_ERR_INTERNAL, "cannot enumerate %s: out of memory", c->name);
			return NULL;
		}
	}
	if (!any) {
		json_decref(arr);
		ns_fail(e, NS_ERR_NOT_FOUND, "class %s does not exist in %s (see EnumerateClasses)", cls, NS_NAME);
		return NULL;
	}
	return arr;
}

static bool key_matches(const json_t *inst, const char *key, const json_t *want)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)inst, k, v) {
		if (strcasecmp(k, key) != 0)
			continue;
		if (json_is_string(v) && json_is_string(want))
			return strcasecmp(json_string_value(v), json_string_value(want)) == 0;
		if (json_is_integer(v) && json_is_integer(want))
			return json_integer_value(v) == json_integer_value(want);
		return false;
	}
	return false;
}

json_t *ns_get_instance(struct ns *ns, const char *path, struct ns_error *e)
{
	struct ns_path p;
	const struct ns_class *c;
	json_t *arr, *v, *found = NULL;
	size_t i;

	if (ns_path_parse(path, false, &p, e) < 0)
		return NULL;
	c = ns_class_find(p.cls);
	if (!c) {
		ns_fail(e, NS_ERR_NOT_FOUND, "class %s does not exist in %s", p.cls, NS_NAME);
		goto out;
	}
	if (p.nkeys != 1 || strcasecmp(p.keys[0].name, c->key) != 0) {
		ns_fail(e, NS_ERR_INVALID_PATH, "object path '%s': %s is identified by its key %s alone (%s.%s=\"...\")",
			path, c->name, c->key, c->name, c->key);
		goto out;
	}
	arr = json_array();
	if (!arr || (c->enumerate && c->enumerate(ns, NULL, arr) < 0)) {
		json_decref(arr);
		ns_fail(e, NS_ERR_INTERNAL, "out of memory");
		goto out;
	}
	json_array_foreach(arr, i, v)
		if (key_matches(v, c->key, p.keys[0].value)) {
			found = json_incref(v);
			break;
		}
	json_decref(arr);
	if (!found)
		ns_fail(e, NS_ERR_NOT_FOUND, "no instance %s", path);
out:
	ns_path_clear(&p);
	return found;
}

struct vm_entry *ns_instance_vm(struct ns *ns, const json_t *inst)
{
	const char *cls = json_string_value(json_object_get(inst, "__CLASS"));
	const char *s;

	if (!cls)
		return NULL;
	if (strcmp(cls, "Msvm_ComputerSystem") == 0 &&
	    (s = json_string_value(json_object_get(inst, "Name"))))
		return registry_find(ns->reg, s);
	if ((s = json_string_value(json_object_get(inst, "VirtualSystemIdentifier"))))
		return registry_find(ns->reg, s);
	if (strcmp(cls, "Msvm_HostComputerSystem") != 0 &&
	    (s = json_string_value(json_object_get(inst, "SystemName"))) && strlen(s) == VM_ID_LEN)
		return registry_find(ns->reg, s);
	if ((s = json_string_value(json_object_get(inst, "InstanceID"))) && strncmp(s, "vmms:", 5) == 0) {
		char id[VM_ID_LEN + 1];

		if (strlen(s) < 5 + VM_ID_LEN)
			return NULL;
		memcpy(id, s + 5, VM_ID_LEN);
		id[VM_ID_LEN] = '\0';
		return registry_find(ns->reg, id);
	}
	return NULL;
}

/* ---- events ------------------------------------------------------------------------------ */

void ns_emit(struct ns *ns, const char *event_class, const json_t *target, const json_t *previous)
{
	json_t *ev;

	if (ns->nsubs == 0 || !ns->notify)
		return;
	ev = json_pack("{s:s, s:O, s:I}", "__CLASS", event_class, "TargetInstance", target,
		       "TIME_CREATED", (json_int_t)ns_now_ms());
	if (!ev)
		return;
	if (previous)
		json_object_set(ev, "PreviousInstance", (json_t *)previous);
	for (size_t i = 0; i < ns->nsubs; i++) {
		struct ns_sub *s = &ns->subs[i];
		json_t *note;

		if (strcmp(wql_class(s->q), event_class) != 0 || !wql_match(s->q, ev, ns_isa, NULL))
			continue;
		note = json_pack("{s:s, s:s, s:{s:I, s:O}}", "jsonrpc", "2.0", "method", "Event",
				 "params", "SubscriptionId", (json_int_t)s->id, "Event", ev);
		if (note) {
			ns->notify(ns->notify_ud, s->client, note);
			json_decref(note);
		}
	}
	json_decref(ev);
}

void ns_vm_state_changed(struct ns *ns, const char *vm_name, int enabled_state, int health,
			 pid_t pid, const char *reason)
{
	struct vm_entry *vm = registry_find(ns->reg, vm_name);
	json_t *prev, *cur;

	if (!vm)
		return;
	prev = ns_cs_instance(ns, vm);
	if (vm->last_state != enabled_state)
		vm->last_change = ns_now_ms();
	vm->last_state = enabled_state;
	vm->health = health;
	vm->pid = pid;
	if (reason)
		snprintf(vm->reason, sizeof(vm->reason), "%s", reason);
	vm->requested_state = 5;
	(void)registry_save_state(ns->reg, vm);
	cur = ns_cs_instance(ns, vm);
	if (cur)
		ns_emit(ns, "__InstanceModificationEvent", cur, prev);
	json_decref(prev);
	json_decref(cur);
}

/* ---- jobs ---------------------------------------------------------------------------------- */

struct ns_job *ns_job_new(struct ns *ns, const char *caption)
{
	struct ns_job *j = NULL;
	uint8_t u[16];

	if (ns->njobs < NS_MAX_JOBS) {
		j = &ns->jobs[ns->njobs++];
	} else {
		/* Reuse the oldest finished job. */
		for (size_t i = 0; i < ns->njobs; i++)
			if (ns->jobs[i].state != 4 && (!j || ns->jobs[i].end < j->end))
				j = &ns->jobs[i];
		if (!j)
			return NULL;
	}
	memset(j, 0, sizeof(*j));
	if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
		memset(u, 0, sizeof(u));
	snprintf(j->id, sizeof(j->id), "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	snprintf(j->caption, sizeof(j->caption), "%s", caption);
	j->state = 4;
	j->start = ns_now_ms();
	return j;
}

void ns_job_finish(struct ns *ns, struct ns_job *job, int error_code, const char *error_desc)
{
	job->state = error_code ? 10 : 7;
	job->percent = 100;
	job->error_code = error_code;
	snprintf(job->error_desc, sizeof(job->error_desc), "%s", error_desc ? error_desc : "");
	job->end = ns_now_ms();
}

json_t *ns_job_path(const struct ns_job *job)
{
	return ns_path_make("Msvm_ConcreteJob", "InstanceID", job->id);
}

/* ---- lifetime ------------------------------------------------------------------------------ */

int ns_init(struct ns *ns, struct registry *reg, struct workers *workers, ns_notify_fn notify,
	    void *userdata)
{
	memset(ns, 0, sizeof(*ns));
	ns->reg = reg;
	ns->workers = workers;
	ns->notify = notify;
	ns->notify_ud = userdata;
	ns->next_sub = 1;
	ns->started = ns_now_ms();
	if (gethostname(ns->hostname, sizeof(ns->hostname) - 1) < 0)
		snprintf(ns->hostname, sizeof(ns->hostname), "localhost");
	return 0;
}

void ns_fini(struct ns *ns)
{
	for (size_t i = 0; i < ns->nsubs; i++)
		wql_free(ns->subs[i].q);
	free(ns->subs);
	ns->subs = NULL;
	ns->nsubs = 0;
}

void ns_client_gone(struct ns *ns, void *client)
{
	size_t o = 0;

	for (size_t i = 0; i < ns->nsubs; i++) {
		if (ns->subs[i].client == client)
			wql_free(ns->subs[i].q);
		else
			ns->subs[o++] = ns->subs[i];
	}
	ns->nsubs = o;
}
