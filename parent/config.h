/* SPDX-License-Identifier: GPL-2.0-only */
/* vmmsd.conf: key=value settings of the daemon, with defaults and strict checking. */
#ifndef VMMS_PARENT_CONFIG_H
#define VMMS_PARENT_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define VMMSD_DEFAULT_CONFIG "/etc/vmms/vmmsd.conf"
#define VMMSD_CONFIG_MAX (64 * 1024)

struct vmmsd_config {
	char state_dir[PATH_MAX];     /* state_dir, default /var/lib/vmms */
	char runtime_dir[PATH_MAX];   /* runtime_dir, default /run/vmms */
	char socket_group[64];        /* socket_group, default vmms ("" none) */
	char schema[PATH_MAX];        /* domain_schema, default the libvirt RelaxNG schema */
	uid_t worker_uid_min;         /* worker_uid_min, default 200000 */
	uid_t worker_uid_max;         /* worker_uid_max, default 265535 */
	unsigned max_clients;         /* max_clients, default 64 (1-4096) */
	size_t max_line;              /* max_line, default 1048576 (1 KiB-16 MiB) */
	size_t client_queue_max;      /* client_queue_max, default 4194304 (64 KiB-256 MiB) */
	int log_level;                /* log_level: err, warning, info, debug */
	char worker_path[PATH_MAX];   /* worker_path, default "": vmms-worker beside vmmsd's own program */
	size_t console_log_max;       /* console_log_max, default 1048576 (4 KiB-1 GiB) per file */
	unsigned console_log_keep;    /* console_log_keep, default 5 rotated files (0-100) */
};

void vmmsd_config_defaults(struct vmmsd_config *c);
/* Read path; -ENOENT when it does not exist, -EINVAL with err ("FILE:LINE: ...") when wrong. */
int vmmsd_config_load(struct vmmsd_config *c, const char *path, char *err, size_t errlen);
/* Parse text (for tests). */
int vmmsd_config_parse(struct vmmsd_config *c, const char *name, const char *text, char *err, size_t errlen);

#endif
