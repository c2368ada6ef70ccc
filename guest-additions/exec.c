// SPDX-License-Identifier: GPL-2.0-only
/* vmms-guestd exec: run a command for the host, stream its stdin/stdout/stderr, report its end. */
#include "guest-additions/guestd_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"

#define EXEC_TIMEOUT_MAX_S (30u * 24 * 3600)

extern char **environ;

static struct guestd_exec *exec_find(struct guestd_client *c, uint64_t id)
{
	for (size_t i = 0; i < GUESTD_MAX_EXECS; i++)
		if (c->execs[i] && c->execs[i]->id == id)
			return c->execs[i];
	return NULL;
}

bool guestd_client_stdin_full(const struct guestd_client *c)
{
	for (size_t i = 0; i < GUESTD_MAX_EXECS; i++)
		if (c->execs[i] && c->execs[i]->in.len >= GUESTD_STDIN_HIGH)
			return true;
	return false;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Checks a JSON array of strings from the host: at most max entries, no NUL inside, each with
 * '=' when need_eq. Returns the count or -EINVAL. */
static int string_list(json_t *a, size_t max, bool need_eq)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a) || json_array_size(a) > max)
		return -EINVAL;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);
		if (!s || strlen(s) != json_string_length(v))
			return -EINVAL;
		if (need_eq && (s[0] == '=' || !strchr(s, '=')))
			return -EINVAL;
	}
	return (int)json_array_size(a);
}

/* The environment: ours, minus names the request sets, plus the request's entries. */
static char **build_env(json_t *env)
{
	size_t nbase = 0, nenv = env ? json_array_size(env) : 0, n = 0;
	char **envp;

	while (environ && environ[nbase])
		nbase++;
	envp = calloc(nbase + nenv + 1, sizeof(*envp));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < nbase; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t klen = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
		bool overridden = false;

		for (size_t k = 0; k < nenv && !overridden; k++)
			overridden = strncmp(json_string_value(json_array_get(env, k)), environ[i], klen) == 0;
		if (!overridden)
			envp[n++] = environ[i];
	}
	for (size_t k = 0; k < nenv; k++)
		envp[n++] = (char *)json_string_value(json_array_get(env, k));
	envp[n] = NULL;
	return envp;
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void __attribute__((noreturn)) exec_child(char **argv, char **envp, const char *cwd,
						 int in_fd, int out_fd, int err_fd, int report_fd)
{
	sigset_t all;
	int e, null_fd = -1;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	if (in_fd < 0) {
		null_fd = open("/dev/null", O_RDONLY);
		in_fd = null_fd;
	}
	if (in_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		goto fail;
	if (cwd && chdir(cwd) < 0)
		goto fail;
	execvpe(argv[0], argv, envp);
fail:
	e = errno;
	(void)!write(report_fd, &e, sizeof(e));
	_exit(127);
}

int guestd_op_exec(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	json_t *jargv = json_object_get(msg, "argv"), *jenv = json_object_get(msg, "env");
	json_t *jcwd = json_object_get(msg, "cwd"), *jtimeout = json_object_get(msg, "timeout");
	json_t *jstdin = json_object_get(msg, "stdin");
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 };
	const char *cwd = NULL;
	json_int_t timeout = 0;
	struct guestd_exec *x = NULL;
	char **argv = NULL, **envp = NULL;
	size_t slot = GUESTD_MAX_EXECS;
	int nargs, e, child_errno = 0;
	ssize_t got;
	pid_t pid;

	/* Every field comes from the host: types, counts, NULs and ranges are checked first. */
	nargs = string_list(jargv, GUESTD_MAX_ARGS, false);
	if (nargs <= 0)
		return guestd_reply_err(c, id, EINVAL, "exec: \"argv\" must be a non-empty array of strings");
	if (jenv && string_list(jenv, GUESTD_MAX_ARGS, true) < 0)
		return guestd_reply_err(c, id, EINVAL, "exec: \"env\" must be an array of NAME=value strings");
	if (jcwd) {
		cwd = json_string_value(jcwd);
		if (!cwd || strlen(cwd) != json_string_length(jcwd) || !*cwd || strlen(cwd) >= 4096)
			return guestd_reply_err(c, id, EINVAL, "exec: \"cwd\" must be a path");
	}
	if (jtimeout) {
		timeout = json_is_integer(jtimeout) ? json_integer_value(jtimeout) : -1;
		if (timeout < 0 || timeout > EXEC_TIMEOUT_MAX_S)
			return guestd_reply_err(c, id, EINVAL, "exec: \"timeout\" must be 0..%u seconds",
						EXEC_TIMEOUT_MAX_S);
	}
	if (jstdin && !json_is_boolean(jstdin))
		return guestd_reply_err(c, id, EINVAL, "exec: \"stdin\" must be true or false");
	if (exec_find(c, (uint64_t)id))
		return guestd_reply_err(c, id, EEXIST, "exec: id %lld is already running", (long long)id);
	for (size_t i = 0; i < GUESTD_MAX_EXECS && slot == GUESTD_MAX_EXECS; i++)
		if (!c->execs[i])
			slot = i;
	if (slot == GUESTD_MAX_EXECS)
		return guestd_reply_err(c, id, EAGAIN, "exec: %u commands already running on this connection",
					GUESTD_MAX_EXECS);

	argv = calloc((size_t)nargs + 1, sizeof(*argv));
	envp = build_env(jenv);
	x = calloc(1, sizeof(*x));
	if (!argv || !envp || !x) {
		e = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < nargs; i++)
		argv[i] = (char *)json_string_value(json_array_get(jargv, (size_t)i));
	if ((json_is_true(jstdin) && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
		e = -errno;
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		e = -errno;
		goto fail;
	}
	if (pid == 0)
		exec_child(argv, envp, cwd, in[0], out[1], err[1], rep[1]);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	close_fd(&rep[1]);
	/* The report pipe is close-on-exec: EOF means the exec worked, 4 bytes its errno. */
	do
		got = read(rep[0], &child_errno, sizeof(child_errno));
	while (got < 0 && errno == EINTR);
	close_fd(&rep[0]);
	if (got == sizeof(child_errno)) {
		(void)waitpid(pid, NULL, 0);
		e = -child_errno;
		if (e == 0)
			e = -EIO;
		goto fail;
	}
	x->id = (uint64_t)id;
	x->pid = pid;
	x->in_fd = in[1];
	x->out_fd = out[0];
	x->err_fd = err[0];
	(void)fcntl(x->out_fd, F_SETFL, O_NONBLOCK);
	(void)fcntl(x->err_fd, F_SETFL, O_NONBLOCK);
	if (x->in_fd >= 0)
		(void)fcntl(x->in_fd, F_SETFL, O_NONBLOCK);
	if (timeout)
		x->kill_at_ms = guestd_now_ms() + timeout * 1000;
	c->execs[slot] = x;
	free(argv);
	free(envp);
	return guestd_send(c, json_pack("{s:I, s:s, s:i}", "id", (json_int_t)id, "type", "started",
					"pid", (int)pid));
fail:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
		close_fd(&rep[i]);
	}
	free(argv);
	free(envp);
	free(x);
	return guestd_reply_err(c, id, e, "exec %.200s: %s", json_string_value(json_array_get(jargv, 0)),
				strerror(-e));
}

