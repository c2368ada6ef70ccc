// SPDX-License-Identifier: GPL-2.0-only
/* The worker's side of the vsock connector (worker/vsock_host.c, lib/ctlproto.h) against a fake vmmsd. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/ctlproto.h"
#include "worker/vsock_host.h"

/* What the fake vmmsd does with the next request. */
enum fake_mode {
	FAKE_CONNECT,      /* a stale reply first (wrong token, with an fd), then the right one with an fd */
	FAKE_REFUSE,       /* status -ECONNREFUSED, no fd */
	FAKE_GARBAGE,      /* a short datagram and a wrong magic, then the right reply */
	FAKE_CLOSE,        /* close the connector without answering */
	FAKE_SILENT,       /* read the request, never answer */
};

struct fake {
	int fd;
	enum fake_mode mode;
	struct ctl_vsock_req got;
	int stale_peer;    /* our end of the stale reply's socketpair: sees EOF once the worker closed it */
	int good_peer;     /* our end of the connected socket handed over */
};

static void send_reply(int fd, uint64_t token, int32_t status, int pass)
{
	struct ctl_vsock_reply rep = { .magic = CTL_VSOCK_MAGIC, .status = status, .token = token };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (pass >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass, sizeof(int));
	}
	assert_int_equal(sendmsg(fd, &mh, 0), sizeof(rep));
}

static void *fake_vmmsd(void *arg)
{
	struct fake *f = arg;
	int sp[2];

	assert_int_equal(recv(f->fd, &f->got, sizeof(f->got), 0), sizeof(f->got));
	switch (f->mode) {
	case FAKE_CONNECT:
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		send_reply(f->fd, f->got.token - 1, 0, sp[1]);
		close(sp[1]);
		f->stale_peer = sp[0];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		send_reply(f->fd, f->got.token, 0, sp[1]);
		close(sp[1]);
		f->good_peer = sp[0];
		break;
	case FAKE_REFUSE:
		send_reply(f->fd, f->got.token, -ECONNREFUSED, -1);
		break;
	case FAKE_GARBAGE: {
		struct ctl_vsock_reply bad = { .magic = 0x12345678, .status = 0, .token = f->got.token };

		assert_int_equal(send(f->fd, "x", 1, 0), 1);
		assert_int_equal(send(f->fd, &bad, sizeof(bad), 0), sizeof(bad));
		send_reply(f->fd, f->got.token, -EHOSTUNREACH, -1);
		break;
	}
	case FAKE_CLOSE:
		close(f->fd);
		f->fd = -1;
		break;
	case FAKE_SILENT:
		break;
	}
	return NULL;
}

struct rig {
	struct vsock_host *h;
	struct fake f;
	pthread_t t;
};

static void rig_start(struct rig *r, enum fake_mode mode)
{
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(vsock_host_adopt(-1, NULL, &r->h), 0);
	assert_int_equal(vsock_host_set_connector(r->h, sp[1]), 0);
	r->f = (struct fake){ .fd = sp[0], .mode = mode, .stale_peer = -1, .good_peer = -1 };
	assert_int_equal(pthread_create(&r->t, NULL, fake_vmmsd, &r->f), 0);
}

static void rig_end(struct rig *r)
{
	pthread_join(r->t, NULL);
	vsock_host_close(r->h);
	if (r->f.fd >= 0)
		close(r->f.fd);
	if (r->f.stale_peer >= 0)
		close(r->f.stale_peer);
	if (r->f.good_peer >= 0)
		close(r->f.good_peer);
}

static void test_connected_fd_arrives_and_stale_reply_is_dropped(void **state)
{
	struct rig r;
	char c = 0;
	int fd;

	rig_start(&r, FAKE_CONNECT);
	fd = vsock_host_ops.connect(r.h, 6000);
	pthread_join(r.t, NULL);
	assert_true(fd >= 0);
	assert_int_equal(r.f.got.magic, CTL_VSOCK_MAGIC);
	assert_int_equal(r.f.got.port, 6000);
	/* The fd is the one of the matching reply: what we write arrives at good_peer. */
	assert_int_equal(write(fd, "g", 1), 1);
	assert_int_equal(read(r.f.good_peer, &c, 1), 1);
	assert_int_equal(c, 'g');
	/* The stale reply's descriptor was closed, not leaked. */
	assert_int_equal(read(r.f.stale_peer, &c, 1), 0);
	close(fd);
	vsock_host_close(r.h);
	close(r.f.fd);
	close(r.f.stale_peer);
	close(r.f.good_peer);
}

static void test_refusal_is_passed_on(void **state)
{
	struct rig r;

	rig_start(&r, FAKE_REFUSE);
	assert_int_equal(vsock_host_ops.connect(r.h, 7), -ECONNREFUSED);
	rig_end(&r);
}

static void test_garbage_replies_are_skipped(void **state)
{
	struct rig r;

	rig_start(&r, FAKE_GARBAGE);
	assert_int_equal(vsock_host_ops.connect(r.h, 8), -EHOSTUNREACH);
	rig_end(&r);
}

static void test_vmmsd_gone_refuses(void **state)
{
	struct rig r;

	rig_start(&r, FAKE_CLOSE);
	assert_int_equal(vsock_host_ops.connect(r.h, 9), -ECONNREFUSED);
	/* Once the peer is gone, later connects fail at once as well. */
	assert_int_equal(vsock_host_ops.connect(r.h, 10), -ECONNREFUSED);
	rig_end(&r);
}

/* A vmmsd that does not answer holds the io thread for CTL_VSOCK_TIMEOUT_MS at most. */
static void test_silent_vmmsd_times_out(void **state)
{
	struct timespec a, b;
	struct rig r;
	long ms;

	rig_start(&r, FAKE_SILENT);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(vsock_host_ops.connect(r.h, 11), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= CTL_VSOCK_TIMEOUT_MS - 100 && ms < CTL_VSOCK_TIMEOUT_MS + 1500);
	rig_end(&r);
}

static void test_tokens_differ_between_requests(void **state)
{
	struct rig r;
	uint64_t first;

	rig_start(&r, FAKE_REFUSE);
	assert_int_equal(vsock_host_ops.connect(r.h, 1), -ECONNREFUSED);
	pthread_join(r.t, NULL);
	first = r.f.got.token;
	r.f.mode = FAKE_REFUSE;
	assert_int_equal(pthread_create(&r.t, NULL, fake_vmmsd, &r.f), 0);
	assert_int_equal(vsock_host_ops.connect(r.h, 2), -ECONNREFUSED);
	rig_end(&r);
	assert_int_not_equal(r.f.got.token, first);
	assert_int_equal(r.f.got.port, 2);
}

static void test_no_connector_no_path_refuses(void **state)
{
	struct vsock_host *h;

	assert_int_equal(vsock_host_adopt(-1, NULL, &h), 0);
	assert_int_equal(vsock_host_ops.connect(h, 6000), -ECONNREFUSED);
	vsock_host_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connected_fd_arrives_and_stale_reply_is_dropped),
		cmocka_unit_test(test_refusal_is_passed_on),
		cmocka_unit_test(test_garbage_replies_are_skipped),
		cmocka_unit_test(test_vmmsd_gone_refuses),
		cmocka_unit_test(test_silent_vmmsd_times_out),
		cmocka_unit_test(test_tokens_differ_between_requests),
		cmocka_unit_test(test_no_connector_no_path_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
