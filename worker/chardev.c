// SPDX-License-Identifier: GPL-2.0-only
/* Console backends: terminal, file, Unix socket, null. */
#include "worker/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

static void chardev_reset(struct chardev *c, enum vm_chardev_kind kind)
{
	*c = (struct chardev){ .kind = kind, .out_fd = -1, .in_fd = -1, .listen_fd = -1 };
	pthread_mutex_init(&c->lock, NULL);
}

static int unix_socket_open(struct chardev *c, const char *path, bool listen_mode, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "serial socket %s: path too long (max %zu bytes)", path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (listen_mode) {
		(void)unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
			r = -errno;
			snprintf(err, errlen, "serial socket %s: cannot listen: %s", path, strerror(-r));
			close(fd);
			return r;
		}
		c->listen_fd = fd;
		return 0;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(err, errlen, "serial socket %s: cannot connect: %s (is the listener running?)", path, strerror(-r));
		close(fd);
		return r;
	}
	c->out_fd = c->in_fd = fd;
	return 0;
}

int chardev_open(struct chardev *c, const struct vm_chardev *cfg, char *err, size_t errlen)
{
	int fd;

	chardev_reset(c, cfg->kind);
	switch (cfg->kind) {
	case VM_CHARDEV_NONE:
	case VM_CHARDEV_NULL:
		snprintf(c->desc, sizeof(c->desc), "null");
		return 0;
	case VM_CHARDEV_STDIO:
		snprintf(c->desc, sizeof(c->desc), "terminal");
		c->out_fd = STDOUT_FILENO;
		c->in_fd = isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
		return 0;
	case VM_CHARDEV_FILE:
		snprintf(c->desc, sizeof(c->desc), "file %s", cfg->path);
		fd = open(cfg->path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | (cfg->append ? O_APPEND : O_TRUNC), 0640);
		if (fd < 0) {
			int r = -errno;
			snprintf(err, errlen, "serial file %s: %s", cfg->path, strerror(-r));
			return r;
		}
		c->out_fd = fd;
		return 0;
	case VM_CHARDEV_UNIX:
		snprintf(c->desc, sizeof(c->desc), "unix socket %s", cfg->path);
		return unix_socket_open(c, cfg->path, cfg->listen, err, errlen);
	}
	snprintf(err, errlen, "serial: unknown backend kind %d", cfg->kind);
	return -EINVAL;
}

void chardev_from_fds(struct chardev *c, int out_fd, int in_fd)
{
	chardev_reset(c, VM_CHARDEV_UNIX);
	c->out_fd = out_fd;
	c->in_fd = in_fd;
	snprintf(c->desc, sizeof(c->desc), "fd %d", out_fd);
}

int chardev_replace(struct chardev *c, int fd, uint64_t *dropped)
{
	int old_in, old_out;

	/* Only a socket the parent handed over (kind unix, no listening socket) has a peer that
	 * can be replaced; a terminal or a file has none. */
	if (c->kind != VM_CHARDEV_UNIX || c->listen_fd >= 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	pthread_mutex_lock(&c->lock);
	old_in = c->in_fd;
	old_out = c->out_fd;
	c->out_fd = c->in_fd = fd;
	if (dropped)
		*dropped = c->dropped;
	c->dropped = 0;
	/* Closed under the lock: no writer can hold the old number while it is reused. */
	if (old_in >= 0 && old_in != old_out)
		close(old_in);
	if (old_out >= 0)
		close(old_out);
	pthread_mutex_unlock(&c->lock);
	snprintf(c->desc, sizeof(c->desc), "fd %d", fd);
	return 0;
}

void chardev_close(struct chardev *c)
{
	if (!c)
		return;
	if (c->in_fd >= 0 && c->in_fd != c->out_fd && c->in_fd != STDIN_FILENO)
		close(c->in_fd);
	if (c->out_fd >= 0 && c->out_fd != STDOUT_FILENO)
		close(c->out_fd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	c->in_fd = c->out_fd = c->listen_fd = -1;
	pthread_mutex_destroy(&c->lock);
}

void chardev_write(struct chardev *c, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&c->lock);
	if (c->out_fd < 0) {
		/* A socket with no peer (vmmsd restarting, no console client): the output is lost
		 * and counted, the vCPU goes on. */
		if (c->kind == VM_CHARDEV_UNIX)
			c->dropped += len;
		goto out;
	}
	if (c->kind == VM_CHARDEV_UNIX) {
		/* A socket peer that stops reading must not stall a vCPU: drop and count. */
		ssize_t n = send(c->out_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			close(c->out_fd);
			c->out_fd = c->in_fd = -1;
			n = 0;
		}
		if (n < (ssize_t)len)
			c->dropped += len - (size_t)(n < 0 ? 0 : n);
	} else {
		(void)write_full(c->out_fd, buf, len);
	}
out:
	pthread_mutex_unlock(&c->lock);
}

int chardev_accept(struct chardev *c)
{
	int fd;

	if (c->listen_fd < 0)
		return -EINVAL;
	fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&c->lock);
	if (c->out_fd >= 0) {
		/* One console client at a time: the newcomer is refused. */
		pthread_mutex_unlock(&c->lock);
		(void)!write(fd, "console busy\n", 13);
		close(fd);
		return -EBUSY;
	}
	c->out_fd = c->in_fd = fd;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

ssize_t chardev_read(struct chardev *c, uint8_t *buf, size_t len)
{
	ssize_t n;

	if (c->in_fd < 0)
		return -EAGAIN;
	/* A socket's descriptor may have been replaced since epoll reported the old one ready:
	 * never block the main loop on the new one. */
	if (c->kind == VM_CHARDEV_UNIX)
		n = recv(c->in_fd, buf, len, MSG_DONTWAIT);
	else
		n = read(c->in_fd, buf, len);
	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (n == 0 && c->kind == VM_CHARDEV_UNIX) {
		pthread_mutex_lock(&c->lock);
		close(c->in_fd);
		c->in_fd = c->out_fd = -1;
		pthread_mutex_unlock(&c->lock);
	}
	return n;
}
