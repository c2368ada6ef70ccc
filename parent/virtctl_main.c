// SPDX-License-Identifier: GPL-2.0-only
/* virtctl: command-line client of the vmmsd management namespace. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "lib/guestproto.h"
#include "lib/jsonframe.h"
#include "lib/util.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_NOTFOUND = 3, EXIT_CONNECT = 4 };

#define DEFAULT_SOCKET "/run/vmms/vmms.sock"
#define CS "Msvm_ComputerSystem"
#define VSMS "Msvm_VirtualSystemManagementService"

struct ctl {
	const char *socket;
	bool json;
	int fd;
	struct jsonline in;
	int next_id;
};

struct cmd {
	const char *name;
	const char *args;
	const char *help;
	int min_args, max_args;   /* max -1: any */
	int (*fn)(struct ctl *c, int argc, char **argv);
};

static int ctl_connect(struct ctl *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(c->socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "virtctl: socket path too long: %s\n", c->socket);
		return -EXIT_CONNECT;
	}
	strcpy(sa.sun_path, c->socket);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "virtctl: cannot connect to %s: %s (is vmmsd running? --socket or VMMS_SOCKET choose another)\n",
			c->socket, strerror(errno));
		return -EXIT_CONNECT;
	}
	jsonline_init(&c->in, 64u << 20);
	return 0;
}

/* Read the next message line from the daemon; NULL at end of stream. */
static json_t *ctl_read(struct ctl *c)
{
	for (;;) {
		char *line;
		size_t len;
		int r = jsonline_next(&c->in, &line, &len);

		if (r > 0) {
			json_t *j = json_loadb(line, len, 0, NULL);

			if (j)
				return j;
			continue;
		}
		if (r < 0)
			return NULL;
		r = jsonline_read(&c->in, c->fd);
		if (r <= 0 && r != -EAGAIN)
			return NULL;
	}
}

/* exit code for an error object */
static int report_error(const json_t *err)
{
	const char *name = json_string_value(json_object_get(json_object_get(err, "data"), "name"));
	const char *msg = json_string_value(json_object_get(err, "message"));

	fprintf(stderr, "virtctl: %s: %s\n", name ? name : "Error", msg ? msg : "(no message)");
	return name && strcmp(name, "NotFound") == 0 ? EXIT_NOTFOUND : EXIT_FAILED;
}

/* Call method; on success *ret is the result (new reference) and 0 is returned; else an exit code. */
static int ctl_call(struct ctl *c, const char *method, json_t *params, json_t **ret)
{
	json_t *req, *resp;
	char *s;
	int id = ++c->next_id, r;

	if (c->fd < 0 && (r = ctl_connect(c)) < 0) {
		json_decref(params);
		return -r;
	}
	req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", id, "method", method, "params", params);
	s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!s || write_full(c->fd, s, strlen(s)) < 0 || write_full(c->fd, "\n", 1) < 0) {
		free(s);
		fprintf(stderr, "virtctl: lost the connection to %s\n", c->socket);
		return EXIT_CONNECT;
	}
	free(s);
	while ((resp = ctl_read(c))) {
		json_t *rid = json_object_get(resp, "id");

		if (json_is_integer(rid) && json_integer_value(rid) == id) {
			json_t *err = json_object_get(resp, "error");

			if (err) {
				r = report_error(err);
				json_decref(resp);
				return r;
			}
			*ret = json_incref(json_object_get(resp, "result"));
			json_decref(resp);
			return 0;
		}
		if (json_is_null(rid) && json_object_get(resp, "error")) {
			/* The daemon refused the connection (access, limits). */
			r = report_error(json_object_get(resp, "error"));
			json_decref(resp);
			return r;
		}
		json_decref(resp);
	}
	fprintf(stderr, "virtctl: vmmsd closed the connection\n");
	return EXIT_CONNECT;
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (s)
		printf("%s\n", s);
	free(s);
}

static const char *state_text(json_int_t s)
{
	switch (s) {
	case 2: return "running";
	case 3: return "shut off";
	case 4: return "shutting down";
	case 6: return "saved";
	case 9: return "paused";
	case 10: return "starting";
	case 32773: return "saving";
	case 32774: return "stopping";
	case 32776: return "pausing";
	case 32777: return "resuming";
	}
	return "unknown";
}

/* Find the Msvm_ComputerSystem of a VM by name (ElementName) or GUID (Name). */
static int find_vm(struct ctl *c, const char *name, json_t **ret)
{
	json_t *all, *v;
	size_t i;
	int r = ctl_call(c, "EnumerateInstances", json_pack("{s:s}", "ClassName", CS), &all);

	if (r)
		return r;
	json_array_foreach(all, i, v) {
		const char *en = json_string_value(json_object_get(v, "ElementName"));
		const char *id = json_string_value(json_object_get(v, "Name"));

		if ((en && strcmp(en, name) == 0) || (id && strcasecmp(id, name) == 0)) {
			*ret = json_incref(v);
			json_decref(all);
			return 0;
		}
	}
	json_decref(all);
	fprintf(stderr, "virtctl: NotFound: no VM named '%s'\n", name);
	return EXIT_NOTFOUND;
}

