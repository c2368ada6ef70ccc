/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control channel between vmmsd (parent) and one vmms-worker: length-framed JSON
 * (lib/jsonframe.h) over a Unix stream socket, file descriptors with SCM_RIGHTS.
 *
 * Rendezvous: vmmsd creates a listening Unix socket at <runtime>/vms/<name>/control.sock
 * (mode 0600, root-owned directory) and hands the listening fd to the worker as
 * `vmms-worker --control-fd N`. At startup the worker calls listen() on it again: a
 * connection's SO_PEERCRED names whoever last called listen(), so from then on every
 * controller sees the worker's own pid and uid, not vmmsd's. The worker accepts one
 * connection at a time and checks the peer with SO_PEERCRED (uid 0 or the worker's own uid).
 * When vmmsd dies the worker sees EOF, keeps the guest running and accepts the next
 * connection: a restarted vmmsd reattaches by connecting to the same path, and trusts the
 * worker only if the peer's pid is the one of the pid file (and of a pidfd opened for it
 * before connecting) and the peer's uid is the VM's worker uid (never 0). The worker never
 * opens a host path in this mode: everything it uses arrives as a file descriptor.
 *
 * Requests (parent -> worker), each answered by exactly one reply with the same id:
 *   {"id":N,"cmd":"fds","names":["kvm","kernel","initrd","disk:vda",...,"serial","console"]}
 *        the fds attached to this message, named in order (at most CTL_MAX_FDS per message;
 *        send several "fds" messages for more). A name given twice is an error. Also
 *        "vsock": the listening Unix socket of the vsock host side (optional).
 *        "vsock-connector": a SOCK_SEQPACKET socket (optional, with "vsock") on which the
 *        worker asks vmmsd to connect guest-initiated vsock connections (below).
 *        After "configure" only "serial", "console" and "vsock-connector" may be sent, and
 *        only as replacements: "serial"/"console" must be a stream socket for a port the
 *        definition has, "vsock-connector" a SOCK_SEQPACKET socket for a definition with a
 *        vsock (InvalidParameter otherwise; any other name gets InvalidState). The worker
 *        swaps a stream under the character device's lock (vCPUs write concurrently) and
 *        the connector under the vsock host side's lock (the io thread finishes a request in
 *        flight on the old one first), and closes the old descriptor; all names of one
 *        message are replaced or none. A restarted vmmsd does this right after reattaching:
 *        a new socketpair whose other end goes to its console multiplexer, and (in a message
 *        of its own) a new connector whose other end it serves as at start, since the old
 *        connector died with the old vmmsd. While no peer reads a stream (the old one is
 *        gone, the new one not yet here) guest output to it is dropped and counted, never
 *        waited for; until the new connector arrives, guests' connections to host ports are
 *        refused.
 *   {"id":N,"cmd":"configure","xml":"<domain ...>"}
 *        the worker maps the definition, checks that every resource it needs has arrived
 *        (kvm, kernel, initrd if the definition has one, disk:<target> per disk, serial
 *        unless the serial port is absent/null, console for a virtio console) and builds
 *        the machine (does not run it). Only once per worker.
 *   {"id":N,"cmd":"start"}      run the vCPUs                      (state must be "off"/"configured")
 *   {"id":N,"cmd":"pause"}      park vCPUs, quiesce devices        (running -> paused)
 *   {"id":N,"cmd":"resume"}     paused -> running
 *   {"id":N,"cmd":"reset"}      hard reset: the machine is rebuilt and started again
 *   {"id":N,"cmd":"stop"}       turn off at once; the worker exits afterwards
 *   {"id":N,"cmd":"shutdown"}   press the ACPI power button (orderly shutdown request)
 *   {"id":N,"cmd":"query"}      current state
 * Replies:
 *   {"id":N,"ok":true,"state":"running", ...}
 *   {"id":N,"ok":false,"error":{"name":"InvalidState","message":"VM is paused; resume it first"}}
 *   error names: InvalidState, InvalidParameter, NotSupported, Failed.
 * Events (worker -> parent, no id), in order of occurrence:
 *   {"event":"state","state":"running|paused|off","reason":"..."}
 *   {"event":"reboot"}          the guest rebooted (the worker restarts it in place)
 *   {"event":"stopped","outcome":"poweroff|reboot|crash|host-error|turned-off","reason":"..."}
 *        last message before the worker exits; the exit status matches (vmms-worker(8)).
 * Every message is hostile to its receiver: unknown commands, missing fields, wrong types
 * and too many fds get an error reply, never a crash.
 *
 * The vsock connector (a channel of its own, split from the control channel by privilege: it
 * can make vmmsd connect somewhere, so it carries nothing else). A guest connecting to host
 * port P must reach the listener at "<runtime>/vms/<name>/vsock.sock_P"; the sandboxed
 * worker can neither see that path nor call socket()/connect() (worker/seccomp.c), so its
 * io thread sends a struct ctl_vsock_req (one SOCK_SEQPACKET datagram) and waits at most
 * CTL_VSOCK_TIMEOUT_MS for the struct ctl_vsock_reply with the same token. status 0: the
 * reply carries one connected, non-blocking stream socket (SCM_RIGHTS); otherwise -errno
 * (ECONNREFUSED when nobody listens) and no descriptor, and the guest gets RST. vmmsd builds
 * the path itself from the bounded u32 port (never any other path), connects without
 * blocking, and serves at most CTL_VSOCK_BURST requests per wakeup per VM; a reply the worker
 * does not read in time is dropped (its descriptor closed), never queued without bound. A
 * reply whose token is not the one awaited (a late answer to a request that timed out) is
 * discarded by the worker. Integers are in host byte order (same machine).
 */
#ifndef VMMS_LIB_CTLPROTO_H
#define VMMS_LIB_CTLPROTO_H

#include <stdint.h>

#define CTL_PROTO_VERSION 1
#define CTL_MAX_FDS 8           /* per message (lib/jsonframe.h limit) */
#define CTL_MAX_MESSAGE (1u << 20)

/* States as the worker reports them; vmmsd maps them to EnabledState values. */
#define CTL_STATE_CONFIGURED "configured" /* machine built, not started */
#define CTL_STATE_RUNNING "running"
#define CTL_STATE_PAUSED "paused"
#define CTL_STATE_OFF "off"

/* The vsock connector's messages (see above). */
#define CTL_VSOCK_CONNECTOR "vsock-connector"
#define CTL_VSOCK_MAGIC 0x766d7663u   /* "vmvc" */
#define CTL_VSOCK_TIMEOUT_MS 2000
#define CTL_VSOCK_BURST 16

struct ctl_vsock_req {
	uint32_t magic;
	uint32_t port;
	uint64_t token;
};

struct ctl_vsock_reply {
	uint32_t magic;
	int32_t status;  /* 0: a descriptor is attached; else -errno */
	uint64_t token;
};

#endif
