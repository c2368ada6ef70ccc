// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the namespace: object paths, registry persistence, queries and JSON-RPC errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parent/config.h"
#include "parent/ns.h"
#include "parent/registry.h"

/* A stand-in for domxml_parse: reads <name>, <vcpu>, <memory> (MiB) and <uuid> by text search,
 * refuses anything without <domain and a name. Keeps these tests independent of RelaxNG. */
static const char *tag(const char *xml, const char *t, char *out, size_t n)
{
	char open[32];
	const char *s, *e;

	snprintf(open, sizeof(open), "<%s", t);
	for (s = strstr(xml, open); s && s[strlen(open)] != '>' && s[strlen(open)] != ' ';)
		s = strstr(s + 1, open);
	if (!s || !(s = strchr(s, '>')))
		return NULL;
	s++;
	e = strchr(s, '<');
	if (!e || (size_t)(e - s) >= n)
		return NULL;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return out;
}

static int fake_parse(const char *xml, size_t len, const char *schema, struct vm_config **ret, char *err,
		      size_t errlen)
{
	struct vm_config *c;
	char buf[80];

	if (!strstr(xml, "<domain") || !tag(xml, "name", buf, sizeof(buf)) || strlen(buf) > VM_NAME_MAX) {
		snprintf(err, errlen, "not a domain definition");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	strcpy(c->name, buf);
	c->vcpus = tag(xml, "vcpu", buf, sizeof(buf)) ? (unsigned)atoi(buf) : 1;
	c->memory = (tag(xml, "memory", buf, sizeof(buf)) ? strtoull(buf, NULL, 10) : 64) << 20;
	if (tag(xml, "uuid", buf, sizeof(buf))) {
		for (int i = 0, j = 0; i < 16; i++, j += 2) {
			if (buf[j] == '-')
				j++;
			sscanf(buf + j, "%2hhx", &c->uuid[i]);
		}
		c->has_uuid = true;
	}
	*ret = c;
	return 0;
}

static void fake_free(struct vm_config *c)
{
	free(c);
}

static const struct domparser fake = { .parse = fake_parse, .free = fake_free };

struct fixture {
	char dir[64];
	struct registry *reg;
	struct workers *workers;
	struct ns ns;
	json_t *notes;
	int reports;
};

static void count_report(const char *name, const char *problem, void *ud)
{
	((struct fixture *)ud)->reports++;
}

static void collect(void *ud, void *client, json_t *note)
{
	json_array_append(((struct fixture *)ud)->notes, note);
}

static void open_ns(struct fixture *f)
{
	struct worker_config wc = { .runtime_dir = f->dir };

	assert_int_equal(registry_open(f->dir, &fake, count_report, f, &f->reg), 0);
	assert_int_equal(workers_new(&wc, NULL, NULL, &f->workers), 0);
	ns_init(&f->ns, f->reg, f->workers, collect, f);
}

static void close_ns(struct fixture *f)
{
	ns_fini(&f->ns);
	workers_free(f->workers);
	registry_free(f->reg);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/vmms-ns-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->notes = json_array();
	open_ns(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	close_ns(f);
	json_decref(f->notes);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* One call through the dispatcher; returns the response. */
static json_t *rpc(struct fixture *f, const char *line)
{
	json_t *r = ns_rpc_handle(&f->ns, f, line, strlen(line));

	assert_non_null(r);
	return r;
}

static const char *err_name(json_t *resp)
{
	const char *n = json_string_value(json_object_get(json_object_get(json_object_get(resp, "error"), "data"), "name"));

	return n ? n : "(none)";
}

static json_t *call(struct fixture *f, const char *method, json_t *params)
{
	json_t *req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 7, "method", method, "params", params);
	char *s = json_dumps(req, JSON_COMPACT);
	json_t *r = rpc(f, s);

	free(s);
	json_decref(req);
	return r;
}

static json_t *define(struct fixture *f, const char *name, const char *extra)
{
	char xml[512];

	snprintf(xml, sizeof(xml), "<domain type='kvm'><name>%s</name><vcpu>2</vcpu><memory>256</memory>%s</domain>",
		 name, extra);
	return call(f, "InvokeMethod", json_pack("{s:s, s:s, s:{s:s}}", "ObjectPath", "Msvm_VirtualSystemManagementService",
						 "MethodName", "DefineSystem", "Parameters", "SystemDefinition", xml));
}

static void test_paths(void **state)
{
	struct ns_path p;
	struct ns_error e;
	json_t *j;

	assert_int_equal(ns_path_parse("Msvm_ComputerSystem.Name=\"a\\\"b\"", false, &p, &e), 0);
	assert_string_equal(p.cls, "Msvm_ComputerSystem");
	assert_int_equal(p.nkeys, 1);
	assert_string_equal(p.keys[0].name, "Name");
	assert_string_equal(json_string_value(p.keys[0].value), "a\"b");
	ns_path_clear(&p);
	assert_int_equal(ns_path_parse("C.A=1,B=\"x\"", false, &p, &e), 0);
	assert_int_equal(json_integer_value(p.keys[0].value), 1);
	assert_int_equal(p.nkeys, 2);
	ns_path_clear(&p);
	assert_int_equal(ns_path_parse("Msvm_VirtualSystemManagementService", true, &p, &e), 0);
	assert_int_equal(p.nkeys, 0);
	static const char *const bad[] = { "", "C", ".Name=\"x\"", "C.Name=x", "C.Name=\"x", "C.Name=\"x\" ",
					   "C Name=\"x\"", "C.=\"x\"", "C.Name=\"a\\nb\"", "C.Name=\"x\",", "C.Name=12x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.code = 0;
		if (ns_path_parse(bad[i], false, &p, &e) != -1 || e.code != NS_ERR_INVALID_PATH)
			fail_msg("path '%s' should be refused", bad[i]);
	}
	j = ns_path_make("C", "K", "a\"b\\c");
	assert_string_equal(json_string_value(j), "C.K=\"a\\\"b\\\\c\"");
	assert_int_equal(ns_path_parse(json_string_value(j), false, &p, &e), 0);
	assert_string_equal(json_string_value(p.keys[0].value), "a\"b\\c");
	ns_path_clear(&p);
	json_decref(j);
}

static void test_protocol_errors(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *line;
		int code;
	} cases[] = {
		{ "{nope", -32700 },
		{ "[1]", -32600 },
		{ "42", -32600 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1}", -32600 },
		{ "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"GetClass\"}", -32600 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", -32600 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"GetClass\"}", -32600 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Frobnicate\"}", -32601 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"GetClass\",\"params\":[1]}", -32602 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"GetClass\",\"params\":{}}", -32602 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"GetClass\",\"params\":{\"ClassName\":3}}", -32602 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"GetClass\"}", -32700 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"GetClass\",\"params\":{\"ClassName\":\"Nope\"}}", -32001 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *r = rpc(f, cases[i].line);
		json_t *code = json_object_get(json_object_get(r, "error"), "code");

		if (json_integer_value(code) != cases[i].code)
			fail_msg("'%s': code %lld, want %d", cases[i].line, (long long)json_integer_value(code), cases[i].code);
		assert_true(json_is_string(json_object_get(json_object_get(r, "error"), "message")));
		json_decref(r);
	}
	/* A notification (no id) gets no reply, even for an unknown method. */
	assert_null(ns_rpc_handle(&f->ns, f, "{\"jsonrpc\":\"2.0\",\"method\":\"Frobnicate\"}", 39));
}

static void test_classes(void **state)
{
	struct fixture *f = *state;
	json_t *r = call(f, "EnumerateClasses", json_object()), *c;

	assert_int_equal(json_array_size(json_object_get(r, "result")), ns_nclasses);
	json_decref(r);
	r = call(f, "GetClass", json_pack("{s:s}", "ClassName", "msvm_computersystem"));
	c = json_object_get(r, "result");
	assert_string_equal(json_string_value(json_object_get(c, "Name")), "Msvm_ComputerSystem");
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(c, "Methods"), 0), "Name")),
			    "RequestStateChange");
	json_decref(r);
	assert_true(ns_isa("Msvm_ComputerSystem", "CIM_ComputerSystem", NULL));
	assert_false(ns_isa("Msvm_ComputerSystem", "Msvm_HostComputerSystem", NULL));
}

