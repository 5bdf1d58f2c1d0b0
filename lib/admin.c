/*
 * admin.c: the spool-specific functions of evspool_spool.h, for evctl.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evspool_spool.h"
#include "spool.h"

static struct spool *
as_spool(struct ev_bus *bus)
{
	return bus->ops == &ev_spool_backend ? (struct spool *)bus : NULL;
}

static int
not_a_spool(struct ev_err *err)
{
	return ev_fail(err, EX_USAGE, "this bus is not a file spool");
}

int
ev_spool_dirfd(struct ev_bus *bus, const char *which)
{
	struct spool *sp = as_spool(bus);

	if (sp == NULL)
		return -1;
	if (strcmp(which, "") == 0)
		return sp->fd;
	if (strcmp(which, "log") == 0)
		return sp->logfd;
	if (strcmp(which, "ids") == 0)
		return sp->idsfd;
	if (strcmp(which, "tmp") == 0)
		return sp->tmpfd;
	if (strcmp(which, "subs") == 0)
		return sp->subsfd;
	if (strcmp(which, "eph") == 0)
		return sp->ephfd;
	return -1;
}

mode_t
ev_spool_file_mode(struct ev_bus *bus)
{
	struct spool *sp = as_spool(bus);

	return sp ? sp->file_mode : 0644;
}

int
ev_spool_subs(struct ev_bus *bus, struct ev_spool_sub **subsp, int *n,
    struct ev_err *err)
{
	struct spool *sp = as_spool(bus);
	struct spool_index idx;
	struct ev_spool_sub *subs;
	int i, rc;

	if (sp == NULL)
		return not_a_spool(err);
	if ((rc = spool_index_read(sp, &idx, err)) != 0)
		return rc;
	if ((subs = calloc((size_t)idx.nsubs + 1, sizeof *subs)) == NULL) {
		spool_index_free(&idx);
		return ev_fail_errno(err, EX_OSERR, "out of memory");
	}
	for (i = 0; i < idx.nsubs; i++) {
		snprintf(subs[i].dir, sizeof subs[i].dir, "%s", idx.subs[i].dir);
		snprintf(subs[i].name, sizeof subs[i].name, "%s",
		    strchr(idx.subs[i].dir, '/') + 1);
		subs[i].ephemeral = strncmp(idx.subs[i].dir, "eph/", 4) == 0;
		/* The patterns move over; the index keeps nothing. */
		subs[i].patterns = idx.subs[i].patterns;
		subs[i].npatterns = idx.subs[i].npatterns;
		idx.subs[i].patterns = NULL;
		idx.subs[i].npatterns = 0;
	}
	*n = idx.nsubs;
	spool_index_free(&idx);
	*subsp = subs;
	return 0;
}

void
ev_spool_subs_free(struct ev_spool_sub *subs, int n)
{
	int i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < subs[i].npatterns; j++)
			free(subs[i].patterns[j]);
		free(subs[i].patterns);
	}
	free(subs);
}