static int cmd_list(struct ctl *c, int argc, char **argv)
{
	json_t *all, *v;
	size_t i, w = 4;
	int r = ctl_call(c, "EnumerateInstances", json_pack("{s:s}", "ClassName", CS), &all);

	if (r)
		return r;
	if (c->json) {
		print_json(all);
		json_decref(all);
		return 0;
	}
	json_array_foreach(all, i, v) {
		const char *n = json_string_value(json_object_get(v, "ElementName"));

		if (n && strlen(n) > w)
			w = strlen(n);
	}
	printf(" %-6s %-*s   %s\n", "Id", (int)w, "Name", "State");
	for (size_t k = 0; k < w + 20; k++)
		putchar('-');
	putchar('\n');
	json_array_foreach(all, i, v) {
		json_t *pid = json_object_get(v, "ProcessID");
		char id[24] = "-";

		if (json_is_integer(pid))
			snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT, json_integer_value(pid));
		printf(" %-6s %-*s   %s\n", id, (int)w, json_string_value(json_object_get(v, "ElementName")),
		       state_text(json_integer_value(json_object_get(v, "EnabledState"))));
	}
	json_decref(all);
	return 0;
}

static int invoke(struct ctl *c, const char *path, const char *method, json_t *params, json_t **ret)
{
	return ctl_call(c, "InvokeMethod", json_pack("{s:s, s:s, s:o}", "ObjectPath", path, "MethodName", method,
						     "Parameters", params), ret);
}