static void test_define_query_associate(void **state)
{
	struct fixture *f = *state;
	json_t *r, *res, *v;
	const char *path;
	size_t i;
	int seen = 0;

	r = call(f, "Subscribe", json_pack("{s:s}", "Query", "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Msvm_ComputerSystem'"));
	assert_non_null(json_object_get(r, "result"));
	json_decref(r);
	r = define(f, "web1", "<uuid>12345678-9abc-def0-1234-56789abcdef0</uuid>");
	res = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(res, "ReturnValue")), 0);
	assert_string_equal(json_string_value(json_object_get(res, "ResultingSystem")),
			    "Msvm_ComputerSystem.Name=\"12345678-9ABC-DEF0-1234-56789ABCDEF0\"");
	json_decref(r);
	assert_int_equal(json_array_size(f->notes), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(
				json_array_get(f->notes, 0), "params"), "Event"), "TargetInstance"), "ElementName")), "web1");

	r = define(f, "web1", "");
	assert_string_equal(err_name(r), "AlreadyExists");
	json_decref(r);
	r = define(f, "other", "<uuid>12345678-9abc-def0-1234-56789abcdef0</uuid>");
	assert_string_equal(err_name(r), "AlreadyExists");
	json_decref(r);
	r = define(f, "bad/name", "");
	assert_string_equal(err_name(r), "InvalidParameter");
	json_decref(r);
	json_decref(define(f, "db1", ""));

	r = call(f, "ExecQuery", json_pack("{s:s}", "Query", "SELECT ElementName FROM Msvm_ComputerSystem WHERE ElementName = 'web1'"));
	res = json_object_get(r, "result");
	assert_int_equal(json_array_size(res), 1);
	assert_null(json_object_get(json_array_get(res, 0), "EnabledState"));
	json_decref(r);
	r = call(f, "ExecQuery", json_pack("{s:s}", "Query", "SELECT * FROM CIM_ComputerSystem"));
	assert_int_equal(json_array_size(json_object_get(r, "result")), 3);   /* two VMs and the host */
	json_decref(r);
	r = call(f, "ExecQuery", json_pack("{s:s}", "Query", "SELECT Bogus FROM Msvm_ComputerSystem"));
	assert_string_equal(err_name(r), "InvalidQuery");
	json_decref(r);
	r = call(f, "ExecQuery", json_pack("{s:s}", "Query", "SELECT * FROM Nope"));
	assert_string_equal(err_name(r), "NotFound");
	json_decref(r);

	path = "Msvm_ComputerSystem.Name=\"12345678-9abc-def0-1234-56789abcdef0\"";
	r = call(f, "GetInstance", json_pack("{s:s}", "ObjectPath", path));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "EnabledState")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "HealthState")), 5);
	json_decref(r);
	r = call(f, "Associators", json_pack("{s:s}", "ObjectPath", path));
	json_array_foreach(json_object_get(r, "result"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "__CLASS")), "Msvm_VirtualSystemSettingData") == 0)
			seen++;
	assert_int_equal(seen, 1);
	json_decref(r);
	r = call(f, "Associators", json_pack("{s:s, s:s}", "ObjectPath",
					     "Msvm_VirtualSystemSettingData.InstanceID=\"vmms:12345678-9ABC-DEF0-1234-56789ABCDEF0\"",
					     "ResultClass", "Msvm_MemorySettingData"));
	res = json_object_get(r, "result");
	assert_int_equal(json_array_size(res), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 0), "VirtualQuantity")), 256);
	json_decref(r);

	/* Invalid transitions and the worker manager's refusal. */
	r = call(f, "InvokeMethod", json_pack("{s:s, s:s, s:{s:i}}", "ObjectPath", path, "MethodName", "RequestStateChange",
					      "Parameters", "RequestedState", 9));
	assert_string_equal(err_name(r), "InvalidStateTransition");
	json_decref(r);
	r = call(f, "InvokeMethod", json_pack("{s:s, s:s, s:{s:i}}", "ObjectPath", path, "MethodName", "RequestStateChange",
					      "Parameters", "RequestedState", 2));
	assert_string_equal(err_name(r), "NotSupported");
	json_decref(r);
	r = call(f, "InvokeMethod", json_pack("{s:s, s:s, s:{s:i}}", "ObjectPath", path, "MethodName", "RequestStateChange",
					      "Parameters", "RequestedState", 77));
	assert_string_equal(err_name(r), "InvalidParameter");
	json_decref(r);
	r = call(f, "InvokeMethod", json_pack("{s:s, s:s, s:{s:i}}", "ObjectPath", path, "MethodName", "RequestStateChange",
					      "Parameters", "Bogus", 2));
	assert_string_equal(err_name(r), "InvalidParameter");
	json_decref(r);

	/* Modify memory (the VM is off), then destroy. */
	r = call(f, "InvokeMethod", json_pack("{s:s, s:s, s:{s:[{s:s, s:s, s:s, s:i}]}}", "ObjectPath",
					      "Msvm_VirtualSystemManagementService", "MethodName", "ModifyResourceSettings",
					      "Parameters", "ResourceSettings", "__CLASS", "Msvm_MemorySettingData", "__PATH",
					      "Msvm_MemorySettingData.InstanceID=\"vmms:12345678-9ABC-DEF0-1234-56789ABCDEF0\\\\Memory\"",
					      "InstanceID", "vmms:12345678-9ABC-DEF0-1234-56789ABCDEF0\\Memory", "VirtualQuantity", 512));
	assert_non_null(json_object_get(r, "result"));
	json_decref(r);
	assert_int_equal(registry_find(f->reg, "web1")->cfg->memory, 512ULL << 20);
	r = call(f, "InvokeMethod", json_pack("{s:s, s:s, s:{s:s}}", "ObjectPath", "Msvm_VirtualSystemManagementService",
					      "MethodName", "DestroySystem", "Parameters", "AffectedSystem", path));
	assert_non_null(json_object_get(r, "result"));
	json_decref(r);
	assert_null(registry_find(f->reg, "web1"));
	assert_non_null(registry_find(f->reg, "db1"));
}

