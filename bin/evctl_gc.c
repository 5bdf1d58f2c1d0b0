/*
 * evctl_gc.c: apply retention now, and delete a durable subscription.
 */
#include "config.h"

#include <stdio.h>

#include "evctl.h"
#include "tool.h"

int
ctl_gc(struct ctl *ctl, int argc, char **argv)
{
	struct ev_err err = { 0 };
	struct ctl_args a;

	ctl_parse(ctl, &argc, &argv, "", &a);
	if (argc != 0)
		tool_exit(EX_USAGE, "gc takes no arguments");
	if (ev_spool_gc(ctl->bus, &err))
		tool_die(&err);
	return 0;
}

int
ctl_rm(struct ctl *ctl, int argc, char **argv)
{
	struct ev_err err = { 0 };
	struct ctl_args a;

	ctl_parse(ctl, &argc, &argv, "", &a);
	if (argc != 1)
		tool_exit(EX_USAGE, "rm takes one subscription name");
	if (ev_spool_sub_delete(ctl->bus, argv[0], &err))
		tool_die(&err);
	printf("removed subscription %s\n", argv[0]);
	return 0;
}