static void stdin_write(struct guestd_exec *x)
{
	while (x->in_fd >= 0 && x->in.len) {
		ssize_t n = write(x->in_fd, x->in.data + x->in.head, x->in.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			/* The command closed its stdin: what is left has nowhere to go. */
			guestd_buf_consume(&x->in, x->in.len);
			close_fd(&x->in_fd);
			return;
		}
		guestd_buf_consume(&x->in, (size_t)n);
	}
	if (x->in_eof && !x->in.len)
		close_fd(&x->in_fd);
}

int guestd_op_stdin(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	struct guestd_exec *x = exec_find(c, (uint64_t)id);
	json_t *eof = json_object_get(msg, "eof");
	void *data;
	size_t len;
	int e;

	/* Input for a command that has ended (its reply says so) or never read stdin: dropped. */
	if (!x || x->in_fd < 0 || x->in_eof)
		return 0;
	e = guestproto_msg_data(msg, &data, &len);
	if (e < 0) {
		/* Bad input ends the command's stdin rather than feeding it garbage. */
		x->in_eof = true;
		stdin_write(x);
		return 0;
	}
	e = guestd_buf_append(&x->in, data, len);
	free(data);
	if (e < 0)
		return e;
	if (json_is_true(eof))
		x->in_eof = true;
	stdin_write(x);
	return 0;
}

