/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The management namespace root/virtualization/v2: class registry, instances as jansson
 * objects, object paths, queries, methods, events, and the JSON-RPC dispatcher over it.
 */
#ifndef VMMS_PARENT_NS_H
#define VMMS_PARENT_NS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parent/registry.h"
#include "parent/wql.h"
#include "parent/workers.h"

#define NS_NAME "root/virtualization/v2"
#define NS_MAX_SUBS 1024           /* subscriptions over all clients */
#define NS_MAX_SUBS_PER_CLIENT 64
#define NS_MAX_JOBS 64             /* finished jobs are forgotten oldest first */
#define NS_PATH_MAX_KEYS 4
#define NS_PATH_MAX 1024

/* Stable error names; the JSON-RPC error carries the number and data.name. */
enum ns_errcode {
	NS_ERR_PARSE = 1,           /* ParseError        -32700 */
	NS_ERR_INVALID_REQUEST,     /* InvalidRequest    -32600 */
	NS_ERR_METHOD_NOT_FOUND,    /* MethodNotFound    -32601 */
	NS_ERR_INVALID_PARAMS,      /* InvalidParams     -32602 */
	NS_ERR_INTERNAL,            /* InternalError     -32603 */
	NS_ERR_NOT_FOUND,           /* NotFound          -32001 */
	NS_ERR_INVALID_PARAMETER,   /* InvalidParameter  -32002 */
	NS_ERR_INVALID_STATE,       /* InvalidStateTransition -32003 */
	NS_ERR_ALREADY_EXISTS,      /* AlreadyExists     -32004 */
	NS_ERR_ACCESS_DENIED,       /* AccessDenied      -32005 */
	NS_ERR_NOT_SUPPORTED,       /* NotSupported      -32006 */
	NS_ERR_INVALID_QUERY,       /* InvalidQuery      -32007 */
	NS_ERR_INVALID_PATH,        /* InvalidObjectPath -32008 */
	NS_ERR_FAILED,              /* Failed            -32009 */
	NS_ERR_LIMIT,               /* LimitExceeded     -32010 */
};

struct ns_error {
	enum ns_errcode code;
	char message[512];
};

