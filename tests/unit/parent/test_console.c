// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of parent/console: fan-out, one writer, replay, log rotation, slow readers, VM end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parent/config.h"
#include "parent/console.h"

struct fixture {
	char root[64];
	struct consoles *cs;
	int worker;        /* the worker's end of the serial socketpair */
};

static void pump(struct consoles *cs)
{
	for (int i = 0; i < 8; i++) {
		struct pollfd p = { .fd = consoles_fd(cs), .events = POLLIN };

		if (poll(&p, 1, 20) <= 0)
			break;
		consoles_dispatch(cs);
	}
}

static int setup_with(void **state, size_t max, unsigned keep)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char dir[128];
	int sp[2];

	snprintf(f->root, sizeof(f->root), "/tmp/test-console-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(dir, sizeof(dir), "%s/vms", f->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/vms/vm1", f->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(consoles_new(f->root, max, keep, &f->cs), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(console_vm_open(f->cs, "vm1", sp[0]), 0);
	f->worker = sp[1];
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 1u << 20, 3);
}

static int setup_small_log(void **state)
{
	return setup_with(state, 100, 2);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	consoles_free(f->cs);
	if (f->worker >= 0)
		close(f->worker);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Attach a client; returns the client's end. */
static int attach(struct fixture *f, const char *vm, bool write, bool force, const char *pre, int expect)
{
	static int n;
	char who[32];
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	snprintf(who, sizeof(who), "uid %d pid %d", write ? 7 : 8, ++n);
	assert_int_equal(console_attach(f->cs, vm, sp[0], write, force, pre, pre ? strlen(pre) : 0, NULL, 0, who),
			 expect);
	if (expect < 0) {
		close(sp[1]);
		return -1;
	}
	return sp[1];
}

/* Everything readable on fd now (after pumping), NUL-terminated. */
static size_t drain(struct consoles *cs, int fd, char *buf, size_t cap)
{
	size_t got = 0;

	pump(cs);
	for (;;) {
		ssize_t n = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == cap - 1)
			break;
	}
	buf[got] = '\0';
	return got;
}

static bool is_eof(int fd)
{
	char c;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 100) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