static int cmd_define(struct ctl *c, int argc, char **argv)
{
	void *buf;
	size_t len;
	json_t *res, *xml;
	int r = read_file_max(argv[0], 1u << 20, &buf, &len);

	if (r < 0) {
		fprintf(stderr, "virtctl: %s: %s\n", argv[0], r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
		return r == -ENOENT ? EXIT_NOTFOUND : EXIT_FAILED;
	}
	xml = json_stringn(buf, len);
	free(buf);
	if (!xml) {
		fprintf(stderr, "virtctl: %s: not UTF-8 text\n", argv[0]);
		return EXIT_FAILED;
	}
	r = invoke(c, VSMS, "DefineSystem", json_pack("{s:o}", "SystemDefinition", xml), &res);
	if (r)
		return r;
	if (c->json)
		print_json(res);
	else
		printf("Defined %s\n", json_string_value(json_object_get(res, "ResultingSystem")));
	json_decref(res);
	return 0;
}

static int cmd_undefine(struct ctl *c, int argc, char **argv)
{
	json_t *vm, *res;
	int r = find_vm(c, argv[0], &vm);

	if (r)
		return r;
	r = invoke(c, VSMS, "DestroySystem", json_pack("{s:O}", "AffectedSystem", json_object_get(vm, "__PATH")), &res);
	json_decref(vm);
	if (r)
		return r;
	if (!c->json)
		printf("Domain '%s' has been undefined\n", argv[0]);
	else
		print_json(res);
	json_decref(res);
	return 0;
}

/* A method that answered 4096 runs as a Msvm_ConcreteJob: poll it until it ends (JobState 7
 * Completed or 10 Exception), at most timeout_s seconds. 0, or EXIT_FAILED with the job's
 * ErrorDescription printed. */
#define JOB_STATE_COMPLETED 7
#define JOB_STATE_EXCEPTION 10
static int job_wait(struct ctl *c, const char *what, json_t *res, unsigned timeout_s)
{
	json_t *job_path = json_object_get(res, "Job");
	int rv = (int)json_integer_value(json_object_get(res, "ReturnValue"));

	if (rv != 4096 || !json_is_string(job_path))
		return 0;
	for (unsigned i = 0; i < timeout_s * 10; i++) {
		json_t *job;
		int state, r;

		r = ctl_call(c, "GetInstance", json_pack("{s:O}", "ObjectPath", job_path), &job);
		if (r)
			return r;
		state = (int)json_integer_value(json_object_get(job, "JobState"));
		if (state == JOB_STATE_COMPLETED) {
			json_decref(job);
			return 0;
		}
		if (state == JOB_STATE_EXCEPTION) {
			fprintf(stderr, "virtctl: %s failed: %s (error %lld)\n", what,
				json_string_value(json_object_get(job, "ErrorDescription")) ?: "no description",
				(long long)json_integer_value(json_object_get(job, "ErrorCode")));
			json_decref(job);
			return EXIT_FAILED;
		}
		json_decref(job);
		usleep(100 * 1000);
	}
	fprintf(stderr, "virtctl: %s: still running after %u s; see %s\n", what, timeout_s,
		json_string_value(job_path));
	return EXIT_FAILED;
}

static int state_change(struct ctl *c, const char *name, int state, const char *done)
{
	json_t *vm, *res;
	char what[128];
	int r = find_vm(c, name, &vm);

	if (r)
		return r;
	r = invoke(c, json_string_value(json_object_get(vm, "__PATH")), "RequestStateChange",
		   json_pack("{s:i}", "RequestedState", state), &res);
	json_decref(vm);
	if (r)
		return r;
	snprintf(what, sizeof(what), "%s %s", done, name);
	r = job_wait(c, what, res, 60);
	if (r) {
		json_decref(res);
		return r;
	}
	if (c->json)
		print_json(res);
	else
		printf("Domain '%s' %s\n", name, done);
	json_decref(res);
	return 0;
}

static int cmd_start(struct ctl *c, int argc, char **argv) { return state_change(c, argv[0], 2, "started"); }
static int cmd_stop(struct ctl *c, int argc, char **argv) { return state_change(c, argv[0], 3, "turned off"); }
static int cmd_reset(struct ctl *c, int argc, char **argv) { return state_change(c, argv[0], 11, "was reset"); }
static int cmd_pause(struct ctl *c, int argc, char **argv) { return state_change(c, argv[0], 9, "paused"); }
static int cmd_resume(struct ctl *c, int argc, char **argv) { return state_change(c, argv[0], 2, "resumed"); }

static int cmd_info(struct ctl *c, int argc, char **argv)
{
	json_t *vm, *rel, *v, *out;
	size_t i;
	int r = find_vm(c, argv[0], &vm);

	if (r)
		return r;
	r = ctl_call(c, "Associators", json_pack("{s:O}", "ObjectPath", json_object_get(vm, "__PATH")), &rel);
	if (r) {
		json_decref(vm);
		return r;
	}
	out = json_deep_copy(vm);
	json_array_foreach(rel, i, v) {
		const char *cls = json_string_value(json_object_get(v, "__CLASS"));
		json_t *vss, *s2;
		size_t k;

		if (!cls || strcmp(cls, "Msvm_VirtualSystemSettingData") != 0)
			continue;
		if (ctl_call(c, "Associators", json_pack("{s:O}", "ObjectPath", json_object_get(v, "__PATH")), &vss) == 0) {
			json_array_foreach(vss, k, s2) {
				const char *sc = json_string_value(json_object_get(s2, "__CLASS"));

				if (sc && strcmp(sc, "Msvm_ProcessorSettingData") == 0)
					json_object_set(out, "CPUs", json_object_get(s2, "VirtualQuantity"));
				else if (sc && strcmp(sc, "Msvm_MemorySettingData") == 0)
					json_object_set(out, "MemoryMiB", json_object_get(s2, "VirtualQuantity"));
			}
			json_decref(vss);
		}
	}
	json_decref(rel);
	json_decref(vm);
	if (c->json) {
		print_json(out);
	} else {
		const char *k;
		json_t *val;

		json_object_foreach(out, k, val) {
			char *s;

			if (k[0] == '_')
				continue;
			s = json_is_string(val) ? strdup(json_string_value(val)) : json_dumps(val, JSON_ENCODE_ANY);
			if (json_is_integer(val) && strcmp(k, "EnabledState") == 0)
				printf("%-24s %s (%s)\n", k, s, state_text(json_integer_value(val)));
			else
				printf("%-24s %s\n", k, s ? s : "?");
			free(s);
		}
	}
	json_decref(out);
	return 0;
}

static void print_table(const json_t *rows)
{
	const json_t *v;
	size_t i;

	json_array_foreach(rows, i, v) {
		const char *k;
		json_t *val;

		if (i)
			putchar('\n');
		printf("%s\n", json_string_value(json_object_get(v, "__PATH")) ?: "?");
		json_object_foreach((json_t *)v, k, val) {
			char *s;

			if (k[0] == '_')
				continue;
			s = json_is_string(val) ? strdup(json_string_value(val)) : json_dumps(val, JSON_ENCODE_ANY);
			printf("  %-28s %s\n", k, s ? s : "?");
			free(s);
		}
	}
}

static int cmd_query(struct ctl *c, int argc, char **argv)
{
	json_t *res;
	int r = ctl_call(c, "ExecQuery", json_pack("{s:s}", "Query", argv[0]), &res);

	if (r)
		return r;
	if (c->json)
		print_json(res);
	else
		print_table(res);
	json_decref(res);
	return 0;
}

static int cmd_watch(struct ctl *c, int argc, char **argv)
{
	static const char *const evs[] = { "__InstanceCreationEvent", "__InstanceModificationEvent",
					   "__InstanceDeletionEvent" };
	json_t *res, *msg;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(evs); i++) {
		char q[256];

		snprintf(q, sizeof(q), "SELECT * FROM %s WHERE TargetInstance ISA '%s'", evs[i], argc ? argv[0] : CS);
		r = ctl_call(c, "Subscribe", json_pack("{s:s}", "Query", q), &res);
		if (r)
			return r;
		json_decref(res);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((msg = ctl_read(c))) {
		json_t *ev = json_object_get(json_object_get(msg, "params"), "Event");
		json_t *t = json_object_get(ev, "TargetInstance");

		if (!ev) {
			json_decref(msg);
			continue;
		}
		if (c->json) {
			char *s = json_dumps(ev, JSON_COMPACT);

			printf("%s\n", s ? s : "");
			free(s);
		} else {
			const char *cls = json_string_value(json_object_get(ev, "__CLASS"));
			json_t *st = json_object_get(t, "EnabledState");

			printf("%s %s %s%s%s\n", cls ? cls + 10 : "?",
			       json_string_value(json_object_get(t, "ElementName")) ?: json_string_value(json_object_get(t, "__PATH")) ?: "?",
			       st ? "state=" : "", st ? state_text(json_integer_value(st)) : "", "");
		}
		json_decref(msg);
	}
	fprintf(stderr, "virtctl: vmmsd closed the connection\n");
	return EXIT_CONNECT;
}

/* key=value: integers, true/false and JSON ([..], {..}, "..") are typed; the rest are strings. */
static json_t *param_value(const char *v)
{
	json_t *j;
	char *end;
	long long n;

	if (*v == '[' || *v == '{' || *v == '"') {
		j = json_loads(v, JSON_DECODE_ANY, NULL);
		if (j)
			return j;
	}
	if (strcmp(v, "true") == 0)
		return json_true();
	if (strcmp(v, "false") == 0)
		return json_false();
	if (*v) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (!*end && !errno)
			return json_integer(n);
	}
	return json_string(v);
}

