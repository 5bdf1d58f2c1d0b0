/*
 * gc.c: cleaning the spool.
 *
 *  - Leftovers of crashed publishers: tmp/KEY.PID whose process is gone, or
 *    older than an hour. Such an event was never committed (its publisher
 *    did not report success), so it is rolled back: its ids/ reservation and
 *    any queue links it made are removed, and then the file itself.
 *  - Ephemeral subscriptions whose evsub died without cleaning up.
 *  - Log retention: log/KEY is removed, oldest first, while it is older than
 *    log_max_age or the log is bigger than log_max_bytes. Queued copies are
 *    hard links, so retention never takes an event from a queue. An ids/
 *    entry goes with its log entry: ids de-duplicate within retention.
 *
 * It runs when evctl gc asks, and by itself at most once a minute: the
 * tools ask spool_gc_due() (one stat of SPOOL/gc.stamp, which keeps the time
 * of the last run) after their own work, and when it is due they run the
 * gc in a detached child, because its cost grows with the log and must not
 * land on a publish or a delivery.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

#define GC_INTERVAL_MS (60 * 1000)
#define TMP_STALE_MS (3600 * 1000)

/* The id stored in an event file, when it differs from its key. */
static int
custom_id_of(int dirfd, const char *name, const char *key, char *id,
    size_t len)
{
	struct ev_envelope env;
	struct ev_err err;
	size_t textlen;
	char *text;
	int found = 0;

	if (ev_read_file_at(dirfd, name, 64 * 1024 * 1024, &text, &textlen) < 0)
		return 0;
	/* Through ev_envelope_parse: an event whose payload jansson cannot
	 * hold (1e400) must still give up its id, or ids/ID would outlive
	 * the event's retention. */
	if (ev_envelope_parse(text, textlen, &env, &err) == 0) {
		if (strcmp(env.id, key) != 0 && strlen(env.id) < len) {
			strcpy(id, env.id);
			found = 1;
		}
		ev_envelope_free(&env);
	}
	free(text);
	return found;
}

/* Unlink DIRFD/NAME only if it is the same file as ST, so a newer event
 * that reused the name is left alone. */
void
spool_unlink_if_same(int dirfd, const char *name, const struct stat *st)
{
	struct stat other;

	if (fstatat(dirfd, name, &other, AT_SYMLINK_NOFOLLOW) == 0 &&
	    other.st_ino == st->st_ino && other.st_dev == st->st_dev)
		unlinkat(dirfd, name, 0);
}

static int
pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Roll back the claimed leftover tmp/CLAIM of event KEY. */
void
spool_rollback_claimed(struct spool *sp, const struct spool_index *idx,
    const char *claim, const char *key)
{
	char id[EV_ID_MAX + 1], path[EV_NAME_MAX + EV_KEY_LEN + 48];
	struct stat st;
	int i;

	if (fstatat(sp->tmpfd, claim, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
		if (custom_id_of(sp->tmpfd, claim, key, id, sizeof id))
			spool_unlink_if_same(sp->idsfd, id, &st);
		for (i = 0; i < idx->nsubs; i++) {
			snprintf(path, sizeof path, "%s/queue/%s",
			    idx->subs[i].dir, key);
			spool_unlink_if_same(sp->fd, path, &st);
		}
	}
	unlinkat(sp->tmpfd, claim, 0);
}

/*
 * The leftover is first claimed by renaming it to tmp/.rollback.NAME: if
 * its publisher was in fact alive (an old file, a pid from another pid
 * namespace) and commits now, either its rename into log/ wins and the
 * claim fails, so nothing of a committed event is touched, or the claim
 * wins and the publisher's own rename fails, so it reports failure and
 * what is removed here was never acknowledged.
 */
void
spool_rollback_tmp(struct spool *sp, const struct spool_index *idx,
    const char *name, const char *key)
{
	char claim[EV_KEY_LEN + 64];

	if (snprintf(claim, sizeof claim, ".rollback.%s", name) >=
	    (int)sizeof claim ||
	    renameat(sp->tmpfd, name, sp->tmpfd, claim) < 0)
		return;
	spool_rollback_claimed(sp, idx, claim, key);
}

static void
clean_tmp(struct spool *sp, const struct spool_index *idx, int64_t now)
{
	char key[EV_KEY_LEN + 1];
	struct dirent *de;
	struct stat st;
	const char *dot;
	char *end;
	long pid;
	DIR *d;

	if ((d = ev_opendir_at(sp->tmpfd)) == NULL)
		return;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".rollback.", 10) == 0 &&
		    strlen(de->d_name) > 10 + EV_KEY_LEN) {
			/* Claimed by a gc that died before finishing. */
			memcpy(key, de->d_name + 10, EV_KEY_LEN);
			key[EV_KEY_LEN] = '\0';
			if (ev_key_valid(key))
				spool_rollback_claimed(sp, idx, de->d_name, key);
			continue;
		}
		if (de->d_name[0] == '.')
			continue;
		dot = strchr(de->d_name, '.');
		if (dot == NULL || dot - de->d_name != EV_KEY_LEN)
			continue;
		memcpy(key, de->d_name, EV_KEY_LEN);
		key[EV_KEY_LEN] = '\0';
		pid = strtol(dot + 1, &end, 10);
		if (!ev_key_valid(key) || *end != '\0')
			continue;
		if (fstatat(sp->tmpfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (pid_alive(pid) &&
		    now - (int64_t)st.st_mtime * 1000 < TMP_STALE_MS)
			continue;
		spool_rollback_tmp(sp, idx, de->d_name, key);
	}
	closedir(d);
}

