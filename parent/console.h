/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The console multiplexer: each VM's serial stream goes into a bounded, rotated log and out to
 * the clients attached through the management socket (one writer, many readers).
 *
 * Wiring (vmmsd):
 *   - parent/server.c creates one `struct consoles` before the worker manager, registers
 *     consoles_fd() in its epoll loop and calls consoles_dispatch() when it is readable; the
 *     pointer is handed to the worker manager (struct worker_config.consoles, or however
 *     workers.c receives it).
 *   - The worker manager, once a VM's worker has its end of the serial socketpair, calls
 *     console_vm_open(c, name, parent_end). The consoles object owns that fd from then on
 *     (it closes it on error, on console_vm_close() and in consoles_free()). When the worker
 *     is gone, console_vm_close(c, name): readers see the end of the stream. A restarted
 *     vmmsd that reattaches to a running worker calls console_vm_open() again with the new fd.
 *   - AttachConsole (parent/ns_rpc.c) checks a request with console_attach_check(); the
 *     server then hands the connection over with console_attach() once the reply is queued.
 *
 * Nothing here ever blocks: the serial fd and every client fd are non-blocking, guest output
 * that a reader cannot take within CONSOLE_READER_QUEUE_MAX drops that reader, and input the
 * worker does not take fast enough stops reading from the writer (back-pressure on the writer
 * only). The log is written with plain appends to a regular file.
 */
#ifndef VMMS_PARENT_CONSOLE_H
#define VMMS_PARENT_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CONSOLE_REPLAY_BYTES 4096             /* recent output replayed to a new client */
#define CONSOLE_READER_QUEUE_MAX (1u << 20)   /* a reader further behind than this is dropped */
#define CONSOLE_INPUT_QUEUE_MAX (64u << 10)   /* input held for a worker that is not reading */
#define CONSOLE_MAX_CLIENTS 32                /* attached clients per VM */
#define CONSOLE_LOG_MAX_DEFAULT (1u << 20)    /* console_log_max default: 1 MiB per file */
#define CONSOLE_LOG_KEEP_DEFAULT 5            /* console_log_keep default: console.log.1 .. .5 */
#define CONSOLE_LOG_KEEP_MAX 100

struct consoles;

/*
 * New multiplexer. Logs go to <log_dir_root>/vms/<name>/console.log (the VM's state
 * directory, created 0750 when missing), rotated to console.log.1 .. .log_keep once a file
 * would pass log_max_bytes (log_keep 0: the log is truncated instead). 0 or -errno.
 */
int consoles_new(const char *log_dir_root, size_t log_max_bytes, unsigned log_keep, struct consoles **ret);
/* Closes every serial fd and client connection. NULL is fine. */
void consoles_free(struct consoles *c);

/* The descriptor to watch for EPOLLIN in the daemon's loop, and its handler. */
int consoles_fd(struct consoles *c);
void consoles_dispatch(struct consoles *c);

/*
 * Take the parent's end of vm's serial socketpair (made non-blocking here). Guest output is
 * logged and fanned out; input from the writer goes to it. A previous stream of the same VM is
 * replaced. On failure fd is closed too. 0, -EINVAL (bad name or fd), -ENOMEM or -errno.
 */
int console_vm_open(struct consoles *c, const char *vm, int fd);
/* The worker of vm is gone: close its stream; attached clients get their queued output, then
 * the end of the connection. No-op when vm has no stream. */
void console_vm_close(struct consoles *c, const char *vm);
/* Forget vm entirely (undefined): closes its stream and clients; the log files stay. */
void console_vm_forget(struct consoles *c, const char *vm);

/* Whether vm has an open serial stream (its worker runs). */
bool console_vm_running(struct consoles *c, const char *vm);

/*
 * May a client attach to vm (write: as the writer; force: taking the writer role over)?
 * 0, or -EBUSY (another writer holds it; err names it), -EUSERS (too many clients), -EINVAL.
 * err gets one line meant for the client.
 */
int console_attach_check(struct consoles *c, const char *vm, bool write, bool force, char *err, size_t errlen);

/*
 * Hand a management connection over to vm's console. The consoles object owns fd from now on
 * (closed on failure too). pre/pre_len: bytes to send before any console output (the JSON-RPC
 * reply line still queued); in/in_len: bytes the client already sent after its request (input
 * for the writer, ignored for a reader). who names the client in messages ("uid 1000 pid 42").
 * The recent output (up to CONSOLE_REPLAY_BYTES) follows pre. 0 or -errno.
 */
int console_attach(struct consoles *c, const char *vm, int fd, bool write, bool force, const void *pre,
		   size_t pre_len, const void *in, size_t in_len, const char *who);

/* Clients attached to vm (readers and writer), for tests and status. */
unsigned console_nclients(struct consoles *c, const char *vm);

#endif
