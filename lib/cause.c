/*
 * cause.c: how a chain is recorded. A handler runs with EV_ID (the event it
 * handles) and EV_CORRELATION (the first event of its chain) in its
 * environment; whatever it publishes names them as causationid and
 * correlationid, so evctl trace can rebuild the chain.
 */
#include "config.h"

#include <stdlib.h>

#include "internal.h"

void
ev_event_inherit_cause(struct ev_event *ev)
{
	const char *cause = getenv("EV_ID"), *corr = getenv("EV_CORRELATION");

	if (cause != NULL && *cause == '\0')
		cause = NULL;
	if (corr == NULL || *corr == '\0')
		corr = cause;
	ev->causationid = cause;
	ev->correlationid = corr;
}