int guestd_op_signal(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	json_t *jexec = json_object_get(msg, "exec"), *jsig = json_object_get(msg, "signal");
	struct guestd_exec *x;
	json_int_t sig;

	if (!json_is_integer(jexec) || !json_is_integer(jsig))
		return guestd_reply_err(c, id, EINVAL, "signal: needs integer \"exec\" and \"signal\"");
	sig = json_integer_value(jsig);
	if (sig < 1 || sig > SIGRTMAX)
		return guestd_reply_err(c, id, EINVAL, "signal: %lld is not a signal number", (long long)sig);
	x = json_integer_value(jexec) >= 0 ? exec_find(c, (uint64_t)json_integer_value(jexec)) : NULL;
	if (!x || x->reaped)
		return guestd_reply_err(c, id, ESRCH, "signal: no running command with id %lld",
					(long long)json_integer_value(jexec));
	/* The command runs in its own session: signal its whole process group. */
	if (kill(-x->pid, (int)sig) < 0 && kill(x->pid, (int)sig) < 0)
		return guestd_reply_err(c, id, errno, "signal: %s", strerror(errno));
	return guestd_reply(c, id, NULL);
}

void guestd_exec_io(struct guestd_client *c, struct guestd_exec *x, int fd, short revents)
{
	unsigned char buf[GUESTPROTO_CHUNK];
	bool is_out = fd == x->out_fd;
	char *text;
	ssize_t n;

	if (fd == x->in_fd) {
		if (revents & (POLLERR | POLLHUP)) {
			guestd_buf_consume(&x->in, x->in.len);
			close_fd(&x->in_fd);
		} else {
			stdin_write(x);
		}
		return;
	}
	if (fd != x->out_fd && fd != x->err_fd)
		return;
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		close_fd(is_out ? &x->out_fd : &x->err_fd);
		return;
	}
	if (guestproto_b64_encode(buf, (size_t)n, &text) < 0) {
		c->dead = true;
		return;
	}
	(void)guestd_send(c, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)x->id,
				       "type", is_out ? "stdout" : "stderr", "data", text));
	free(text);
}

static void exec_free(struct guestd_exec *x)
{
	close_fd(&x->in_fd);
	close_fd(&x->out_fd);
	close_fd(&x->err_fd);
	guestd_buf_free(&x->in);
	free(x);
}

static void exec_kill(struct guestd_exec *x)
{
	if (kill(-x->pid, SIGKILL) < 0)
		(void)kill(x->pid, SIGKILL);
}

void guestd_exec_tick(struct guestd_client *c, int64_t now, int64_t *next_ms)
{
	for (size_t i = 0; i < GUESTD_MAX_EXECS; i++) {
		struct guestd_exec *x = c->execs[i];
		json_t *fin;
		int st;

		if (!x)
			continue;
		if (!x->reaped && waitpid(x->pid, &st, WNOHANG) == x->pid) {
			x->reaped = true;
			x->status = st;
			x->drain_until_ms = now + GUESTD_DRAIN_MS;
		}
		if (!x->reaped) {
			if (x->kill_at_ms && now >= x->kill_at_ms) {
				exec_kill(x);
				x->timed_out = true;
				x->kill_at_ms = 0;
			} else if (x->kill_at_ms) {
				*next_ms = MIN(*next_ms, x->kill_at_ms);
			}
			continue;
		}
		close_fd(&x->in_fd);
		if (x->out_fd >= 0 || x->err_fd >= 0) {
			/* The command is gone but something it started may hold its pipes: wait a
			 * little for the rest, counting only time in which we could read. */
			if (c->out.len >= GUESTD_OUTQ_HIGH)
				x->drain_until_ms = now + GUESTD_DRAIN_MS;
			if (now < x->drain_until_ms) {
				*next_ms = MIN(*next_ms, x->drain_until_ms);
				continue;
			}
		}
		if (c->dead)
			continue;
		if (WIFSIGNALED(x->status))
			fin = json_pack("{s:i, s:b}", "signal", WTERMSIG(x->status), "timed_out", x->timed_out);
		else
			fin = json_pack("{s:i, s:b}", "status", WEXITSTATUS(x->status), "timed_out", x->timed_out);
		(void)guestd_reply(c, (int64_t)x->id, fin);
		exec_free(x);
		c->execs[i] = NULL;
	}
}

void guestd_exec_kill_all(struct guestd_client *c)
{
	for (size_t i = 0; i < GUESTD_MAX_EXECS; i++) {
		struct guestd_exec *x = c->execs[i];

		if (!x)
			continue;
		if (!x->reaped) {
			exec_kill(x);
			(void)waitpid(x->pid, NULL, 0);
		}
		exec_free(x);
		c->execs[i] = NULL;
	}
}