static int cmd_invoke(struct ctl *c, int argc, char **argv)
{
	json_t *params = json_object(), *res;
	int r;

	for (int i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		json_t *v;

		if (!eq || eq == argv[i]) {
			fprintf(stderr, "virtctl invoke: '%s' is not key=value\n", argv[i]);
			json_decref(params);
			return EXIT_USAGE;
		}
		*eq = '\0';
		if (eq[1] == '@') {
			void *buf;
			size_t len;

			if (read_file_max(eq + 2, 1u << 20, &buf, &len) < 0) {
				fprintf(stderr, "virtctl invoke: cannot read %s\n", eq + 2);
				json_decref(params);
				return EXIT_FAILED;
			}
			v = json_stringn(buf, len);
			free(buf);
		} else {
			v = param_value(eq + 1);
		}
		json_object_set_new(params, argv[i], v);
	}
	r = invoke(c, argv[0], argv[1], params, &res);
	if (r)
		return r;
	print_json(res);
	json_decref(res);
	return 0;
}

static int cmd_classes(struct ctl *c, int argc, char **argv)
{
	json_t *res, *v;
	size_t i;
	int r;

	if (argc) {
		r = ctl_call(c, "GetClass", json_pack("{s:s}", "ClassName", argv[0]), &res);
		if (r)
			return r;
		if (c->json) {
			print_json(res);
		} else {
			json_t *p;
			size_t k;

			printf("%s : %s\n  %s\n\nProperties:\n", json_string_value(json_object_get(res, "Name")),
			       json_string_value(json_object_get(res, "Superclass")) ?: "",
			       json_string_value(json_object_get(res, "Description")));
			json_array_foreach(json_object_get(res, "Properties"), k, p)
				printf("  %-26s %-9s %s\n", json_string_value(json_object_get(p, "Name")),
				       json_string_value(json_object_get(p, "Type")),
				       json_string_value(json_object_get(p, "Description")));
			if (json_array_size(json_object_get(res, "Methods")))
				printf("\nMethods:\n");
			json_array_foreach(json_object_get(res, "Methods"), k, p)
				printf("  %-26s %s\n", json_string_value(json_object_get(p, "Name")),
				       json_string_value(json_object_get(p, "Description")));
		}
		json_decref(res);
		return 0;
	}
	r = ctl_call(c, "EnumerateClasses", json_object(), &res);
	if (r)
		return r;
	if (c->json)
		print_json(res);
	else
		json_array_foreach(res, i, v)
			printf("%-40s %s\n", json_string_value(json_object_get(v, "Name")),
			       json_string_value(json_object_get(v, "Description")));
	json_decref(res);
	return 0;
}

/* ---- console ----------------------------------------------------------------------------- */

#define CONSOLE_ESCAPE 0x1d   /* ^] as in virsh console and telnet */

static struct termios console_saved_tio;
static bool console_tio_saved;

static void console_restore_tty(void)
{
	if (console_tio_saved)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &console_saved_tio);
	console_tio_saved = false;
}

static void console_on_signal(int sig)
{
	console_restore_tty();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int console_raw_tty(void)
{
	struct termios tio;

	if (!isatty(STDIN_FILENO))
		return 0;
	if (tcgetattr(STDIN_FILENO, &console_saved_tio) < 0)
		return -errno;
	tio = console_saved_tio;
	cfmakeraw(&tio);
	console_tio_saved = true;
	signal(SIGTERM, console_on_signal);
	signal(SIGHUP, console_on_signal);
	signal(SIGINT, console_on_signal);
	signal(SIGQUIT, console_on_signal);
	atexit(console_restore_tty);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) < 0) {
		console_tio_saved = false;
		return -errno;
	}
	return 0;
}

/*
 * Relay between the terminal (or pipes) and the raw console stream until ^] is typed or
 * vmmsd ends the stream (the VM stopped, or another writer took over with --force). At the
 * end of stdin the write side is shut down and output keeps coming: `virtctl console vm <
 * script` types the script and shows what follows.
 */
static int console_relay(int sock, bool read_only)
{
	char out[4096];
	size_t out_len = 0, out_off = 0;
	bool in_open = true, detached = false;

	(void)fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = sock, .events = POLLIN | (out_len > out_off ? POLLOUT : 0) },
			{ .fd = in_open && out_len == out_off ? STDIN_FILENO : -1, .events = POLLIN },
		};
		char buf[16384];
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(sock, buf, sizeof(buf), 0);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				return 0;   /* vmmsd closed the stream */
			if (n > 0 && write_full(STDOUT_FILENO, buf, (size_t)n) < 0)
				return -errno;
		}
		if ((p[0].revents & POLLOUT) && out_len > out_off) {
			n = send(sock, out + out_off, out_len - out_off, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return 0;
			if (n > 0)
				out_off += (size_t)n;
			if (out_off == out_len) {
				out_off = out_len = 0;
				if (detached)
					return 1;
				if (!in_open)
					(void)shutdown(sock, SHUT_WR);
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			char *esc;

			n = read(STDIN_FILENO, out, sizeof(out));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				in_open = false;
				(void)shutdown(sock, SHUT_WR);
				continue;
			}
			esc = memchr(out, CONSOLE_ESCAPE, (size_t)n);
			if (esc) {
				detached = true;
				n = esc - out;
			}
			out_len = read_only ? 0 : (size_t)n;
			out_off = 0;
			if (detached && out_len == 0)
				return 1;
		}
	}
}