static void test_registry_persistence(void **state)
{
	struct fixture *f = *state;
	char p[256];
	struct vm_entry *vm;
	int fd;

	json_decref(define(f, "keep", "<vcpu>3</vcpu>"));
	json_decref(define(f, "broken", ""));
	snprintf(p, sizeof(p), "%s/vms/keep", f->dir);
	vm = registry_find(f->reg, "keep");
	assert_non_null(vm);
	vm->health = 20;
	snprintf(vm->reason, sizeof(vm->reason), "worker crashed");
	assert_int_equal(registry_save_state(f->reg, vm), 0);
	close_ns(f);

	/* Corrupt one entry's vm.json: it is reported, skipped and left on disk. */
	snprintf(p, sizeof(p), "%s/vms/broken/vm.json", f->dir);
	fd = open(p, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"id\": 5", 8), 8);
	close(fd);
	f->reports = 0;
	open_ns(f);
	assert_int_equal(f->reports, 1);
	assert_int_equal(registry_count(f->reg), 1);
	vm = registry_find(f->reg, "keep");
	assert_non_null(vm);
	assert_int_equal(vm->health, 20);
	assert_string_equal(vm->reason, "worker crashed");
	assert_int_equal(vm->cfg->vcpus, 2);   /* the fake takes the first <vcpu> */
	assert_true(registry_is_broken(f->reg, "broken"));
	assert_int_equal(access(p, F_OK), 0);
	/* The damaged name cannot be reused, so nothing overwrites it. */
	{
		json_t *r = define(f, "broken", "");

		assert_string_equal(err_name(r), "AlreadyExists");
		json_decref(r);
	}
	assert_int_equal(access(p, F_OK), 0);
}

static void test_config(void **state)
{
	struct vmmsd_config c;
	char err[256];

	vmmsd_config_defaults(&c);
	assert_int_equal(vmmsd_config_parse(&c, "t.conf", "# c\n\nstate_dir = /x/y\nmax_clients=7\n", err, sizeof(err)), 0);
	assert_string_equal(c.state_dir, "/x/y");
	assert_int_equal(c.max_clients, 7);
	assert_int_equal(vmmsd_config_parse(&c, "t.conf", "max_clients=1\nfrob = 1\n", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:2: unknown key 'frob'");
	assert_int_equal(vmmsd_config_parse(&c, "t.conf", "max_clients=0\n", err, sizeof(err)), -EINVAL);
	assert_int_equal(vmmsd_config_parse(&c, "t.conf", "state_dir=relative\n", err, sizeof(err)), -EINVAL);
	assert_int_equal(vmmsd_config_parse(&c, "t.conf", "novalue\n", err, sizeof(err)), -EINVAL);
	assert_int_equal(vmmsd_config_parse(&c, "t.conf", "worker_uid_min=10\nworker_uid_max=5\n", err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_config),
		cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_classes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_define_query_associate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry_persistence, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
