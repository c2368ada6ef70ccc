/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VM definitions: libvirt domain XML, validated against libvirt's RelaxNG schema and mapped
 * to the subset vmms supports. Anything valid but unsupported is refused by name. Used by the
 * worker (to build a machine) and by vmmsd (to check a definition before storing it).
 */
#ifndef VMMS_LIB_DOMXML_H
#define VMMS_LIB_DOMXML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VM_NAME_MAX 64
#define VM_MAX_DISKS 16
#define VM_MAX_VCPUS 64
#define VM_MIN_MEMORY (16ULL << 20)
#define DOMXML_MAX_SIZE (1u << 20) /* definitions larger than 1 MiB are refused */
#define DOMXML_DEFAULT_SCHEMA "/usr/share/libvirt/schemas/domain.rng"

enum vm_chardev_kind {
	VM_CHARDEV_NONE = 0,
	VM_CHARDEV_STDIO, /* <serial type='stdio'> or <serial type='pty'> run in the foreground */
	VM_CHARDEV_FILE,  /* <serial type='file'><source path=.../> */
	VM_CHARDEV_UNIX,  /* <serial type='unix'><source mode='bind|connect' path=.../> */
	VM_CHARDEV_NULL,  /* <serial type='null'> */
};

struct vm_chardev {
	enum vm_chardev_kind kind;
	char *path;      /* FILE and UNIX */
	bool listen;     /* UNIX: mode='bind' */
	bool append;     /* FILE: append='on' */
};

enum vm_disk_cache {        /* <driver cache=...> */
	VM_DISK_CACHE_DEFAULT = 0, /* absent or 'default': like writeback */
	VM_DISK_CACHE_WRITEBACK,
	VM_DISK_CACHE_NONE,        /* O_DIRECT, guest flushes honoured */
	VM_DISK_CACHE_WRITETHROUGH,/* every write is synced before completion */
	VM_DISK_CACHE_DIRECTSYNC,  /* O_DIRECT and writethrough */
	VM_DISK_CACHE_UNSAFE,      /* guest flushes ignored */
};

enum vm_disk_io { VM_DISK_IO_DEFAULT = 0, VM_DISK_IO_THREADS, VM_DISK_IO_NATIVE, VM_DISK_IO_URING };

struct vm_disk {
	char *path;      /* <source file=.../> */
	char *target;    /* <target dev='vda'/> */
	char *serial;    /* <serial>, at most 20 bytes (virtio-blk ID) */
	bool readonly;   /* <readonly/> */
	bool discard;    /* <driver discard='unmap'/> */
	enum vm_disk_cache cache; /* <driver cache=...> */
	enum vm_disk_io io;       /* <driver io=...> */
};

enum vm_action { VM_ACTION_DESTROY = 0, VM_ACTION_RESTART, VM_ACTION_PRESERVE };

struct vm_config {
	char name[VM_NAME_MAX + 1];
	uint8_t uuid[16];
	bool has_uuid;
	uint64_t memory;   /* bytes, rounded up to 4 KiB, VM_MIN_MEMORY..1 TiB */
	unsigned vcpus;
	char *kernel;      /* <os><kernel> */
	char *initrd;      /* <os><initrd> */
	char *cmdline;     /* <os><cmdline> */
	unsigned nr_disks;
	struct vm_disk disks[VM_MAX_DISKS];
	struct vm_chardev serial;   /* first <serial> (COM1) or <console target type='serial'> */
	struct vm_chardev console;  /* <console><target type='virtio'/> : virtio-console */
	bool rng;                   /* <rng model='virtio'><backend model='random'>/dev/urandom</backend> */
	struct {
		bool enabled;           /* <vsock model='virtio'> */
		uint32_t cid;           /* <cid address='N'/>, 3..0xfffffffe; 3 when absent or auto='yes' */
	} vsock;
	enum vm_action on_poweroff, on_reboot, on_crash;
};

/* Parse and validate. On failure returns -errno and writes one line naming the problem into
 * err (e.g. "unsupported element <interface>: network devices are not supported yet").
 * schema may be NULL for DOMXML_DEFAULT_SCHEMA (compiled once per process and cached).
 * Errors: -EINVAL malformed or schema mismatch, -EOPNOTSUPP valid but unsupported, -ERANGE out
 * of bounds, -EFBIG over DOMXML_MAX_SIZE, -ESHUTDOWN after domxml_release(). Safe to call
 * from several threads. */
int domxml_parse(const char *xml, size_t len, const char *schema, struct vm_config **ret,
		 char *err, size_t errlen);
/* Same, from a file; the message starts with the path. -errno of open/read (-ENOENT when
 * missing), -EFBIG when larger than DOMXML_MAX_SIZE. */
int domxml_parse_file(const char *path, const char *schema, struct vm_config **ret,
		      char *err, size_t errlen);

/*
 * DOMXML_NO_SCHEMA: map without validating against the RelaxNG schema. The mapping alone
 * still trusts nothing: it walks every element and attribute, refuses anything it does not
 * know by name (elements in a namespace, repeated elements, stray text included), range-checks
 * every value and requires what it needs (<name>, <memory>, <os><type>, <os><kernel>). What
 * only the schema refuses are documents that are invalid libvirt XML in ways that change
 * nothing vmms builds (a misspelt element inside <metadata>, an empty <acpi> with text...);
 * such a document gets an error from domxml_parse() but a machine from this. Use it only for a
 * definition that was validated before (vmmsd validates at define time; its worker maps the
 * same text again with this flag, which costs no schema compilation and no schema heap).
 */
#define DOMXML_NO_SCHEMA 0x1u

/* domxml_parse() with flags (DOMXML_NO_SCHEMA); -EINVAL for unknown flags. */
int domxml_parse_opts(const char *xml, size_t len, const char *schema, unsigned flags, struct vm_config **ret,
		      char *err, size_t errlen);
/* domxml_parse_file() with flags. When ret_xml is not NULL and the call succeeds, the text
 * that was mapped is handed back in *ret_xml (*ret_len bytes, NUL-terminated; the caller
 * frees it), so that it can be validated later with domxml_validate() without reading the
 * file twice. */
int domxml_parse_file_opts(const char *path, const char *schema, unsigned flags, struct vm_config **ret,
			   char **ret_xml, size_t *ret_len, char *err, size_t errlen);
/* Parse and validate against the schema only, mapping nothing: 0 when the document is
 * well-formed, has no DTD and matches the schema; otherwise the error domxml_parse() would
 * give for it (a schema mismatch with the mapping's hint). Safe to call from several threads. */
int domxml_validate(const char *xml, size_t len, const char *schema, char *err, size_t errlen);
/* Frees the cached default schema and libxml2's global state, for a process that has parsed
 * its last definition (the worker, after its definition is mapped and validated): it gives
 * back the heap the schema took. No domxml_* call may run concurrently or later; later ones
 * fail with -ESHUTDOWN. Idempotent. */
void domxml_release(void);
void vm_config_free(struct vm_config *c);
/* Canonical text form of a mapped definition, one "key: value" line each (golden tests). */
void vm_config_dump(const struct vm_config *c, FILE *f);

#endif
