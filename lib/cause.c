/*
 * cause.c: how a chain is recorded. A handler runs with EV_ID (the event it
 * handles) and EV_CORRELATION (the first event of its chain) in its
 * environment; whatever it publishes names them as causationid and
 * correlationid, and EV_SUBSCRIPTION as subscription, so evctl trace and
 * graph can rebuild the chain and who handled each step.
 */
#include "config.h"

#include <stdlib.h>

#include "internal.h"

void
ev_event_inherit_cause(struct ev_event *ev)
{
	const char *cause = getenv("EV_ID"), *corr = getenv("EV_CORRELATION");
	const char *sub = getenv("EV_SUBSCRIPTION"), *why;

	if (cause != NULL && *cause == '\0')
		cause = NULL;
	if (corr == NULL || *corr == '\0')
		corr = cause;
	ev->causationid = cause;
	ev->correlationid = corr;
	ev->subscription = cause != NULL && sub != NULL &&
	    ev_name_valid(sub, &why) == 0 ? sub : NULL;
}
