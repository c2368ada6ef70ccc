/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control channel between vmmsd (parent) and one vmms-worker: length-framed JSON
 * (lib/jsonframe.h) over a Unix stream socket, file descriptors with SCM_RIGHTS.
 *
 * Rendezvous: vmmsd creates a listening Unix socket at <runtime>/vms/<name>/control.sock
 * (mode 0600, root-owned directory) and hands the listening fd to the worker as
 * `vmms-worker --control-fd N`. The worker accepts one connection at a time and checks the
 * peer with SO_PEERCRED (uid 0 or its parent's uid). When vmmsd dies the worker sees EOF,
 * keeps the guest running and accepts the next connection: a restarted vmmsd reattaches by
 * connecting to the same path. The worker never opens a host path in this mode: everything
 * it uses arrives as a file descriptor.
 *
 * Requests (parent -> worker), each answered by exactly one reply with the same id:
 *   {"id":N,"cmd":"fds","names":["kvm","kernel","initrd","disk:vda",...,"serial","console"]}
 *        the fds attached to this message, named in order (at most CTL_MAX_FDS per message;
 *        send several "fds" messages for more). A name given twice is an error. Also
 *        "vsock": the listening Unix socket of the vsock host side (optional).
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
 */
#ifndef VMMS_LIB_CTLPROTO_H
#define VMMS_LIB_CTLPROTO_H

#define CTL_PROTO_VERSION 1
#define CTL_MAX_FDS 8           /* per message (lib/jsonframe.h limit) */
#define CTL_MAX_MESSAGE (1u << 20)

/* States as the worker reports them; vmmsd maps them to EnabledState values. */
#define CTL_STATE_CONFIGURED "configured" /* machine built, not started */
#define CTL_STATE_RUNNING "running"
#define CTL_STATE_PAUSED "paused"
#define CTL_STATE_OFF "off"

#endif