static int cmd_console(struct ctl *c, int argc, char **argv)
{
	const char *name = NULL;
	bool read_only = false, force = false;
	json_t *res;
	int r;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--read-only") == 0 || strcmp(argv[i], "-r") == 0)
			read_only = true;
		else if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
			force = true;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			fprintf(stderr, "usage: virtctl console NAME [--read-only] [--force]\n");
			return EXIT_USAGE;
		}
	}
	if (!name || (read_only && force)) {
		fprintf(stderr, "usage: virtctl console NAME [--read-only] [--force]%s\n",
			read_only && force ? " (--force takes the writer role; it does not go with --read-only)" : "");
		return EXIT_USAGE;
	}
	r = ctl_call(c, "AttachConsole", json_pack("{s:s, s:s, s:b}", "Name", name, "Mode",
						   read_only ? "read" : "write", "Force", force), &res);
	if (r)
		return r;
	json_decref(res);
	fprintf(stderr, "Connected to VM %s%s (escape character is ^])\n", name, read_only ? " read-only" : "");
	/* Console bytes that arrived together with the reply are already buffered. */
	if (c->in.len > c->in.taken && write_full(STDOUT_FILENO, c->in.buf + c->in.taken, c->in.len - c->in.taken) < 0)
		return EXIT_FAILED;
	if ((r = console_raw_tty()) < 0)
		fprintf(stderr, "virtctl: cannot put the terminal in raw mode: %s\n", strerror(-r));
	r = console_relay(c->fd, read_only);
	console_restore_tty();
	if (r < 0) {
		fprintf(stderr, "\nvirtctl: console of VM %s: %s\n", name, strerror(-r));
		return EXIT_FAILED;
	}
	fprintf(stderr, r == 1 ? "\nDetached from VM %s\n" : "\nDisconnected from VM %s (vmmsd closed the console: the VM stopped or another client took the console over)\n", name);
	return EXIT_OK;
}


/* ---- guest services: shutdown, exec, kvp, copy-to ------------------------------------------ */

/* The path of vm's integration component of class cls (by the VM's GUID). */
static int component_path(struct ctl *c, const char *name, const char *cls, char **ret_path)
{
	json_t *vm, *res;
	char q[256];
	int r = find_vm(c, name, &vm);

	if (r)
		return r;
	snprintf(q, sizeof(q), "SELECT * FROM %s WHERE SystemName = '%s'", cls,
		 json_string_value(json_object_get(vm, "Name")) ?: "");
	json_decref(vm);
	r = ctl_call(c, "ExecQuery", json_pack("{s:s}", "Query", q), &res);
	if (r)
		return r;
	if (json_array_size(res) != 1) {
		fprintf(stderr, "virtctl: NotSupported: VM '%s' has no %s (its definition needs <vsock model='virtio'>)\n", name, cls);
		json_decref(res);
		return EXIT_FAILED;
	}
	*ret_path = strdup(json_string_value(json_object_get(json_array_get(res, 0), "__PATH")) ?: "");
	json_decref(res);
	return *ret_path ? 0 : EXIT_FAILED;
}

static bool parse_uint(const char *s, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return false;
	*ret = (unsigned)v;
	return true;
}

static int cmd_shutdown(struct ctl *c, int argc, char **argv)
{
	const char *name = NULL;
	bool force = false;
	unsigned timeout = 0;
	json_t *params, *res;
	char *path;
	int r;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
			force = true;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc && parse_uint(argv[i + 1], 86400, &timeout) && timeout)
			i++;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			fprintf(stderr, "usage: virtctl shutdown NAME [--force] [--timeout S]\n");
			return EXIT_USAGE;
		}
	}
	if (!name) {
		fprintf(stderr, "usage: virtctl shutdown NAME [--force] [--timeout S]\n");
		return EXIT_USAGE;
	}
	r = component_path(c, name, "Msvm_ShutdownComponent", &path);
	if (r)
		return r;
	params = json_pack("{s:b, s:s}", "Force", force, "Reason", "virtctl shutdown");
	if (timeout)
		json_object_set_new(params, "Timeout", json_integer(timeout));
	r = invoke(c, path, "InitiateShutdown", params, &res);
	free(path);
	if (r)
		return r;
	{
		char what[128];

		snprintf(what, sizeof(what), "shut down %s", name);
		r = job_wait(c, what, res, (timeout ? timeout : 60) + 30);
	}
	if (!r && !c->json)
		printf("Domain '%s' is shut down\n", name);
	else if (!r)
		print_json(res);
	json_decref(res);
	return r;
}

/* A guest channel (AttachGuestChannel): frames both ways on c->fd. */
struct gchan {
	struct ctl *c;
	struct guestproto_reader rd;
};

static int gchan_open(struct ctl *c, const char *name, struct gchan *g)
{
	json_t *res, *m = NULL;
	int r = ctl_call(c, "AttachGuestChannel", json_pack("{s:s}", "Name", name), &res);

	if (r)
		return r;
	json_decref(res);
	g->c = c;
	guestproto_reader_init(&g->rd);
	/* Frames that came with the reply are already in the line buffer. */
	if (c->in.len > c->in.taken &&
	    guestproto_reader_feed(&g->rd, c->in.buf + c->in.taken, c->in.len - c->in.taken) < 0)
		return EXIT_FAILED;
	c->in.len = c->in.taken = 0;
	for (;;) {
		int n = guestproto_reader_next(&g->rd, &m);

		if (n < 0) {
			fprintf(stderr, "virtctl: malformed data on the guest channel\n");
			return EXIT_FAILED;
		}
		if (n > 0)
			break;
		n = guestproto_reader_fill(&g->rd, c->fd);
		if (n == 0 || (n < 0 && n != -EAGAIN)) {
			fprintf(stderr, "virtctl: vmmsd closed the guest channel\n");
			return EXIT_FAILED;
		}
	}
	if (!json_is_true(json_object_get(m, "ok"))) {
		fprintf(stderr, "virtctl: VM %s: %s\n", name, json_string_value(json_object_get(m, "error")) ?: "the guest channel failed");
		json_decref(m);
		return EXIT_FAILED;
	}
	json_decref(m);
	return 0;
}

