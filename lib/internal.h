/*
 * internal.h: what the library's files share and the public header does not
 * show: the base structs every backend embeds first, and the small I/O
 * helpers that loop over short reads and writes.
 *
 * Low-level helpers in this file follow libc: they return -1 and leave errno
 * set. Library entry points turn that into an ev_err with a status.
 */
#ifndef EVSPOOL_INTERNAL_H
#define EVSPOOL_INTERNAL_H

#include "evspool.h"

struct ev_bus {
	const struct ev_backend_ops *ops;
	const char *location;       /* for ev_bus_location() */
	size_t payload_max;         /* for ev_bus_payload_max() */
};

struct ev_batch {
	const struct ev_backend_ops *ops;
};

struct ev_sub {
	const struct ev_backend_ops *ops;
	const char *name;           /* for ev_sub_name() */
};

/* Read a whole small file relative to DIRFD, without following a symlink in
 * its last component, into a fresh NUL-terminated buffer of at most MAX
 * bytes (EFBIG beyond). */
int ev_read_file_at(int dirfd, const char *name, size_t max, char **out,
    size_t *outlen);
/* Write NAME in DIRFD atomically: a temporary name, fsync when SYNC, rename
 * over NAME, fsync of the directory when SYNC. */
int ev_write_file_atomic(int dirfd, const char *name, const void *buf,
    size_t len, mode_t mode, int sync);

#endif
