// SPDX-License-Identifier: GPL-2.0-only
/* Host side of virtio-vsock: the per-VM listening Unix socket and the "<path>_P" connector. */
#include "worker/vsock_host.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/ctlproto.h"
#include "lib/util.h"

#define PORT_SUFFIX_MAX 11 /* "_4294967295" */

static int addr_for(const char *path, uint32_t port, bool with_port, struct sockaddr_un *sa)
{
	int n;

	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	n = with_port ? snprintf(sa->sun_path, sizeof(sa->sun_path), "%s_%u", path, port)
		      : snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
	return n < 0 || (size_t)n >= sizeof(sa->sun_path) ? -ENAMETOOLONG : 0;
}

/* Receives one reply from the connector; *fd gets the attached descriptor or -1. The socket
 * has SO_RCVTIMEO, so this waits at most CTL_VSOCK_TIMEOUT_MS. n bytes or -errno. */
static ssize_t connector_recv(int sock, struct ctl_vsock_reply *rep, int *fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec iov = { .iov_base = rep, .iov_len = sizeof(*rep) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* Keep the first descriptor only; close any others (vmmsd sends at most one). */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	if (n == 0)
		return 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EPROTO;
	}
	return n;
}

/* Asks vmmsd to connect to its "<vsock.sock>_<port>" and waits for the answer. This blocks
 * the io thread (and holds the device lock) for the round trip: vmmsd answers at once (a
 * Unix connect completes or fails immediately), and SO_RCVTIMEO bounds the wait when vmmsd
 * is busy or gone; the guest gets RST then. */
static int connector_connect(struct vsock_host *h, uint32_t port)
{
	struct ctl_vsock_req req = { .magic = CTL_VSOCK_MAGIC, .port = port, .token = ++h->next_token };
	struct ctl_vsock_reply rep;
	int fd;

	if (send(h->connector_fd, &req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(req))
		return errno == EPIPE || errno == ECONNRESET ? -ECONNREFUSED : -EAGAIN;
	/* Late replies to earlier requests that timed out may come first: skip them. */
	for (unsigned tries = 0; tries < CTL_VSOCK_BURST; tries++) {
		ssize_t n = connector_recv(h->connector_fd, &rep, &fd);

		if (n <= 0)
			return n == 0 || n == -ECONNRESET ? -ECONNREFUSED : (n == -EAGAIN ? -ETIMEDOUT : (int)n);
		if (n != (ssize_t)sizeof(rep) || rep.magic != CTL_VSOCK_MAGIC || rep.token != req.token) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (rep.status == 0 && fd >= 0)
			return fd;
		if (fd >= 0)
			close(fd);
		return rep.status < 0 && rep.status > -4096 ? rep.status : -ECONNREFUSED;
	}
	return -EPROTO;
}

/* Guest-initiated connection to host port `port`: a non-blocking connect to "<path>_<port>".
 * A Unix connect either completes or fails at once (EAGAIN when the backlog is full), so
 * this never blocks the io thread. Under vmmsd (no path) the connector does it instead. */
static int host_connect(void *opaque, uint32_t port)
{
	struct vsock_host *h = opaque;
	struct sockaddr_un sa;
	int fd, r;

	if (h && !h->path) {
		pthread_mutex_lock(&h->lock);
		r = h->connector_fd >= 0 ? connector_connect(h, port) : -ECONNREFUSED;
		pthread_mutex_unlock(&h->lock);
		return r;
	}
	if (!h)
		return -ECONNREFUSED;
	r = addr_for(h->path, port, true, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

const struct virtio_vsock_host_ops vsock_host_ops = {
	.connect = host_connect,
};

/* Is there a live listener on sa? (A socket file left by a dead worker refuses.) */
static bool socket_alive(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return true; /* cannot tell: do not remove it */
	alive = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno != ECONNREFUSED;
	close(fd);
	return alive;
}

int vsock_host_open(const char *path, struct vsock_host **ret, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	struct vsock_host *h;
	int fd, r;

	if (strlen(path) + PORT_SUFFIX_MAX >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "vsock socket %s: path too long (at most %zu bytes, to leave room for _PORT)",
			 path, sizeof(sa.sun_path) - 1 - PORT_SUFFIX_MAX);
		return -ENAMETOOLONG;
	}
	(void)addr_for(path, 0, false, &sa);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "vsock socket %s: exists and is not a socket; remove it or choose another path", path);
			return -EEXIST;
		}
		if (socket_alive(&sa)) {
			snprintf(err, errlen, "vsock socket %s: in use by another program (another worker for this VM?)", path);
			return -EADDRINUSE;
		}
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "vsock socket %s: cannot create it: %s", path, strerror(-r));
		return r;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		snprintf(err, errlen, "vsock socket %s: cannot listen on it: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	r = vsock_host_adopt(fd, path, &h);
	if (r < 0) {
		snprintf(err, errlen, "vsock socket %s: %s", path, strerror(-r));
		close(fd);
		(void)unlink(path);
		return r;
	}
	h->bound = true;
	*ret = h;
	return 0;
}

int vsock_host_adopt(int listen_fd, const char *path, struct vsock_host **ret)
{
	struct vsock_host *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->listen_fd = listen_fd;
	h->connector_fd = -1;
	pthread_mutex_init(&h->lock, NULL);
	if (path && !(h->path = strdup(path))) {
		free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

int vsock_host_set_connector(struct vsock_host *h, int fd)
{
	struct timeval tv = { .tv_sec = CTL_VSOCK_TIMEOUT_MS / 1000, .tv_usec = (CTL_VSOCK_TIMEOUT_MS % 1000) * 1000 };

	int old;

	if (fd < 0)
		return -EBADF;
	/* The timeout is set before the io thread can see fd. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	/* The io thread holds the lock for a whole request/reply; on a dead connector (the old
	 * vmmsd is gone) that ends at once with EOF/EPIPE, so this waits little. The old
	 * descriptor is closed only once nothing can use it. */
	pthread_mutex_lock(&h->lock);
	old = h->connector_fd;
	h->connector_fd = fd;
	pthread_mutex_unlock(&h->lock);
	if (old >= 0)
		close(old);
	return 0;
}

void vsock_host_close(struct vsock_host *h)
{
	if (!h)
		return;
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->connector_fd >= 0)
		close(h->connector_fd);
	if (h->bound && h->path)
		(void)unlink(h->path);
	pthread_mutex_destroy(&h->lock);
	free(h->path);
	free(h);
}
