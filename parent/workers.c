// SPDX-License-Identifier: GPL-2.0-only
/* Worker manager placeholder: every request is refused until worker spawning is implemented. */
#include "parent/workers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct workers {
	struct worker_config cfg;
	workers_state_fn cb;
	void *userdata;
};

int workers_new(const struct worker_config *cfg, workers_state_fn cb, void *userdata,
		struct workers **ret)
{
	struct workers *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->cfg = *cfg;
	w->cb = cb;
	w->userdata = userdata;
	*ret = w;
	return 0;
}

void workers_free(struct workers *w)
{
	free(w);
}

int workers_request(struct workers *w, struct vm_entry *vm, enum worker_op op, char *err,
		    size_t errlen)
{
	/* No state change is reported: nothing happened. */
	snprintf(err, errlen, "NotSupported: starting VMs through vmmsd is not implemented yet");
	return -EOPNOTSUPP;
}

int workers_fd(struct workers *w)
{
	return -1;
}

void workers_dispatch(struct workers *w)
{
}