/* Record an error; returns -1 so methods can `return ns_fail(e, ...)`. */
int ns_fail(struct ns_error *e, enum ns_errcode code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *ns_errcode_name(enum ns_errcode code);
int ns_errcode_number(enum ns_errcode code);
/* A JSON-RPC 2.0 error response (id may be NULL for null). New reference. */
json_t *ns_rpc_error(json_t *id, enum ns_errcode code, const char *message);

struct ns;

struct ns_prop {
	const char *name;
	const char *type;         /* "string", "uint16", "uint32", "uint64", "boolean", "datetime", "string[]", "ref", "object" */
	const char *description;
};

struct ns_param {
	const char *name;
	const char *type;
	bool out;                 /* an output parameter */
	const char *description;
};

/*
 * A method. inst is the instance the path named (NULL for a call on the class); params is
 * the client's object (hostile: check every member); out receives output parameters. Returns
 * the method's ReturnValue (0 done, 4096 job started), or -1 with e set.
 */
typedef int (*ns_method_fn)(struct ns *ns, const json_t *inst, const json_t *params, json_t *out,
			    struct ns_error *e);

struct ns_method {
	const char *name;
	const char *description;
	const struct ns_param *params;   /* ends with {NULL} */
	ns_method_fn fn;
};

struct ns_class {
	const char *name;
	const char *superclass;
	const char *description;
	const char *key;                  /* key property of the object path */
	const struct ns_prop *props;      /* ends with {NULL} */
	const struct ns_method *methods;  /* ends with {NULL}, or NULL */
	/* Append this class's instances to arr: those of vm, or all when vm is NULL (a class not
	 * tied to VMs ignores vm only when vm is NULL and adds nothing otherwise). 0 or -errno. */
	int (*enumerate)(struct ns *ns, const struct vm_entry *vm, json_t *arr);
};

/* The class table (parent/ns_classes.c). */
extern const struct ns_class *const ns_classes[];
extern const size_t ns_nclasses;

struct ns_path {
	char cls[64];
	size_t nkeys;
	struct {
		char name[64];
		json_t *value;        /* string or integer */
	} keys[NS_PATH_MAX_KEYS];
};

/* Client-visible callback: deliver a notification object to client (takes no reference). */
typedef void (*ns_notify_fn)(void *userdata, void *client, json_t *notification);

struct ns_sub {
	uint64_t id;
	void *client;
	struct wql_query *q;
};

struct ns_job {
	char id[VM_ID_LEN + 1];
	char caption[128];
	int state;                /* JobState: 4 Running, 7 Completed, 10 Exception */
	int percent;
	int error_code;
	char error_desc[256];
	int64_t start;            /* ms since the epoch */
	int64_t end;
};

struct guests;

struct ns {
	struct registry *reg;
	struct workers *workers;
	ns_notify_fn notify;
	void *notify_ud;
	struct ns_sub *subs;
	size_t nsubs;
	uint64_t next_sub;
	struct ns_job jobs[NS_MAX_JOBS];
	size_t njobs;
	char hostname[256];
	int64_t started;
	/* AttachConsole (parent/console.h): set by the server after ns_init; NULL answers
	 * NotSupported. Checks the request (0, or -1 with e set) and arranges for client's
	 * connection to become vm's console stream right after the reply. */
	int (*console_attach)(void *userdata, void *client, const char *vm, bool write, bool force,
			      struct ns_error *e);
	/* Called when a VM is destroyed: drops its console clients. Optional. */
	void (*console_forget)(void *userdata, const char *vm);
	/* The guest services manager (parent/guest.h); NULL: the guest additions classes report
	 * No Contact and their methods answer NotSupported. Set by the server after ns_init. */
	struct guests *guests;
	/* AttachGuestChannel: checks (0, or -1 with e set) and arranges for client's connection
	 * to become a guest channel of vm right after the reply. NULL answers NotSupported. */
	int (*guest_attach)(void *userdata, void *client, const char *vm, struct ns_error *e);
};

int ns_init(struct ns *ns, struct registry *reg, struct workers *workers, ns_notify_fn notify,
	    void *userdata);
void ns_fini(struct ns *ns);

/*
 * Handle one JSON-RPC line from client (an opaque handle used for subscriptions). Returns the
 * response object (new reference), or NULL when none is due (a notification from the client).
 */
json_t *ns_rpc_handle(struct ns *ns, void *client, const char *line, size_t len);
/* Forget client's subscriptions (it disconnected). */
void ns_client_gone(struct ns *ns, void *client);

/* Worker state callback target: updates and persists the VM and emits a modification event. */
void ns_vm_state_changed(struct ns *ns, const char *vm_name, int enabled_state, int health,
			 pid_t pid, const char *reason);

/* Object paths: `Class.Key="value"[,Key2=123]`; with allow_class, a bare `Class` too. */
int ns_path_parse(const char *text, bool allow_class, struct ns_path *ret, struct ns_error *e);
void ns_path_clear(struct ns_path *p);
/* `Class.Key="value"` with quotes and backslashes escaped, into a new json string. */
json_t *ns_path_make(const char *cls, const char *key, const char *value);

const struct ns_class *ns_class_find(const char *name);
bool ns_isa(const char *cls, const char *base, void *userdata);
/* New instance object with __CLASS, __PATH and the key property set. */
json_t *ns_instance_new(const struct ns_class *c, const char *keyval);
/* CIM datetime "yyyymmddHHMMSS.mmmmmm+000" from ms since the epoch (UTC). */
json_t *ns_datetime(int64_t ms);
int64_t ns_now_ms(void);

/* Every instance of cls (and its subclasses). NULL with e set on failure. */
json_t *ns_enumerate(struct ns *ns, const char *cls, struct ns_error *e);
/* The instance a path names. NULL with e set (NotFound, InvalidObjectPath). */
json_t *ns_get_instance(struct ns *ns, const char *path, struct ns_error *e);
/* The VM an instance belongs to, or NULL. */
struct vm_entry *ns_instance_vm(struct ns *ns, const json_t *inst);

/* Emit __Instance{Creation,Modification,Deletion}Event for target (and previous). */
void ns_emit(struct ns *ns, const char *event_class, const json_t *target, const json_t *previous);

/* Jobs: a new running job (NULL when the table is full of running jobs). */
struct ns_job *ns_job_new(struct ns *ns, const char *caption);
void ns_job_finish(struct ns *ns, struct ns_job *job, int error_code, const char *error_desc);
json_t *ns_job_path(const struct ns_job *job);

/* The heartbeat of vm changed: emits __InstanceModificationEvent for its
 * Msvm_HeartbeatComponent (parent/ns_guest.c). */
void ns_guest_heartbeat_changed(struct ns *ns, const char *vm, int old, int cur);
/* Orderly shutdown of vm as a job (parent/guest.h guests_shutdown): 4096 with out.Job, or -1
 * with e set. Used by InitiateShutdown and RequestStateChange(4). */
int ns_guest_shutdown(struct ns *ns, struct vm_entry *vm, bool force, unsigned timeout_s, const char *reason,
		      json_t *out, struct ns_error *e);
/* Msvm_VirtualSystemManagementService.{Add,Modify,Remove}KvpItems (parent/ns_guest.c). */
int ns_vsms_add_kvp(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e);
int ns_vsms_modify_kvp(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e);
int ns_vsms_remove_kvp(struct ns *ns, const json_t *inst, const json_t *params, json_t *out, struct ns_error *e);
extern const struct ns_param ns_vsms_kvp_params[];

/* Per-class instance builders used across files. */
json_t *ns_cs_instance(struct ns *ns, const struct vm_entry *vm);

#endif