/*
 * Is the ephemeral subscription eph/ID dead? Its evsub holds an flock on
 * eph/ID/lock for as long as it runs, so only a lock that we can open and
 * lock ourselves proves it gone. A lock that cannot be opened (EMFILE,
 * EACCES, EIO...) proves nothing, and the subscription is left alone: a
 * live evsub must never lose its directory. Without any lock file (ENOENT)
 * the subscription is dead once its directory is a minute old; a younger
 * one is being created, and its lock comes next.
 */
int
spool_eph_dead(struct spool *sp, const char *id, int64_t now)
{
	char lockpath[EV_NAME_MAX + 16];
	struct stat st;
	int lockfd, free_lock;

	snprintf(lockpath, sizeof lockpath, "%.*s/lock", EV_NAME_MAX, id);
	lockfd = openat(sp->ephfd, lockpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (lockfd >= 0) {
		free_lock = flock(lockfd, LOCK_EX | LOCK_NB) == 0;
		close(lockfd);
		return free_lock;
	}
	if (errno != ENOENT)
		return 0;
	return fstatat(sp->ephfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now - (int64_t)st.st_mtime * 1000 >= GC_INTERVAL_MS;
}

static void
clean_ephemeral(struct spool *sp, const struct spool_index *idx, int64_t now)
{
	struct ev_err ignored;
	char dir[EV_NAME_MAX + 32];
	struct dirent *de;
	int i, listed;
	DIR *d;

	if ((d = ev_opendir_at(sp->ephfd)) == NULL)
		return;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strlen(de->d_name) > EV_NAME_MAX ||
		    !spool_eph_dead(sp, de->d_name, now))
			continue;
		snprintf(dir, sizeof dir, "eph/%.*s", EV_NAME_MAX, de->d_name);
		for (listed = 0, i = 0; i < idx->nsubs; i++)
			listed |= strcmp(idx->subs[i].dir, dir) == 0;
		if (listed)
			spool_index_update(sp, dir, NULL, 0, &ignored);
		spool_sub_remove(sp->ephfd, de->d_name);
	}
	closedir(d);
}

struct logent {
	char key[EV_KEY_LEN + 1];
	int64_t size;
};

static int
by_key(const void *a, const void *b)
{
	return strcmp(((const struct logent *)a)->key,
	    ((const struct logent *)b)->key);
}

static int
apply_retention(struct spool *sp, int64_t now, struct ev_err *err)
{
	struct logent *ents = NULL, *more;
	size_t n = 0, cap = 0, i;
	int64_t total = 0;
	char id[EV_ID_MAX + 1];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if ((d = ev_opendir_at(sp->logfd)) == NULL)
		return ev_fail_errno(err, EX_IOERR, "%s/log", sp->path);
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!ev_key_valid(de->d_name) ||
		    fstatat(sp->logfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((more = realloc(ents, cap * sizeof *more)) == NULL) {
				closedir(d);
				free(ents);
				return ev_fail_errno(err, EX_OSERR, "out of memory");
			}
			ents = more;
		}
		strcpy(ents[n].key, de->d_name);
		ents[n].size = st.st_size;
		total += st.st_size;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(ents, n, sizeof *ents, by_key);
	for (i = 0; i < n; i++) {
		if (now - ev_key_time_ms(ents[i].key) <= sp->config.log_max_age_ms &&
		    total <= sp->config.log_max_bytes)
			break;
		if (fstatat(sp->logfd, ents[i].key, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    custom_id_of(sp->logfd, ents[i].key, ents[i].key, id, sizeof id))
			spool_unlink_if_same(sp->idsfd, id, &st);
		unlinkat(sp->logfd, ents[i].key, 0);
		total -= ents[i].size;
	}
	free(ents);
	return 0;
}

int
spool_gc_due(struct spool *sp)
{
	int64_t now = ev_now_ms();
	struct stat st;
	int fd;

	if (fstatat(sp->fd, "gc.stamp", &st, 0) == 0 &&
	    now - ((int64_t)st.st_mtim.tv_sec * 1000 +
	    st.st_mtim.tv_nsec / 1000000) < GC_INTERVAL_MS)
		return 0;
	/* Stamp first, so concurrent processes do not all start a gc; a
	 * process that cannot stamp (a read-only spool) leaves it to others
	 * rather than starting a gc on every call. */
	fd = spool_create_file_at(sp, sp->fd, "gc.stamp", 0);
	if (fd < 0)
		return 0;
	if (futimens(fd, NULL) < 0) {
		close(fd);
		return 0;
	}
	close(fd);
	return 1;
}

int
spool_gc(struct spool *sp, struct ev_err *err)
{
	struct spool_index idx;
	int64_t now = ev_now_ms();
	int rc;

	if ((rc = spool_index_read(sp, &idx, err)) != 0)
		return rc;
	clean_tmp(sp, &idx, now);
	clean_ephemeral(sp, &idx, now);
	spool_index_free(&idx);
	return apply_retention(sp, now, err);
}
