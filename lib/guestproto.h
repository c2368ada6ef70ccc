/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The guest additions protocol spoken between host programs (vmmsd, virtctl) and the guest
 * agent vmms-guestd: length-framed JSON objects over a vsock stream.
 *
 * Frame: 4-byte big-endian body length (at most GUESTPROTO_MAX_MSG), then one JSON object.
 * Host to guest: requests {"id": N, "op": "...", ...}, N an integer in [0, 2^53). Streamed
 * input for an operation ("stdin" of an exec, "file-data" of a file-write) carries the
 * operation's id and op "stdin"/"file-data"; it gets no reply of its own and is dropped when
 * the operation has already ended (its reply says why).
 * Guest to host: every message has "id" and "type". "type":"reply" ends a request and has
 * "ok" (true, or false with "error" text and "errno" number); "stdout"/"stderr" carry exec
 * output as base64 "data"; "started" tells an exec's pid. vmms-guestd(8) lists the ops and
 * their fields.
 */
#ifndef VMMS_LIB_GUESTPROTO_H
#define VMMS_LIB_GUESTPROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define VMMS_GUESTD_PORT 5150u          /* vsock port the agent listens on */
#define GUESTPROTO_VERSION 1
#define GUESTPROTO_MAX_MSG (1u << 20)   /* largest frame body either side accepts */
#define GUESTPROTO_CHUNK (48u * 1024)   /* raw bytes per data message (64 KiB as base64) */
#define GUESTPROTO_ID_MAX ((1ull << 53) - 1)
#define GUESTPROTO_KEY_MAX 64           /* longest KVP key */
#define GUESTPROTO_VALUE_MAX 4096       /* longest KVP value */

/* Incremental frame reader for non-blocking descriptors; holds at most one frame's bytes. */
struct guestproto_reader {
	unsigned char *buf;
	size_t len;
	size_t cap;
};

void guestproto_reader_init(struct guestproto_reader *r);
void guestproto_reader_free(struct guestproto_reader *r);
/* Append bytes. 0, -ENOBUFS when more than one maximal frame would be buffered, -ENOMEM. */
int guestproto_reader_feed(struct guestproto_reader *r, const void *data, size_t len);
/* One read(2) from fd: bytes read (>0), 0 at end of stream, -EAGAIN, -ENOBUFS (take frames
 * first), or another -errno. */
int guestproto_reader_fill(struct guestproto_reader *r, int fd);
/*
 * Take the next frame: 1 with *ret (a new reference to a JSON object); 0 when more bytes are
 * needed; -EBADMSG when the frame's body is not one JSON object (the frame is consumed, the
 * stream stays usable); -EMSGSIZE when the announced length is over GUESTPROTO_MAX_MSG (the
 * stream cannot be resynchronised: close it).
 */
int guestproto_reader_next(struct guestproto_reader *r, json_t **ret);

/* Encode msg as a malloc'ed frame. 0, -EMSGSIZE, -ENOMEM. */
int guestproto_encode(const json_t *msg, char **ret_buf, size_t *ret_len);
/* Send one message on a blocking socket (no SIGPIPE). 0 or -errno. */
int guestproto_send(int fd, const json_t *msg);
/* Receive one message from a blocking or non-blocking socket, waiting at most timeout_ms (-1:
 * forever) in all. 1 with *ret, 0 on a clean end of stream, -ETIMEDOUT, -EPROTO (stream ended
 * inside a frame), -EMSGSIZE, -EBADMSG, or another -errno. */
int guestproto_recv(int fd, int timeout_ms, json_t **ret);

/* Standard base64 (RFC 4648, with padding). encode: malloc'ed NUL-terminated text. decode:
 * strict (no whitespace), into out of size cap: 0, -EINVAL bad text, -ENOBUFS too long. */
int guestproto_b64_encode(const void *data, size_t len, char **ret_text);
int guestproto_b64_decode(const char *text, size_t text_len, void *out, size_t cap, size_t *ret_len);

/* A KVP key: 1..GUESTPROTO_KEY_MAX of [A-Za-z0-9._-], not starting with '.'. */
bool guestproto_key_valid(const char *key);

/* Request builders: new objects with "id" and "op" (NULL on allocation failure or bad
 * arguments). Arrays argv/env/mountpoints end with NULL; env entries are "NAME=value". */
json_t *guestproto_req(uint64_t id, const char *op);
json_t *guestproto_req_ping(uint64_t id);
json_t *guestproto_req_shutdown(uint64_t id, bool reboot);
/* timeout_s 0: none. with_stdin: the host will send "stdin" messages ending with eof;
 * otherwise the command reads /dev/null. */
json_t *guestproto_req_exec(uint64_t id, const char *const *argv, const char *const *env,
			    const char *cwd, unsigned timeout_s, bool with_stdin);
/* "stdin" (exec input) or "file-data" (file-write content) for the operation exec_id. */
json_t *guestproto_req_data(uint64_t op_id, const char *op, const void *data, size_t len, bool eof);
json_t *guestproto_req_signal(uint64_t id, uint64_t exec_id, int signo);
json_t *guestproto_req_kvp_get(uint64_t id);
json_t *guestproto_req_kvp_list(uint64_t id);
/* value NULL deletes the pair. */
json_t *guestproto_req_kvp_set(uint64_t id, const char *key, const char *value);
/* mountpoints NULL: every writable local file system. timeout_s: thaw after it (0: 60 s). */
json_t *guestproto_req_fsfreeze(uint64_t id, const char *const *mountpoints, unsigned timeout_s);
json_t *guestproto_req_fsthaw(uint64_t id);
json_t *guestproto_req_time_sync(uint64_t id, const struct timespec *realtime);
json_t *guestproto_req_file_write(uint64_t id, const char *path, unsigned mode, uint64_t size);

/*
 * Host side: connect to a guest port through the worker's vsock Unix socket (`CONNECT
 * <port>\n`, answered `OK <n>\n`), waiting at most timeout_ms for the answer. 0 with *ret_fd
 * (blocking, close-on-exec), -ECONNREFUSED when the worker refuses the port, or -errno.
 */
int guestproto_connect(const char *vsock_socket, uint32_t port, int timeout_ms, int *ret_fd);

/*
 * Send req (the caller keeps its reference) and wait at most timeout_ms for its reply,
 * skipping other messages. 0 with *ret_reply (the caller checks "ok"), or -errno.
 */
int guestproto_call(int fd, const json_t *req, int timeout_ms, json_t **ret_reply);

/* For a reply: 0 when ok, else -errno from its "errno" (or -EIO), *ret_msg its "error" text
 * (valid while reply lives; may be NULL). */
int guestproto_reply_status(const json_t *reply, const char **ret_msg);

/* Message fields: the id (0, -EINVAL when absent or out of range) and the base64 "data"
 * decoded into a malloc'ed buffer (0 with an empty buffer when absent). */
int guestproto_msg_id(const json_t *msg, uint64_t *ret_id);
int guestproto_msg_data(const json_t *msg, void **ret_data, size_t *ret_len);

#endif
