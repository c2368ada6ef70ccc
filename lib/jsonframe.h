/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * JSON message framing: length-framed messages with optional file descriptors for the
 * parent<->worker control channel, and a bounded line reader for the management socket.
 */
#ifndef VMMS_LIB_JSONFRAME_H
#define VMMS_LIB_JSONFRAME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define JSONFRAME_MAX (1u << 20)   /* largest frame body accepted or sent */
#define JSONFRAME_MAX_FDS 8        /* most descriptors carried by one frame */
#define JSONLINE_MAX (1u << 20)    /* default longest management line */

/*
 * Frame: 4-byte big-endian body length, then that many bytes of UTF-8 JSON (one value).
 * Descriptors ride as SCM_RIGHTS on the first byte of the frame.
 */

/* Encode msg into a malloc'ed frame. 0, -EMSGSIZE (body over JSONFRAME_MAX), -ENOMEM. */
int jsonframe_encode(const json_t *msg, char **ret_buf, size_t *ret_len);

/*
 * Decode one frame from the start of buf. 1 with *ret (new reference) and *ret_used set when a
 * whole frame is there; 0 when more bytes are needed; -EMSGSIZE when the announced length is
 * over JSONFRAME_MAX; -EBADMSG when the body is not valid JSON.
 */
int jsonframe_decode(const void *buf, size_t len, json_t **ret, size_t *ret_used);

/* Send msg with up to JSONFRAME_MAX_FDS descriptors (fds may be NULL when nfds is 0) on a
 * blocking stream socket. 0 or -errno (-EINVAL too many fds, -EMSGSIZE too large). */
int jsonframe_send(int sock, const json_t *msg, const int *fds, size_t nfds);

/*
 * Receive one frame from a blocking stream socket. fds (room for JSONFRAME_MAX_FDS) receives
 * the descriptors that came with it (close-on-exec), *ret_nfds their count; either may be
 * NULL, then received descriptors are closed. Returns 1 with *ret set, 0 on a clean end of
 * stream before any byte of a frame, -EPROTO when the stream ends inside a frame or more
 * descriptors arrive than fit, -EMSGSIZE, -EBADMSG, or another -errno.
 */
int jsonframe_recv(int sock, json_t **ret, int *fds, size_t *ret_nfds);

/* A bounded reader of newline-terminated lines from a non-blocking descriptor. */
struct jsonline {
	char *buf;
	size_t len;       /* bytes held */
	size_t cap;
	size_t max;       /* longest line accepted, newline excluded */
	size_t scanned;   /* bytes of buf already known to hold no newline */
	size_t taken;     /* bytes of the line handed out last, dropped on the next call */
};

void jsonline_init(struct jsonline *jl, size_t max);
void jsonline_free(struct jsonline *jl);
/* Append bytes (for tests and callers that read themselves). 0, -EMSGSIZE when the pending
 * partial line would exceed max, -ENOMEM. */
int jsonline_feed(struct jsonline *jl, const void *data, size_t len);
/* One read(2) from fd into the buffer: bytes read (>0), 0 at end of file, -EAGAIN, -EMSGSIZE
 * when a line without newline has grown past max, or another -errno. */
int jsonline_read(struct jsonline *jl, int fd);
/*
 * Take the next complete line: 1 with *ret_line (NUL-terminated, newline and a trailing CR
 * removed, valid until the next call on jl) and *ret_len; 0 when no whole line is buffered;
 * -EMSGSIZE when the buffered line is longer than max.
 */
int jsonline_next(struct jsonline *jl, char **ret_line, size_t *ret_len);

#endif
