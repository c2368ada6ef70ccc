// SPDX-License-Identifier: GPL-2.0-only
/* Persistent VM registry: atomic writes (tmp, fsync, rename, fsync dir); corrupt entries are reported and kept. */
#include "parent/registry.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define VMJSON_MAX (64u * 1024)

struct registry {
	int vms_fd;                 /* <state_dir>/vms */
	struct domparser parser;
	struct vm_entry **vms;
	size_t nvms;
	char **broken;
	size_t nbroken;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool registry_name_valid(const char *name)
{
	size_t n = strnlen(name, VM_NAME_MAX + 1);

	if (n == 0 || n > VM_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
			return false;
	return true;
}

static bool id_valid(const char *s)
{
	if (strlen(s) != VM_ID_LEN)
		return false;
	for (int i = 0; i < VM_ID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static void id_format(const uint8_t u[16], char out[VM_ID_LEN + 1])
{
	snprintf(out, VM_ID_LEN + 1,
		 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static int id_generate(char out[VM_ID_LEN + 1])
{
	uint8_t u[16];

	if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
		return -errno ? -errno : -EIO;
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	id_format(u, out);
	return 0;
}

static void entry_free(struct registry *r, struct vm_entry *vm)
{
	if (!vm)
		return;
	if (vm->cfg)
		r->parser.free(vm->cfg);
	free(vm->xml);
	free(vm);
}

/* Write name in dirfd atomically: temp file, fsync, rename over, fsync the directory. */
static int write_atomic(int dirfd, const char *name, const void *data, size_t len)
{
	char tmp[VM_NAME_MAX + 32];
	int fd, r;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	r = write_full(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return r;
	}
	return fsync(dirfd) < 0 ? -errno : 0;
}

static int state_write(int dirfd, const struct vm_entry *vm)
{
	json_t *j;
	char *s;
	int r;

	j = json_pack("{s:s, s:s, s:I, s:i, s:i, s:s, s:I}", "name", vm->name, "id", vm->id,
		      "created", (json_int_t)vm->created, "state", vm->last_state, "health", vm->health,
		      "reason", vm->reason, "last_change", (json_int_t)vm->last_change);
	if (!j)
		return -ENOMEM;
	if (vm->uid)
		json_object_set_new(j, "uid", json_integer((json_int_t)vm->uid));
	if (vm->worker_pid > 0)
		json_object_set_new(j, "pid", json_integer(vm->worker_pid));
	s = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	if (!s)
		return -ENOMEM;
	r = write_atomic(dirfd, "vm.json", s, strlen(s));
	free(s);
	return r;
}

__attribute__((format(printf, 4, 5)))
static void report(registry_report_fn fn, void *ud, const char *name, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fn)
		fn(name, msg, ud);
}

static int read_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len)
{
	void *buf;
	size_t len;
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = read_fd_max(fd, max, &buf, &len);
	close(fd);
	if (r < 0)
		return r;
	/* NUL-terminate: the XML parser and jansson get a bounded string either way. */
	{
		char *nb = realloc(buf, len + 1);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		nb[len] = '\0';
		*ret = nb;
	}
	*ret_len = len;
	return 0;
}

static int add_broken(struct registry *r, const char *name)
{
	char **nb = realloc(r->broken, (r->nbroken + 1) * sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	r->broken = nb;
	nb[r->nbroken] = strdup(name);
	if (!nb[r->nbroken])
		return -ENOMEM;
	r->nbroken++;
	return 0;
}

static int add_entry(struct registry *r, struct vm_entry *vm)
{
	struct vm_entry **nv;

	if (r->nvms >= REGISTRY_MAX_VMS)
		return -ENOSPC;
	nv = realloc(r->vms, (r->nvms + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	r->vms = nv;
	nv[r->nvms++] = vm;
	return 0;
}

/* Load vms/<name>. Both files are hostile input: bounded reads, every field checked. */
static int load_one(struct registry *r, const char *name, registry_report_fn rep, void *ud)
{
	struct vm_entry *vm = NULL;
	char err[256] = "", *js = NULL;
	size_t jslen;
	json_t *j = NULL;
	json_error_t jerr;
	int dfd, rc;
	const char *id, *reason;
	json_int_t created, lc;
	int state, health;

	dfd = openat(r->vms_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		report(rep, ud, name, "cannot open directory: %s", strerror(errno));
		return add_broken(r, name);
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		close(dfd);
		return -ENOMEM;
	}
	rc = read_at(dfd, "domain.xml", DOMXML_MAX_SIZE, &vm->xml, &vm->xml_len);
	if (rc < 0) {
		report(rep, ud, name, "domain.xml: %s", rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
		goto broken;
	}
	rc = r->parser.parse(vm->xml, vm->xml_len, r->parser.schema, &vm->cfg, err, sizeof(err));
	if (rc < 0) {
		vm->cfg = NULL;
		report(rep, ud, name, "domain.xml: %s", err[0] ? err : strerror(-rc));
		goto broken;
	}
	if (strcmp(vm->cfg->name, name) != 0) {
		report(rep, ud, name, "domain.xml names the domain '%s', not the directory's name",
		       vm->cfg->name);
		goto broken;
	}
	rc = read_at(dfd, "vm.json", VMJSON_MAX, &js, &jslen);
	if (rc < 0) {
		report(rep, ud, name, "vm.json: %s", rc == -EFBIG ? "larger than 64 KiB" : strerror(-rc));
		goto broken;
	}
	j = json_loadb(js, jslen, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		report(rep, ud, name, "vm.json: %s", jerr.text);
		goto broken;
	}
	reason = "";
	if (json_unpack(j, "{s:s, s:I, s:i, s:i, s?s, s:I}", "id", &id, "created", &created,
			"state", &state, "health", &health, "reason", &reason, "last_change", &lc) < 0 ||
	    !id_valid(id) || created < 0 || lc < 0) {
		report(rep, ud, name, "vm.json: %s", "missing or malformed fields (id, created, state, health, last_change)");
		goto broken;
	}
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	snprintf(vm->id, sizeof(vm->id), "%s", id);
	for (char *c = vm->id; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	vm->created = created;
	vm->last_state = state;
	vm->health = health;
	vm->last_change = lc;
	snprintf(vm->reason, sizeof(vm->reason), "%s", reason);
	{
		/* Optional (written by the worker manager); a bad value is dropped, not trusted. */
		json_t *u = json_object_get(j, "uid"), *p = json_object_get(j, "pid");

		if (json_is_integer(u) && json_integer_value(u) > 0 && json_integer_value(u) < 0xffffffffLL)
			vm->uid = (uid_t)json_integer_value(u);
		if (json_is_integer(p) && json_integer_value(p) > 1 && json_integer_value(p) < (1 << 22))
			vm->worker_pid = (pid_t)json_integer_value(p);
	}
	if (vm->cfg->has_uuid) {
		char want[VM_ID_LEN + 1];

		id_format(vm->cfg->uuid, want);
		if (strcmp(want, vm->id) != 0) {
			report(rep, ud, name, "vm.json id does not match the <uuid> in domain.xml%s", "");
			goto broken;
		}
	}
	if (registry_find(r, vm->id)) {
		report(rep, ud, name, "id %s is used by another VM", vm->id);
		goto broken;
	}
	json_decref(j);
	free(js);
	close(dfd);
	rc = add_entry(r, vm);
	if (rc < 0)
		entry_free(r, vm);
	return rc;
broken:
	json_decref(j);
	free(js);
	entry_free(r, vm);
	close(dfd);
	return add_broken(r, name);
}

int registry_open(const char *state_dir, const struct domparser *parser, registry_report_fn rep,
		  void *userdata, struct registry **ret)
{
	struct registry *r;
	int sfd, rc = 0;
	DIR *d;
	struct dirent *de;

	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return -errno;
	if (mkdirat(sfd, "vms", 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		close(sfd);
		return rc;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		close(sfd);
		return -ENOMEM;
	}
	r->parser = *parser;
	r->vms_fd = openat(sfd, "vms", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	close(sfd);
	if (r->vms_fd < 0) {
		rc = -errno;
		free(r);
		return rc;
	}
	d = fdopendir(dup(r->vms_fd));
	if (!d) {
		rc = -errno;
		registry_free(r);
		return rc;
	}
	while ((de = readdir(d))) {
		/* Dot names are ours in flight (.new-*, .removed-*, temp files): never entries. */
		if (de->d_name[0] == '.')
			continue;
		if (!registry_name_valid(de->d_name)) {
			report(rep, userdata, de->d_name, "%s", "not a valid VM name; ignored");
			continue;
		}
		rc = load_one(r, de->d_name, rep, userdata);
		if (rc < 0)
			break;
	}
	closedir(d);
	if (rc < 0) {
		registry_free(r);
		return rc;
	}
	*ret = r;
	return 0;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nvms; i++)
		entry_free(r, r->vms[i]);
	free(r->vms);
	for (size_t i = 0; i < r->nbroken; i++)
		free(r->broken[i]);
	free(r->broken);
	if (r->vms_fd >= 0)
		close(r->vms_fd);
	free(r);
}

size_t registry_count(const struct registry *r) { return r->nvms; }

struct vm_entry *registry_at(struct registry *r, size_t i)
{
	return i < r->nvms ? r->vms[i] : NULL;
}

struct vm_entry *registry_find(struct registry *r, const char *key)
{
	for (size_t i = 0; i < r->nvms; i++)
		if (strcmp(r->vms[i]->name, key) == 0)
			return r->vms[i];
	for (size_t i = 0; i < r->nvms; i++)
		if (strcasecmp(r->vms[i]->id, key) == 0)
			return r->vms[i];
	return NULL;
}

bool registry_is_broken(const struct registry *r, const char *name)
{
	for (size_t i = 0; i < r->nbroken; i++)
		if (strcmp(r->broken[i], name) == 0)
			return true;
	return false;
}

/* Parse and check xml into a fresh entry (not yet stored). */
static int entry_from_xml(struct registry *r, const char *xml, size_t len, struct vm_entry **ret,
			  char *err, size_t errlen)
{
	struct vm_entry *vm;
	int rc;

	if (len > DOMXML_MAX_SIZE) {
		snprintf(err, errlen, "definition larger than %u bytes", DOMXML_MAX_SIZE);
		return -EINVAL;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->xml = malloc(len + 1);
	if (!vm->xml) {
		free(vm);
		return -ENOMEM;
	}
	memcpy(vm->xml, xml, len);
	vm->xml[len] = '\0';
	vm->xml_len = len;
	err[0] = '\0';
	rc = r->parser.parse(vm->xml, len, r->parser.schema, &vm->cfg, err, errlen);
	if (rc < 0) {
		vm->cfg = NULL;
		if (!err[0])
			snprintf(err, errlen, "definition rejected: %s", strerror(-rc));
		entry_free(r, vm);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	if (!registry_name_valid(vm->cfg->name)) {
		snprintf(err, errlen, "domain name '%s' is not usable: use 1-%d of A-Z a-z 0-9 . _ -, "
			 "not starting with '.' or '-'", vm->cfg->name, VM_NAME_MAX);
		entry_free(r, vm);
		return -EINVAL;
	}
	snprintf(vm->name, sizeof(vm->name), "%s", vm->cfg->name);
	*ret = vm;
	return 0;
}

/* Empties and removes a VM directory: every regular file in it (definition, state, console
 * logs) goes; symlinks are removed, never followed; subdirectories are left (rmdir then fails
 * and the caller reports it). */
static void remove_tree_files(int parent_fd, const char *dir)
{
	int fd = openat(parent_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	struct dirent *de;
	DIR *d;

	if (fd >= 0) {
		d = fdopendir(fd);
		if (!d) {
			close(fd);
		} else {
			while ((de = readdir(d))) {
				if (de->d_type == DT_REG || de->d_type == DT_LNK || de->d_type == DT_UNKNOWN)
					(void)unlinkat(dirfd(d), de->d_name, 0);
			}
			closedir(d);
		}
	}
	(void)unlinkat(parent_fd, dir, AT_REMOVEDIR);
}

/* renameat2(RENAME_NOREPLACE), with a fallback for file systems that lack it (9p, some
 * network file systems answer EINVAL): refuse an existing target, then rename. The registry
 * is only changed by vmmsd's one thread, so the check cannot race another define. */
static int rename_noreplace(int dfd, const char *from, const char *to)
{
	if (renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (faccessat(dfd, to, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	return renameat(dfd, from, dfd, to);
}

int registry_define(struct registry *r, const char *xml, size_t len, struct vm_entry **ret,
		    char *err, size_t errlen)
{
	struct vm_entry *vm;
	char tmpdir[VM_NAME_MAX + 16];
	int rc, dfd;

	rc = entry_from_xml(r, xml, len, &vm, err, errlen);
	if (rc < 0)
		return rc;
	if (registry_find(r, vm->name) || registry_is_broken(r, vm->name)) {
		snprintf(err, errlen, "a VM named '%s' already exists%s", vm->name,
			 registry_is_broken(r, vm->name) ? " (its stored entry is damaged; repair or remove it by hand)" : "");
		entry_free(r, vm);
		return -EEXIST;
	}
	if (vm->cfg->has_uuid)
		id_format(vm->cfg->uuid, vm->id);
	else if ((rc = id_generate(vm->id)) < 0) {
		snprintf(err, errlen, "cannot generate an id: %s", strerror(-rc));
		entry_free(r, vm);
		return rc;
	}
	if (registry_find(r, vm->id)) {
		snprintf(err, errlen, "uuid %s is already used by VM '%s'", vm->id, registry_find(r, vm->id)->name);
		entry_free(r, vm);
		return -EEXIST;
	}
	if (r->nvms >= REGISTRY_MAX_VMS) {
		snprintf(err, errlen, "too many VMs (at most %d)", REGISTRY_MAX_VMS);
		entry_free(r, vm);
		return -ENOSPC;
	}
	vm->created = vm->last_change = now_ms();
	vm->last_state = 3;
	vm->health = 5;

	/* Build the entry in a hidden directory, then rename it into place in one step. */
	snprintf(tmpdir, sizeof(tmpdir), ".new-%s", vm->name);
	remove_tree_files(r->vms_fd, tmpdir);
	if (mkdirat(r->vms_fd, tmpdir, 0700) < 0) {
		rc = -errno;
		goto fail;
	}
	dfd = openat(r->vms_fd, tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		rc = -errno;
		goto fail_dir;
	}
	rc = write_atomic(dfd, "domain.xml", vm->xml, vm->xml_len);
	if (rc == 0)
		rc = state_write(dfd, vm);
	close(dfd);
	if (rc < 0)
		goto fail_dir;
	if (rename_noreplace(r->vms_fd, tmpdir, vm->name) < 0) {
		rc = -errno;
		goto fail_dir;
	}
	if (fsync(r->vms_fd) < 0) {
		rc = -errno;
		/* The rename happened: keep the entry, the next fsync will make it durable. */
	}
	rc = add_entry(r, vm);
	if (rc < 0) {
		entry_free(r, vm);
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	*ret = vm;
	return 0;
fail_dir:
	remove_tree_files(r->vms_fd, tmpdir);
fail:
	snprintf(err, errlen, "cannot store VM '%s': %s%s", vm->name, strerror(-rc),
		 rc == -EEXIST || rc == -ENOTEMPTY ? " (a directory of that name exists)" : "");
	entry_free(r, vm);
	return rc == -ENOTEMPTY ? -EEXIST : rc;
}

int registry_replace(struct registry *r, struct vm_entry *vm, const char *xml, size_t len,
		     char *err, size_t errlen)
{
	struct vm_entry *nv;
	char id[VM_ID_LEN + 1];
	int rc, dfd;

	rc = entry_from_xml(r, xml, len, &nv, err, errlen);
	if (rc < 0)
		return rc;
	if (strcmp(nv->name, vm->name) != 0) {
		snprintf(err, errlen, "the new definition names '%s'; renaming VM '%s' is not supported",
			 nv->name, vm->name);
		entry_free(r, nv);
		return -EINVAL;
	}
	if (nv->cfg->has_uuid) {
		id_format(nv->cfg->uuid, id);
		if (strcmp(id, vm->id) != 0) {
			snprintf(err, errlen, "the new definition has uuid %s; VM '%s' has %s", id,
				 vm->name, vm->id);
			entry_free(r, nv);
			return -EINVAL;
		}
	}
	dfd = openat(r->vms_fd, vm->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the entry of VM '%s': %s", vm->name, strerror(-rc));
		entry_free(r, nv);
		return rc;
	}
	rc = write_atomic(dfd, "domain.xml", nv->xml, nv->xml_len);
	close(dfd);
	if (rc < 0) {
		snprintf(err, errlen, "cannot store VM '%s': %s", vm->name, strerror(-rc));
		entry_free(r, nv);
		return rc;
	}
	/* Swap the definition into the existing entry so pointers to vm stay valid. */
	free(vm->xml);
	r->parser.free(vm->cfg);
	vm->xml = nv->xml;
	vm->xml_len = nv->xml_len;
	vm->cfg = nv->cfg;
	nv->xml = NULL;
	nv->cfg = NULL;
	entry_free(r, nv);
	return 0;
}

int registry_save_state(struct registry *r, struct vm_entry *vm)
{
	int dfd, rc;

	dfd = openat(r->vms_fd, vm->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return -errno;
	rc = state_write(dfd, vm);
	close(dfd);
	return rc;
}

static int side_file_open(struct registry *r, const struct vm_entry *vm, const char *file)
{
	int dfd;

	if (!file || !registry_name_valid(file) || strcmp(file, "vm.json") == 0 || strcmp(file, "domain.xml") == 0)
		return -EINVAL;
	dfd = openat(r->vms_fd, vm->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return dfd < 0 ? -errno : dfd;
}

int registry_write_file(struct registry *r, const struct vm_entry *vm, const char *file, const void *data,
			size_t len)
{
	int dfd = side_file_open(r, vm, file), rc = 0;

	if (dfd < 0)
		return dfd;
	if (data) {
		rc = write_atomic(dfd, file, data, len);
	} else if (unlinkat(dfd, file, 0) < 0) {
		rc = errno == ENOENT ? 0 : -errno;
	} else if (fsync(dfd) < 0) {
		rc = -errno;
	}
	close(dfd);
	return rc;
}

int registry_read_file(struct registry *r, const struct vm_entry *vm, const char *file, size_t max, char **ret,
		       size_t *ret_len)
{
	int dfd = side_file_open(r, vm, file), rc;

	if (dfd < 0)
		return dfd;
	rc = read_at(dfd, file, max, ret, ret_len);
	close(dfd);
	return rc;
}

int registry_remove(struct registry *r, struct vm_entry *vm)
{
	char gone[VM_NAME_MAX + VM_ID_LEN + 16];
	size_t i;

	for (i = 0; i < r->nvms && r->vms[i] != vm; i++)
		;
	if (i == r->nvms)
		return -ENOENT;
	/* Hide the entry with one rename first, so a crash never leaves half an entry loaded. */
	snprintf(gone, sizeof(gone), ".removed-%s-%s", vm->name, vm->id);
	if (renameat(r->vms_fd, vm->name, r->vms_fd, gone) < 0)
		return -errno;
	(void)fsync(r->vms_fd);
	remove_tree_files(r->vms_fd, gone);
	memmove(r->vms + i, r->vms + i + 1, (r->nvms - i - 1) * sizeof(*r->vms));
	r->nvms--;
	entry_free(r, vm);
	return 0;
}