/* Next frame: 1 with *ret, 0 end of stream, <0 error. Blocking. */
static int gchan_next(struct gchan *g, json_t **ret)
{
	for (;;) {
		int n = guestproto_reader_next(&g->rd, ret);

		if (n != 0)
			return n;
		n = guestproto_reader_fill(&g->rd, g->c->fd);
		if (n == 0)
			return 0;
		if (n < 0 && n != -EAGAIN)
			return n;
		if (n == -EAGAIN) {
			struct pollfd p = { .fd = g->c->fd, .events = POLLIN };
			(void)poll(&p, 1, -1);
		}
	}
}

static volatile sig_atomic_t exec_signal;

static void exec_on_signal(int sig)
{
	exec_signal = sig;
}

static int write_out(int fd, const json_t *m)
{
	void *data;
	size_t len;
	int r = guestproto_msg_data(m, &data, &len);

	if (r < 0)
		return r;
	r = write_full(fd, data, len);
	free(data);
	return r;
}

static int exec_usage(void)
{
	fprintf(stderr, "usage: virtctl exec NAME [--timeout S] [--env K=V]... [--cwd DIR] -- CMD [ARGS...]\n");
	return EXIT_USAGE;
}

static int cmd_exec(struct ctl *c, int argc, char **argv)
{
	const char *name = NULL, *cwd = NULL;
	const char **env = calloc((size_t)argc + 1, sizeof(*env));
	unsigned timeout = 0;
	size_t nenv = 0;
	struct gchan g = { 0 };
	json_t *req;
	char *pend = NULL;
	size_t pend_len = 0, pend_off = 0;
	bool in_eof = false;
	int i, r, status = EXIT_FAILED;

	if (!env)
		return EXIT_FAILED;
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc && parse_uint(argv[i + 1], 86400, &timeout))
			i++;
		else if (strcmp(argv[i], "--env") == 0 && i + 1 < argc && strchr(argv[i + 1], '=') && argv[i + 1][0] != '=')
			env[nenv++] = argv[++i];
		else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc)
			cwd = argv[++i];
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			free(env);
			return exec_usage();
		}
	}
	if (!name || i + 1 >= argc) {
		free(env);
		return exec_usage();
	}
	r = gchan_open(c, name, &g);
	if (r) {
		free(env);
		guestproto_reader_free(&g.rd);
		return r;
	}
	req = guestproto_req_exec(1, (const char *const *)argv + i + 1, nenv ? env : NULL, cwd, timeout, true);
	free(env);
	if (!req || guestproto_send(c->fd, req) < 0) {
		json_decref(req);
		fprintf(stderr, "virtctl: cannot send the command to the guest\n");
		guestproto_reader_free(&g.rd);
		return EXIT_FAILED;
	}
	json_decref(req);
	signal(SIGINT, exec_on_signal);
	signal(SIGTERM, exec_on_signal);
	signal(SIGHUP, exec_on_signal);
	signal(SIGPIPE, SIG_IGN);
	(void)fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	for (;;) {
		struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN | (pend ? POLLOUT : 0) },
				       { .fd = STDIN_FILENO, .events = POLLIN } };
		json_t *m;
		int n;

		if (exec_signal) {
			json_t *sreq = guestproto_req_signal(2, 1, exec_signal);

			exec_signal = 0;
			(void)guestproto_send(c->fd, sreq);
			json_decref(sreq);
		}
		/* Stdin is read only when the last chunk is out: the guest sets the pace. */
		n = poll(p, pend || in_eof ? 1 : 2, -1);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pend && (p[0].revents & POLLOUT)) {
			ssize_t w = send(c->fd, pend + pend_off, pend_len - pend_off, MSG_NOSIGNAL);

			if (w < 0 && errno != EAGAIN && errno != EINTR)
				break;
			if (w > 0 && (pend_off += (size_t)w) == pend_len) {
				free(pend);
				pend = NULL;
			}
		}
		if (!pend && !in_eof && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char buf[GUESTPROTO_CHUNK];
			ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
			json_t *d;

			if (got < 0 && errno == EINTR)
				continue;
			in_eof = got <= 0;
			d = guestproto_req_data(1, "stdin", buf, got > 0 ? (size_t)got : 0, in_eof);
			if (!d || guestproto_encode(d, &pend, &pend_len) < 0) {
				json_decref(d);
				break;
			}
			json_decref(d);
			pend_off = 0;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = guestproto_reader_fill(&g.rd, c->fd);
		if (n == 0 && !g.rd.len) {
			fprintf(stderr, "virtctl: the guest channel closed before the command ended\n");
			break;
		}
		if (n < 0 && n != -EAGAIN && n != -ENOBUFS)
			break;
		while ((n = guestproto_reader_next(&g.rd, &m)) > 0) {
			const char *type = json_string_value(json_object_get(m, "type"));
			uint64_t id = 0;

			(void)guestproto_msg_id(m, &id);
			if (type && id == 1 && strcmp(type, "stdout") == 0)
				(void)write_out(STDOUT_FILENO, m);
			else if (type && id == 1 && strcmp(type, "stderr") == 0)
				(void)write_out(STDERR_FILENO, m);
			else if (type && id == 1 && strcmp(type, "reply") == 0) {
				const char *msg = NULL;
				json_t *st = json_object_get(m, "status"), *sig = json_object_get(m, "signal");

				r = guestproto_reply_status(m, &msg);
				if (r < 0) {
					fprintf(stderr, "virtctl: exec in VM %s: %s\n", name, msg ? msg : strerror(-r));
					status = r == -ENOENT ? 127 : 126;
				} else if (json_is_integer(sig) && json_integer_value(sig) > 0) {
					status = 128 + (int)(json_integer_value(sig) & 127);
					if (json_is_true(json_object_get(m, "timed_out")))
						fprintf(stderr, "virtctl: the command timed out after %u s\n", timeout);
				} else {
					status = (int)(json_integer_value(st) & 255);
				}
				json_decref(m);
				goto done;
			}
			json_decref(m);
		}
		if (n < 0) {
			fprintf(stderr, "virtctl: malformed data on the guest channel\n");
			break;
		}
	}
