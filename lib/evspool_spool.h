/*
 * evspool_spool.h: what an administration tool (evctl) needs to know about
 * the file spool backend: its directories and registry. By nature this is
 * not backend-neutral; the ev_bus_* / ev_sub_* interface in evspool.h is.
 * Every function fails with EX_USAGE on a bus that is not a spool.
 */
#ifndef EVSPOOL_SPOOL_PUBLIC_H
#define EVSPOOL_SPOOL_PUBLIC_H

#include "evspool.h"

/* A descriptor (owned by the bus; do not close) of a spool directory:
 * "" the spool itself, "log", "ids", "tmp", "subs", "eph". */
int ev_spool_dirfd(struct ev_bus *bus, const char *which);

struct ev_spool_sub {
	char name[EV_NAME_MAX + 1];
	char dir[EV_NAME_MAX + 32];    /* relative to the spool: subs/NAME */
	int ephemeral;
	char **patterns;
	int npatterns;
};

/* The subscriptions of the registry (subs.idx). */
int ev_spool_subs(struct ev_bus *bus, struct ev_spool_sub **subs, int *n,
    struct ev_err *err);
void ev_spool_subs_free(struct ev_spool_sub *subs, int n);
/* The pid of the evsub serving subscription DIR, 0 if none (its lock is
 * free), -1 if unknown. */
long ev_spool_sub_holder(struct ev_bus *bus, const char *dir);
/* Remove subscription NAME: refused with EX_TEMPFAIL while an evsub holds
 * it; EX_NOINPUT if there is no such subscription. */
int ev_spool_sub_delete(struct ev_bus *bus, const char *name,
    struct ev_err *err);
/* Retention and clean-up now (see gc.c). */
int ev_spool_gc(struct ev_bus *bus, struct ev_err *err);
/* Create the spool at PATH; with GROUP, a spool the group shares. */
int ev_spool_init(const char *path, const char *group, struct ev_err *err);
/* The file mode new files of this spool get. */
mode_t ev_spool_file_mode(struct ev_bus *bus);

#endif