static void read_file(const char *root, const char *name, char *buf, size_t cap)
{
	char path[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/vms/vm1/%s", root, name);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, cap - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

static void test_fanout_and_log(void **state)
{
	struct fixture *f = *state;
	char buf[8192];
	int a = attach(f, "vm1", false, false, "{\"reply\":1}\n", 0);
	int b = attach(f, "vm1", false, false, NULL, 0);

	assert_int_equal(console_nclients(f->cs, "vm1"), 2);
	drain(f->cs, a, buf, sizeof(buf));
	assert_string_equal(buf, "{\"reply\":1}\n");   /* the reply comes first, nothing to replay yet */
	assert_int_equal(write(f->worker, "hello\r\n", 7), 7);
	drain(f->cs, a, buf, sizeof(buf));
	assert_string_equal(buf, "hello\r\n");
	drain(f->cs, b, buf, sizeof(buf));
	assert_string_equal(buf, "hello\r\n");
	read_file(f->root, "console.log", buf, sizeof(buf));
	assert_string_equal(buf, "hello\r\n");
	/* A reader's keystrokes never reach the guest. */
	assert_int_equal(write(a, "rm -rf /\n", 9), 9);
	pump(f->cs);
	assert_int_equal(recv(f->worker, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	close(a);
	close(b);
	pump(f->cs);
	assert_int_equal(console_nclients(f->cs, "vm1"), 0);
}

static void test_one_writer(void **state)
{
	struct fixture *f = *state;
	char buf[512], err[256];
	int w1 = attach(f, "vm1", true, false, NULL, 0), w2;
	char who1[32];
	ssize_t n;

	assert_int_equal(console_attach_check(f->cs, "vm1", true, false, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "uid 7 pid "));   /* names who holds it */
	snprintf(who1, sizeof(who1), "%s", strstr(err, "uid 7 pid "));
	*strchr(who1 + 10, ';') = '\0';
	assert_int_equal(console_attach_check(f->cs, "vm1", false, false, err, sizeof(err)), 0);
	attach(f, "vm1", true, false, NULL, -EBUSY);
	assert_int_equal(write(w1, "ls\n", 3), 3);
	pump(f->cs);
	n = recv(f->worker, buf, sizeof(buf), MSG_DONTWAIT);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "ls\n", 3);
	/* --force: the new writer takes over, the old one is told and disconnected. */
	w2 = attach(f, "vm1", true, true, NULL, 0);
	drain(f->cs, w1, buf, sizeof(buf));
	assert_non_null(strstr(buf, "taken over by uid 7 pid "));
	assert_null(strstr(buf, who1));   /* the message names the new writer, not the old one */
	assert_true(is_eof(w1));
	assert_int_equal(write(w2, "x", 1), 1);
	pump(f->cs);
	assert_int_equal(recv(f->worker, buf, sizeof(buf), MSG_DONTWAIT), 1);
	assert_int_equal(buf[0], 'x');
	/* A writer that half-closes frees the role but keeps receiving output. */
	assert_int_equal(shutdown(w2, SHUT_WR), 0);
	pump(f->cs);
	assert_int_equal(console_attach_check(f->cs, "vm1", true, false, err, sizeof(err)), 0);
	assert_int_equal(write(f->worker, "out", 3), 3);
	drain(f->cs, w2, buf, sizeof(buf));
	assert_string_equal(buf, "out");
	close(w1);
	close(w2);
}

static void test_replay_tail(void **state)
{
	struct fixture *f = *state;
	char big[CONSOLE_REPLAY_BYTES + 1000], buf[CONSOLE_REPLAY_BYTES * 2];
	int r;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(write(f->worker, big, sizeof(big)), (ssize_t)sizeof(big));
	pump(f->cs);
	r = attach(f, "vm1", false, false, "R\n", 0);
	assert_int_equal(drain(f->cs, r, buf, sizeof(buf)), 2 + CONSOLE_REPLAY_BYTES);
	assert_memory_equal(buf, "R\n", 2);
	assert_memory_equal(buf + 2, big + sizeof(big) - CONSOLE_REPLAY_BYTES, CONSOLE_REPLAY_BYTES);
	close(r);
}

/* The replay comes from the log files, so a restarted vmmsd (a new consoles object) replays too. */
static void test_replay_after_restart(void **state)
{
	struct fixture *f = *state;
	struct consoles *again;
	char buf[256];
	int sp[2];

	assert_int_equal(write(f->worker, "before restart\n", 15), 15);
	pump(f->cs);
	assert_int_equal(consoles_new(f->root, 1u << 20, 3, &again), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(console_attach(again, "vm1", sp[0], false, false, NULL, 0, NULL, 0, "t"), 0);
	assert_int_equal(drain(again, sp[1], buf, sizeof(buf)), 15);
	assert_string_equal(buf, "before restart\n");
	close(sp[1]);
	consoles_free(again);
}

static void test_rotation(void **state)
{
	struct fixture *f = *state;
	char chunk[60], buf[256];
	struct stat st;
	char path[256];

	/* 5 chunks of 60 bytes into files of 100 bytes, keep 2: .log, .1 and .2 hold the last 300. */
	for (int i = 0; i < 5; i++) {
		memset(chunk, 'A' + i, sizeof(chunk));
		assert_int_equal(write(f->worker, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
		pump(f->cs);
	}
	/* 300 bytes written: A*60 B*60 C*60 D*60 E*60; files of 100: [A60 B40] [B20 C60 D20] [D40 E60]. */
	read_file(f->root, "console.log", buf, sizeof(buf));
	assert_int_equal(strlen(buf), 100);
	assert_int_equal(strspn(buf, "D"), 40);
	assert_int_equal(strspn(buf + 40, "E"), 60);
	read_file(f->root, "console.log.1", buf, sizeof(buf));
	assert_int_equal(strlen(buf), 100);
	assert_int_equal(strspn(buf, "B"), 20);
	assert_int_equal(strspn(buf + 20, "C"), 60);
	read_file(f->root, "console.log.2", buf, sizeof(buf));
	assert_int_equal(strspn(buf, "A"), 60);
	snprintf(path, sizeof(path), "%s/vms/vm1/console.log.3", f->root);
	assert_int_equal(stat(path, &st), -1);   /* keep 2: nothing beyond .2 */
	/* One more file's worth pushes the oldest out. */
	memset(chunk, 'F', sizeof(chunk));
	assert_int_equal(write(f->worker, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
	pump(f->cs);
	read_file(f->root, "console.log.2", buf, sizeof(buf));
	assert_int_equal(strspn(buf, "B"), 20);
	assert_int_equal(stat(path, &st), -1);
}

/* A reader that never reads is dropped; the VM and the other readers go on. */
static void test_slow_reader_dropped(void **state)
{
	struct fixture *f = *state;
	int slow = attach(f, "vm1", false, false, NULL, 0);
	int fast = attach(f, "vm1", false, false, NULL, 0);
	static char chunk[65536];
	char *buf = malloc(1u << 17);
	size_t total = 0;

	memset(chunk, 'x', sizeof(chunk));
	/* More than the queue limit plus what the socket buffers hold. */
	for (int i = 0; i < 40 && console_nclients(f->cs, "vm1") == 2; i++) {
		ssize_t n = write(f->worker, chunk, sizeof(chunk));

		assert_true(n > 0);   /* the worker is never blocked for long: vmmsd keeps reading */
		pump(f->cs);
		total += drain(f->cs, fast, buf, 1u << 17);
	}
	assert_int_equal(console_nclients(f->cs, "vm1"), 1);
	assert_true(is_eof(slow) || recv(slow, buf, 1, MSG_DONTWAIT) > 0);
	assert_int_equal(write(f->worker, "still here", 10), 10);
	for (int i = 0; i < 50; i++)
		total += drain(f->cs, fast, buf, 1u << 17);
	assert_true(total > CONSOLE_READER_QUEUE_MAX);
	close(slow);
	close(fast);
	free(buf);
}

static void test_vm_close_ends_clients(void **state)
{
	struct fixture *f = *state;
	char buf[64];
	int r = attach(f, "vm1", false, false, NULL, 0);

	assert_true(console_vm_running(f->cs, "vm1"));
	assert_int_equal(write(f->worker, "bye", 3), 3);
	console_vm_close(f->cs, "vm1");   /* the output still in the socket is delivered first */
	assert_false(console_vm_running(f->cs, "vm1"));
	assert_int_equal(drain(f->cs, r, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "bye");
	assert_true(is_eof(r));
	close(r);
	pump(f->cs);
	assert_int_equal(console_nclients(f->cs, "vm1"), 0);
}

/* The worker exits: EOF on the serial socket ends the stream like console_vm_close. */
static void test_worker_eof(void **state)
{
	struct fixture *f = *state;
	char buf[64];
	int r = attach(f, "vm1", true, false, NULL, 0);

	close(f->worker);
	f->worker = -1;
	pump(f->cs);
	assert_false(console_vm_running(f->cs, "vm1"));
	drain(f->cs, r, buf, sizeof(buf));
	assert_true(is_eof(r));
	close(r);
}

/* Attaching before the VM runs: the client waits and gets the output once a worker appears. */
static void test_attach_before_start(void **state)
{
	struct fixture *f = *state;
	char buf[64];
	int r, sp[2];

	console_vm_close(f->cs, "vm1");
	r = attach(f, "vm1", true, false, NULL, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(console_vm_open(f->cs, "vm1", sp[0]), 0);
	assert_int_equal(write(sp[1], "booting", 7), 7);
	drain(f->cs, r, buf, sizeof(buf));
	assert_non_null(strstr(buf, "booting"));
	assert_int_equal(write(r, "k", 1), 1);
	pump(f->cs);
	assert_int_equal(recv(sp[1], buf, sizeof(buf), MSG_DONTWAIT), 1);
	close(sp[1]);
	close(r);
}

/* Input the worker does not take is bounded: the writer is throttled, vmmsd never blocks. */
static void test_input_backpressure(void **state)
{
	struct fixture *f = *state;
	static char chunk[65536];
	int w = attach(f, "vm1", true, false, NULL, 0), sent = 0;
	size_t got = 0;

	memset(chunk, 'k', sizeof(chunk));
	(void)fcntl(w, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 64; i++) {
		ssize_t n = send(w, chunk, sizeof(chunk), MSG_DONTWAIT);

		if (n > 0)
			sent += (int)n;
		pump(f->cs);
	}
	/* The worker does not read: vmmsd stops reading from the writer, so the writer's
	 * sends end up blocked rather than vmmsd buffering without bound. */
	assert_true(sent < 64 * (int)sizeof(chunk));
	(void)fcntl(f->worker, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 400 && got < (size_t)sent; i++) {
		ssize_t n = recv(f->worker, chunk, sizeof(chunk), MSG_DONTWAIT);

		if (n > 0)
			got += (size_t)n;
		pump(f->cs);
	}
	assert_int_equal(got, (size_t)sent);   /* nothing lost, in order (all 'k') */
	close(w);
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int sp[2];

	assert_int_equal(console_attach_check(f->cs, "../etc", false, false, err, sizeof(err)), -EINVAL);
	assert_int_equal(console_attach_check(f->cs, "", false, false, err, sizeof(err)), -EINVAL);
	assert_int_equal(console_vm_open(f->cs, "a/b", -1), -EINVAL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(console_vm_open(f->cs, "..", sp[0]), -EINVAL);   /* fd closed too */
	assert_true(is_eof(sp[1]));
	close(sp[1]);
	assert_int_equal(consoles_new("/tmp", 0, 1, &(struct consoles *){ NULL }), -EINVAL);
	assert_int_equal(consoles_new("/tmp", 100, CONSOLE_LOG_KEEP_MAX + 1, &(struct consoles *){ NULL }), -EINVAL);
	/* A VM whose state directory is gone (undefined) gets no log, and no directory is created. */
	console_vm_forget(f->cs, "vm1");
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(console_vm_open(f->cs, "ghost", sp[0]), 0);
	assert_int_equal(write(sp[1], "x", 1), 1);
	pump(f->cs);
	{
		char path[256];
		struct stat st;

		snprintf(path, sizeof(path), "%s/vms/ghost", f->root);
		assert_int_equal(stat(path, &st), -1);
	}
	close(sp[1]);
}

static void test_config_keys(void **state)
{
	struct vmmsd_config c;
	char err[256];

	vmmsd_config_defaults(&c);
	assert_int_equal(c.console_log_max, CONSOLE_LOG_MAX_DEFAULT);
	assert_int_equal(c.console_log_keep, CONSOLE_LOG_KEEP_DEFAULT);
	assert_int_equal(vmmsd_config_parse(&c, "t", "console_log_max = 4096\nconsole_log_keep = 0\n", err,
					    sizeof(err)), 0);
	assert_int_equal(c.console_log_max, 4096);
	assert_int_equal(c.console_log_keep, 0);
	assert_int_equal(vmmsd_config_parse(&c, "t", "console_log_max = 4095\n", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "t:1: console_log_max"));
	assert_int_equal(vmmsd_config_parse(&c, "t", "\nconsole_log_keep = 101\n", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "t:2: console_log_keep"));
	assert_int_equal(vmmsd_config_parse(&c, "t", "console_log_keep = -1\n", err, sizeof(err)), -EINVAL);
	assert_int_equal(vmmsd_config_parse(&c, "t", "console_log_max = 1G\n", err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fanout_and_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_after_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup_small_log, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reader_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_close_ends_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_before_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
