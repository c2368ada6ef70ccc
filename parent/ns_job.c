// SPDX-License-Identifier: GPL-2.0-only
/* Msvm_ConcreteJob: long-running method calls (ReturnValue 4096) and their outcome. */
#include "parent/ns.h"

#include <errno.h>

const struct ns_class ns_class_concrete_job;

static int job_enumerate(struct ns *ns, const struct vm_entry *only, json_t *arr)
{
	if (only)
		return 0;
	for (size_t i = 0; i < ns->njobs; i++) {
		const struct ns_job *j = &ns->jobs[i];
		json_t *o = ns_instance_new(&ns_class_concrete_job, j->id);

		if (!o)
			return -ENOMEM;
		json_object_set_new(o, "Caption", json_string(j->caption));
		json_object_set_new(o, "JobState", json_integer(j->state));
		json_object_set_new(o, "PercentComplete", json_integer(j->percent));
		json_object_set_new(o, "ErrorCode", json_integer(j->error_code));
		json_object_set_new(o, "ErrorDescription", j->error_desc[0] ? json_string(j->error_desc) : json_null());
		json_object_set_new(o, "StartTime", ns_datetime(j->start));
		json_object_set_new(o, "TimeOfLastStateChange", ns_datetime(j->end ? j->end : j->start));
		if (json_array_append_new(arr, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

static const struct ns_prop job_props[] = {
	{ "InstanceID", "string", "the job's GUID (key)" },
	{ "Caption", "string", "what the job does" },
	{ "JobState", "uint16", "4 Running, 7 Completed, 10 Exception" },
	{ "PercentComplete", "uint16", "0 to 100" },
	{ "ErrorCode", "uint16", "0 on success" },
	{ "ErrorDescription", "string", "why the job failed, null on success" },
	{ "StartTime", "datetime", "when the job started" },
	{ "TimeOfLastStateChange", "datetime", "when JobState last changed" },
	{ NULL },
};

const struct ns_class ns_class_concrete_job = {
	.name = "Msvm_ConcreteJob",
	.superclass = "CIM_ConcreteJob",
	.description = "a long-running operation",
	.key = "InstanceID",
	.props = job_props,
	.enumerate = job_enumerate,
};