long
ev_spool_sub_holder(struct ev_bus *bus, const char *dir)
{
	struct spool *sp = as_spool(bus);
	char path[EV_NAME_MAX + 48], buf[32];
	ssize_t n;
	long pid;
	int fd;

	if (sp == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/lock", dir);
	/* No lock file: never served. One we may not open (another user's,
	 * in a shared spool) may well be held: unknown, not "none". */
	if ((fd = openat(sp->fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	pid = strtol(buf, NULL, 10);
	return pid > 0 ? pid : -1;
}

int
ev_spool_sub_delete(struct ev_bus *bus, const char *name, struct ev_err *err)
{
	struct spool *sp = as_spool(bus);
	char dir[EV_NAME_MAX + 32];
	struct stat st;
	const char *why;
	int lockfd, rc;

	if (sp == NULL)
		return not_a_spool(err);
	if (ev_name_valid(name, &why) != 0)
		return ev_fail(err, EX_USAGE, "invalid subscription name '%s': %s",
		    name, why);
	if (fstatat(sp->subsfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISDIR(st.st_mode))
		return ev_fail(err, EX_NOINPUT, "no subscription '%s'", name);
	snprintf(dir, sizeof dir, "%s/lock", name);
	/* Hold the subscription's own lock while removing it, so no evsub
	 * can start on it half way. */
	lockfd = openat(sp->subsfd, dir, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	/* A lock we cannot open may be held: removing the queues under a
	 * running evsub would lose its events, so refuse. */
	if (lockfd < 0 && errno != ENOENT)
		return ev_fail_errno(err, ev_status_for_errno(errno),
		    "cannot lock subscription '%s'", name);
	if (lockfd >= 0 && flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(dir, sizeof dir, "subs/%s", name);
		rc = ev_fail(err, EX_TEMPFAIL, "subscription '%s' is served by "
		    "process %ld; stop it first", name,
		    ev_spool_sub_holder(bus, dir));
		close(lockfd);
		return rc;
	}
	snprintf(dir, sizeof dir, "subs/%s", name);
	rc = spool_index_update(sp, dir, NULL, 0, err);
	if (rc == 0 && spool_sub_remove(sp->subsfd, name) < 0)
		rc = ev_fail_errno(err, EX_IOERR, "cannot remove %s/%s",
		    sp->path, dir);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}

int
ev_spool_gc(struct ev_bus *bus, struct ev_err *err)
{
	struct spool *sp = as_spool(bus);

	if (sp == NULL)
		return not_a_spool(err);
	return spool_gc(sp, err);
}

/* chgrp and chmod one directory of a shared spool. */
static int
share_dir(int dirfd, const char *name, gid_t gid)
{
	return fchownat(dirfd, name, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dirfd, name, 02770, 0) < 0 ? -1 : 0;
}

int
ev_spool_init(const char *path, const char *group, struct ev_err *err)
{
	static const char *const dirs[] = { "tmp", "log", "ids", "subs", "eph" };
	struct ev_bus_opts bo = { 0 };
	struct ev_bus *bus;
	struct spool *sp;
	struct group *gr = NULL;
	size_t i;
	int rc;

	if (group != NULL && (gr = getgrnam(group)) == NULL)
		return ev_fail(err, EX_NOUSER, "no group '%s'", group);
	bo.location = path;
	bo.create = 1;
	bo.sync = 1;
	if ((rc = ev_bus_open(&bo, &bus, err)) != 0)
		return rc;
	sp = (struct spool *)bus;
	if (gr != NULL) {
		char *text = NULL, *old = NULL;
		size_t len = 0;
		FILE *out;
		int fail;

		if (fchown(sp->fd, (uid_t)-1, gr->gr_gid) < 0 ||
		    fchmod(sp->fd, 02770) < 0) {
			rc = ev_fail_errno(err, EX_CANTCREAT, "%s", sp->path);
			goto done;
		}
		for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
			if (share_dir(sp->fd, dirs[i], gr->gr_gid) < 0) {
				rc = ev_fail_errno(err, EX_CANTCREAT, "%s/%s",
				    sp->path, dirs[i]);
				goto done;
			}
		}
		/* Keep the settings already there; only shared_group is set. */
		if ((out = open_memstream(&text, &len)) == NULL) {
			rc = ev_fail_errno(err, EX_OSERR, "out of memory");
			goto done;
		}
		if (ev_read_file_at(sp->fd, "config", 64 * 1024, &old, NULL) == 0) {
			char *line, *save = NULL;

			for (line = strtok_r(old, "\n", &save); line != NULL;
			    line = strtok_r(NULL, "\n", &save))
				if (strncmp(line + strspn(line, " \t"),
				    "shared_group", 12) != 0)
					fprintf(out, "%s\n", line);
			free(old);
		}
		fputs("shared_group = 1\n", out);
		fclose(out);
		fail = text == NULL || ev_write_file_atomic(sp->fd, "config", text,
		    len, 0660, 1) < 0 ||
		    fchownat(sp->fd, "config", (uid_t)-1, gr->gr_gid, 0) < 0;
		free(text);
		if (fail) {
			rc = ev_fail_errno(err, EX_CANTCREAT, "%s/config",
			    sp->path);
			goto done;
		}
	}
	if (fsync(sp->fd) < 0)
		rc = ev_fail_errno(err, EX_IOERR, "%s", sp->path);
done:
	ev_bus_close(bus);
	return rc;
}