done:
	free(pend);
	guestproto_reader_free(&g.rd);
	return status;
}

static int cmd_copy_to(struct ctl *c, int argc, char **argv)
{
	struct gchan g = { 0 };
	struct stat st;
	json_t *req, *m;
	uint64_t left;
	int fd, r;

	if (argv[2][0] != '/') {
		fprintf(stderr, "virtctl: copy-to: DEST must be an absolute path in the guest\n");
		return EXIT_USAGE;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "virtctl: copy-to: %s: %s\n", argv[1], fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return EXIT_FAILED;
	}
	r = gchan_open(c, argv[0], &g);
	if (r)
		goto out;
	r = EXIT_FAILED;
	req = guestproto_req_file_write(1, argv[2], st.st_mode & 0777, (uint64_t)st.st_size);
	if (!req || guestproto_send(c->fd, req) < 0) {
		json_decref(req);
		goto out;
	}
	json_decref(req);
	left = (uint64_t)st.st_size;
	do {
		char buf[GUESTPROTO_CHUNK];
		ssize_t n = read(fd, buf, (size_t)MIN((uint64_t)sizeof(buf), left));
		json_t *d;

		if (n < 0) {
			fprintf(stderr, "virtctl: copy-to: reading %s: %s\n", argv[1], strerror(errno));
			goto out;
		}
		if (n == 0 && left) {
			fprintf(stderr, "virtctl: copy-to: %s shrank while copying\n", argv[1]);
			goto out;
		}
		left -= (uint64_t)n;
		d = guestproto_req_data(1, "file-data", buf, (size_t)n, left == 0);
		if (!d || guestproto_send(c->fd, d) < 0) {
			json_decref(d);
			fprintf(stderr, "virtctl: copy-to: the guest channel closed\n");
			goto out;
		}
		json_decref(d);
	} while (left);
	while ((r = gchan_next(&g, &m)) > 0) {
		const char *type = json_string_value(json_object_get(m, "type"));
		uint64_t id = 0;

		(void)guestproto_msg_id(m, &id);
		if (type && id == 1 && strcmp(type, "reply") == 0) {
			const char *msg = NULL;
			int e = guestproto_reply_status(m, &msg);

			if (e < 0)
				fprintf(stderr, "virtctl: copy-to %s:%s: %s\n", argv[0], argv[2], msg ? msg : strerror(-e));
			else if (!c->json)
				printf("Copied %s to %s:%s (%lld bytes)\n", argv[1], argv[0], argv[2], (long long)st.st_size);
			json_decref(m);
			r = e < 0 ? EXIT_FAILED : EXIT_OK;
			goto out;
		}
		json_decref(m);
	}
	fprintf(stderr, "virtctl: copy-to: the guest channel closed before the copy finished\n");
	r = EXIT_FAILED;
out:
	close(fd);
	guestproto_reader_free(&g.rd);
	return r;
}

static void print_items(const json_t *arr, const char *src, const char *only)
{
	size_t i;
	json_t *it;

	json_array_foreach(arr, i, it) {
		const char *k = json_string_value(json_object_get(it, "Name"));
		const char *v = json_string_value(json_object_get(it, "Data"));

		if (!k || !v)
			continue;
		if (only)
			printf("%s\n", v);
		else
			printf("%-6s %s=%s\n", src, k, v);
	}
}

static int cmd_kvp(struct ctl *c, int argc, char **argv)
{
	char *path = NULL;
	json_t *inst, *res;
	int r;

	if (argc == 2 && strchr(argv[1], '=')) {
		/* KEY=VALUE: a host item, added or replaced. */
		char *eq = strchr(argv[1], '='), key[128];
		json_t *vm, *items;

		if ((size_t)(eq - argv[1]) >= sizeof(key)) {
			fprintf(stderr, "virtctl: kvp: key too long\n");
			return EXIT_USAGE;
		}
		memcpy(key, argv[1], (size_t)(eq - argv[1]));
		key[eq - argv[1]] = '\0';
		r = find_vm(c, argv[0], &vm);
		if (r)
			return r;
		items = json_pack("[{s:s, s:s}]", "Name", key, "Data", eq + 1);
		r = invoke(c, VSMS, "ModifyKvpItems", json_pack("{s:O, s:O}", "TargetSystem", json_object_get(vm, "__PATH"),
								 "DataItems", items), &res);
		if (r == EXIT_NOTFOUND)
			r = invoke(c, VSMS, "AddKvpItems", json_pack("{s:O, s:O}", "TargetSystem", json_object_get(vm, "__PATH"),
								      "DataItems", items), &res);
		json_decref(items);
		json_decref(vm);
		if (r)
			return r;
		json_decref(res);
		return EXIT_OK;
	}
	r = component_path(c, argv[0], "Msvm_KvpExchangeComponent", &path);
	if (r)
		return r;
	r = ctl_call(c, "GetInstance", json_pack("{s:s}", "ObjectPath", path), &inst);
	free(path);
	if (r)
		return r;
	if (c->json) {
		print_json(inst);
	} else if (argc == 2) {
		/* KEY: its value, host items first. */
		const char *lists[] = { "HostExchangeItems", "GuestExchangeItems", "GuestIntrinsicExchangeItems" };

		r = EXIT_NOTFOUND;
		for (size_t l = 0; l < ARRAY_SIZE(lists) && r; l++) {
			size_t i;
			json_t *it;

			json_array_foreach(json_object_get(inst, lists[l]), i, it) {
				const char *k = json_string_value(json_object_get(it, "Name"));
				if (k && strcmp(k, argv[1]) == 0 && json_is_string(json_object_get(it, "Data"))) {
					printf("%s\n", json_string_value(json_object_get(it, "Data")));
					r = EXIT_OK;
					break;
				}
			}
		}
		if (r)
			fprintf(stderr, "virtctl: NotFound: VM %s has no key-value item '%s'\n", argv[0], argv[1]);
	} else {
		print_items(json_object_get(inst, "GuestIntrinsicExchangeItems"), "guest", NULL);
		print_items(json_object_get(inst, "GuestExchangeItems"), "guest", NULL);
		print_items(json_object_get(inst, "HostExchangeItems"), "host", NULL);
	}
	json_decref(inst);
	return r;
}

