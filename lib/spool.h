/*
 * spool.h: the file spool backend, shared by its files (spool.c: opening
 * and creating; subs.c: the registry of subscriptions; publish.c; consume.c;
 * gc.c). The layout and its invariants are described in spool.c and in
 * man/evspool.7, which is the contract.
 */
#ifndef EVSPOOL_SPOOL_H
#define EVSPOOL_SPOOL_H

#include <sys/stat.h>

#include "internal.h"

struct spool_config {
	int64_t log_max_age_ms;     /* retention of the log, by age */
	int64_t log_max_bytes;      /* and by total size */
	size_t payload_max;         /* largest payload accepted */
	int shared_group;           /* 1: a spool shared by a group (init --group) */
};

struct spool {
	struct ev_bus base;
	char *path;
	int fd;                     /* the spool directory */
	int tmpfd, logfd, idsfd, subsfd, ephfd;
	int sync;
	mode_t file_mode, dir_mode; /* 0644/0755, or 0660/02770 when shared */
	int fix_mode;               /* the umask would strip bits of file_mode */
	struct spool_config config;
	char host[256];
};

/* One line of subs.idx: where a subscription lives and what it wants. */
struct spool_subentry {
	char dir[EV_NAME_MAX + 32];  /* "subs/NAME" or "eph/ID" */
	char **patterns;
	int npatterns;
};

struct spool_index {
	struct spool_subentry *subs;
	int nsubs;
};

/* subs.c */
int spool_index_read(struct spool *sp, struct spool_index *idx,
    struct ev_err *err);
void spool_index_free(struct spool_index *idx);
/* Add or replace the entry of DIR (patterns NULL: remove it), under the
 * index lock, dropping entries of ephemeral subscriptions whose process is
 * gone. */
int spool_index_update(struct spool *sp, const char *dir,
    char *const *patterns, int npatterns, struct ev_err *err);
/* Create the directories of a subscription below DIRFD/NAME. */
int spool_sub_mkdirs(struct spool *sp, int parentfd, const char *name,
    struct ev_err *err);
/* Remove a subscription directory and everything in it. */
int spool_sub_remove(int parentfd, const char *name);

/* spool.c */
void spool_close_internal(struct spool *sp);
int spool_mkdir_at(struct spool *sp, int dirfd, const char *name);
int spool_open_dir_at(int dirfd, const char *name);
int spool_create_file_at(struct spool *sp, int dirfd, const char *name,
    int excl);

/* gc.c: stale temporary files, dead ephemeral subscriptions, log retention.
 * spool_gc_due() says whether the last run is a minute old, and if so
 * claims this turn by stamping; spool_gc() runs it. */
int spool_gc_due(struct spool *sp);
int spool_gc(struct spool *sp, struct ev_err *err);
/* Undo what a dead publisher left: tmp/NAME (event KEY), its ids/ entry and
 * the queue links it made, all only if they are still the same file. */
void spool_rollback_tmp(struct spool *sp, const struct spool_index *idx,
    const char *name, const char *key);
/* The second half of a rollback, on tmp/CLAIM (".rollback.KEY.PID") that
 * spool_rollback_tmp() renamed: idempotent, so anyone may finish it. */
void spool_rollback_claimed(struct spool *sp, const struct spool_index *idx,
    const char *claim, const char *key);
/* Unlink DIRFD/NAME only if it is still the file ST describes. */
void spool_unlink_if_same(int dirfd, const char *name, const struct stat *st);
/* Is the ephemeral subscription eph/ID dead: its lock opened and locked by
 * us (nobody holds it), or, without a lock file, its directory older than a
 * minute? A lock that cannot be opened for another reason means alive. */
int spool_eph_dead(struct spool *sp, const char *id, int64_t now);

/* publish.c / consume.c: the backend operations. */
int spool_batch_new(struct ev_bus *, struct ev_batch **, struct ev_err *);
int spool_batch_add(struct ev_batch *, const struct ev_event *, char *, int *,
    struct ev_err *);
int spool_batch_commit(struct ev_batch *, struct ev_err *);
void spool_batch_free(struct ev_batch *);
int spool_sub_open(struct ev_bus *, const struct ev_sub_opts *,
    struct ev_sub **, struct ev_err *);
void spool_sub_close(struct ev_sub *);
int spool_sub_fd(const struct ev_sub *);
int spool_sub_refresh(struct ev_sub *, struct ev_err *);
int spool_sub_take(struct ev_sub *, struct ev_delivery *, int64_t *,
    struct ev_err *);
int spool_sub_ack(struct ev_sub *, struct ev_delivery *, struct ev_err *);
int spool_sub_retry(struct ev_sub *, struct ev_delivery *, int64_t,
    const struct ev_failure *, struct ev_err *);
int spool_sub_dead(struct ev_sub *, struct ev_delivery *,
    const struct ev_failure *, struct ev_err *);
int spool_sub_release(struct ev_sub *, struct ev_delivery *, struct ev_err *);

#endif
