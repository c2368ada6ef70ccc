/* SPDX-License-Identifier: GPL-2.0-only */
/* The persistent VM registry: vms/<name>/domain.xml and vms/<name>/vm.json under the state directory. */
#ifndef VMMS_PARENT_REGISTRY_H
#define VMMS_PARENT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/domxml.h"

#define VM_ID_LEN 36          /* "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" */
#define VM_REASON_MAX 256
#define REGISTRY_MAX_VMS 4096

/* How definitions are checked: domxml_parse/vm_config_free in the daemon, a fake in tests. */
struct domparser {
	int (*parse)(const char *xml, size_t len, const char *schema, struct vm_config **ret,
		     char *err, size_t errlen);
	void (*free)(struct vm_config *c);
	const char *schema;   /* NULL: the parser's default */
};

struct vm_entry {
	char name[VM_NAME_MAX + 1];
	char id[VM_ID_LEN + 1];       /* upper-case GUID, the Msvm_ComputerSystem Name */
	int64_t created;              /* ms since the epoch */
	int last_state;               /* EnabledState when last recorded */
	int health;                   /* HealthState: 5 OK, 20 Major Failure, 25 Critical */
	char reason[VM_REASON_MAX];   /* why it last stopped, "" when nothing to report */
	int64_t last_change;          /* ms since the epoch of the last state change */
	uid_t uid;                    /* the worker's uid/gid from the configured range, 0 until
				       * first started (persisted as "uid" so it stays stable) */
	pid_t worker_pid;             /* persisted: the worker's pid while running (reattach) */
	char *xml;                    /* the stored definition */
	size_t xml_len;
	struct vm_config *cfg;        /* parsed from xml */
	/* Runtime only, not persisted: */
	pid_t pid;                    /* the worker's pid, 0 when none */
	int requested_state;          /* RequestedState: 5 No Change when idle */
};

/* Called for each entry that cannot be loaded (it stays on disk, untouched). */
typedef void (*registry_report_fn)(const char *name, const char *problem, void *userdata);

struct registry;

/* Open (creating <state_dir>/vms if needed) and load every entry. 0 or -errno. */
int registry_open(const char *state_dir, const struct domparser *parser, registry_report_fn report,
		  void *userdata, struct registry **ret);
void registry_free(struct registry *r);

size_t registry_count(const struct registry *r);
struct vm_entry *registry_at(struct registry *r, size_t i);
/* By name (exact) or by id (case-insensitive). NULL when absent. */
struct vm_entry *registry_find(struct registry *r, const char *name_or_id);
/* true when a directory vms/<name> exists that could not be loaded. */
bool registry_is_broken(const struct registry *r, const char *name);

/*
 * Validate and store a new definition. The id comes from the XML's <uuid> or is generated.
 * -EEXIST (same name or uuid, or a broken entry of that name), -EINVAL (rejected: err says
 * why), -ENOSPC (REGISTRY_MAX_VMS), or another -errno. err gets one line on any failure.
 */
int registry_define(struct registry *r, const char *xml, size_t len, struct vm_entry **ret,
		    char *err, size_t errlen);
/* Replace the definition of vm (the name and uuid may not change). Same errors. */
int registry_replace(struct registry *r, struct vm_entry *vm, const char *xml, size_t len,
		     char *err, size_t errlen);
/* Write vm.json again after the state fields changed. */
int registry_save_state(struct registry *r, struct vm_entry *vm);
/*
 * Side files kept with a VM (e.g. kvp.json): file is a plain name (registry_name_valid) other
 * than domain.xml and vm.json. Writing replaces it atomically like vm.json; data NULL deletes
 * it (absent is fine). Reading gets at most max bytes, NUL-terminated: -ENOENT when absent,
 * -EFBIG when larger. 0 or -errno. registry_remove deletes them with the VM.
 */
int registry_write_file(struct registry *r, const struct vm_entry *vm, const char *file, const void *data,
			size_t len);
int registry_read_file(struct registry *r, const struct vm_entry *vm, const char *file, size_t max, char **ret,
		       size_t *ret_len);
/* Delete vm's files and forget it (vm is freed). */
int registry_remove(struct registry *r, struct vm_entry *vm);

/* A name usable as a directory: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool registry_name_valid(const char *name);

#endif