static const struct cmd cmds[] = {
	{ "list", "", "list every defined VM, like virsh list --all", 0, 0, cmd_list },
	{ "define", "FILE", "define a VM from a libvirt domain XML file", 1, 1, cmd_define },
	{ "undefine", "NAME", "delete a VM that is off, with its definition", 1, 1, cmd_undefine },
	{ "start", "NAME", "start a VM (RequestStateChange 2)", 1, 1, cmd_start },
	{ "stop", "NAME", "turn a VM off (RequestStateChange 3)", 1, 1, cmd_stop },
	{ "reset", "NAME", "reset a VM (RequestStateChange 11)", 1, 1, cmd_reset },
	{ "pause", "NAME", "pause a VM (RequestStateChange 9)", 1, 1, cmd_pause },
	{ "resume", "NAME", "resume a paused VM (RequestStateChange 2)", 1, 1, cmd_resume },
	{ "info", "NAME", "show a VM's state and settings", 1, 1, cmd_info },
	{ "query", "'WQL'", "run a WQL query, e.g. \"SELECT * FROM Msvm_ComputerSystem WHERE EnabledState = 2\"", 1, 1, cmd_query },
	{ "watch", "[CLASS]", "print creation, modification and deletion events until interrupted", 0, 1, cmd_watch },
	{ "invoke", "CLASS|PATH METHOD [KEY=VALUE...]", "call any method; VALUE is typed (number, true/false, JSON) or @FILE", 2, -1, cmd_invoke },
	{ "classes", "[CLASS]", "list the classes, or describe one", 0, 1, cmd_classes },
	{ "console", "NAME [--read-only] [--force]", "attach to a VM's serial console; ^] detaches", 1, 3, cmd_console },
	{ "shutdown", "NAME [--force] [--timeout S]", "orderly shutdown through the guest agent (the power button without one); --force turns the VM off after S s (default 60)", 1, 4, cmd_shutdown },
	{ "exec", "NAME [--timeout S] [--env K=V]... [--cwd DIR] -- CMD [ARGS...]", "run a command in the guest with stdin, stdout and stderr streamed; exits with its status (128+N for signal N)", 3, -1, cmd_exec },
	{ "kvp", "NAME [KEY[=VALUE]]", "list the guest's and the host's key-value items, show one, or set a host item", 1, 2, cmd_kvp },
	{ "copy-to", "NAME SRC DEST", "copy the host file SRC to the absolute path DEST in the guest", 3, 3, cmd_copy_to },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: virtctl [--socket PATH] [-o table|json] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %-9s %-34s %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
	fprintf(f, "\n`virtctl COMMAND --help` describes one command. The socket defaults to $VMMS_SOCKET,\n"
		   "then " DEFAULT_SOCKET ".\nexit status: 0 ok, 1 operation failed, 2 usage, 3 not found, 4 cannot connect\n");
}

int main(int argc, char **argv)
{
	struct ctl c = { .fd = -1 };
	const struct cmd *cmd = NULL;
	int i, r;

	c.socket = getenv("VMMS_SOCKET");
	if (!c.socket || !*c.socket)
		c.socket = DEFAULT_SOCKET;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if ((strcmp(argv[i], "--socket") == 0 || strcmp(argv[i], "-s") == 0) && i + 1 < argc) {
			c.socket = argv[++i];
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			c.socket = argv[i] + 9;
		} else if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "json") == 0)
				c.json = true;
			else if (strcmp(argv[i], "table") != 0) {
				fprintf(stderr, "virtctl: -o takes table or json\n");
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "virtctl: unknown option %s\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
		if (strcmp(cmds[k].name, argv[i]) == 0)
			cmd = &cmds[k];
	if (!cmd) {
		fprintf(stderr, "virtctl: unknown command '%s' (virtctl --help lists them)\n", argv[i]);
		return EXIT_USAGE;
	}
	argc -= i + 1;
	argv += i + 1;
	if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
		printf("usage: virtctl %s %s\n  %s\n", cmd->name, cmd->args, cmd->help);
		return EXIT_OK;
	}
	if (argc < cmd->min_args || (cmd->max_args >= 0 && argc > cmd->max_args)) {
		fprintf(stderr, "usage: virtctl %s %s\n", cmd->name, cmd->args);
		return EXIT_USAGE;
	}
	r = cmd->fn(&c, argc, argv);
	if (c.fd >= 0) {
		close(c.fd);
		jsonline_free(&c.in);
	}
	return r;
}
