/*
 * subs.c: the registry of subscriptions.
 *
 * A publisher must find every subscription whose patterns match, on every
 * publish, so reading one directory per subscription would cost a publish
 * dozens of syscalls. Instead SPOOL/subs.idx holds one line per
 * subscription, "DIR PATTERN...", and a publisher reads that one file.
 * Writers (evsub creating or changing a subscription, evctl rm) rewrite it
 * atomically (write, fsync, rename) while holding flock(SPOOL/subs.lock), so
 * a publisher sees either the old list or the new one, never a torn one.
 * A subscription exists for publishers from the moment its line is renamed
 * into place.
 *
 * Ephemeral subscriptions (evsub without -n) are in the index too. If their
 * evsub dies without cleaning up, their lock is no longer held; any rewrite
 * of the index drops them and removes their directories.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

#define INDEX_MAX (16 * 1024 * 1024)

static const char *const sub_dirs[] = { "queue", "cur", "retry", "dead",
    "state" };

void
spool_index_free(struct spool_index *idx)
{
	int i, j;

	for (i = 0; i < idx->nsubs; i++) {
		for (j = 0; j < idx->subs[i].npatterns; j++)
			free(idx->subs[i].patterns[j]);
		free(idx->subs[i].patterns);
	}
	free(idx->subs);
	idx->subs = NULL;
	idx->nsubs = 0;
}

/* Parse one line; a malformed line (hand-edited index) is skipped, since a
 * publisher must not fail because of one bad subscription. */
static int
parse_line(char *line, struct spool_subentry *e)
{
	char *word, *save = NULL, **more;
	const char *why;

	memset(e, 0, sizeof *e);
	if ((word = strtok_r(line, " ", &save)) == NULL ||
	    strlen(word) >= sizeof e->dir ||
	    (strncmp(word, "subs/", 5) != 0 && strncmp(word, "eph/", 4) != 0) ||
	    ev_name_valid(strchr(word, '/') + 1, &why) != 0)
		return -1;
	strcpy(e->dir, word);
	while ((word = strtok_r(NULL, " ", &save)) != NULL) {
		if (ev_pattern_valid(word, &why) != 0)
			continue;
		more = realloc(e->patterns, (size_t)(e->npatterns + 1) *
		    sizeof *more);
		if (more == NULL)
			return -1;
		e->patterns = more;
		if ((e->patterns[e->npatterns] = strdup(word)) == NULL)
			return -1;
		e->npatterns++;
	}
	return 0;
}

int
spool_index_read(struct spool *sp, struct spool_index *idx,
    struct ev_err *err)
{
	char *text, *line, *save = NULL;
	struct spool_subentry e, *more;
	int i;

	idx->subs = NULL;
	idx->nsubs = 0;
	if (ev_read_file_at(sp->fd, "subs.idx", INDEX_MAX, &text, NULL) < 0) {
		if (errno == ENOENT)
			return 0;
		return ev_fail_errno(err, ev_status_for_errno(errno),
		    "%s/subs.idx", sp->path);
	}
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (parse_line(line, &e) < 0) {
			for (i = 0; i < e.npatterns; i++)
				free(e.patterns[i]);
			free(e.patterns);
			continue;
		}
		more = realloc(idx->subs, (size_t)(idx->nsubs + 1) * sizeof *more);
		if (more == NULL) {
			/* E is not in IDX yet, so spool_index_free()
			 * would not free its patterns. */
			for (i = 0; i < e.npatterns; i++)
				free(e.patterns[i]);
			free(e.patterns);
			free(text);
			spool_index_free(idx);
			return ev_fail_errno(err, EX_OSERR, "out of memory");
		}
		idx->subs = more;
		idx->subs[idx->nsubs++] = e;
	}
	free(text);
	return 0;
}

int
spool_sub_mkdirs(struct spool *sp, int parentfd, const char *name,
    struct ev_err *err)
{
	size_t i;
	int fd;

	if (spool_mkdir_at(sp, parentfd, name) < 0 ||
	    (fd = spool_open_dir_at(parentfd, name)) < 0)
		return ev_fail_errno(err, ev_status_for_errno(errno),
		    "cannot create subscription directory %s", name);
	for (i = 0; i < sizeof sub_dirs / sizeof sub_dirs[0]; i++) {
		if (spool_mkdir_at(sp, fd, sub_dirs[i]) < 0) {
			int rc = ev_fail_errno(err, ev_status_for_errno(errno),
			    "cannot create %s/%s", name, sub_dirs[i]);

			close(fd);
			return rc;
		}
	}
	/* Durable before subs.idx names it: after a power cut the index
	 * must not point at directories that were never written. */
	if (fsync(fd) < 0 || fsync(parentfd) < 0) {
		int rc = ev_fail_errno(err, EX_IOERR, "cannot flush %s", name);

		close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

/* Unlink every entry of DIRFD/NAME, then the directory itself. */
static int
remove_flat_dir(int parentfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = spool_open_dir_at(parentfd, name)) < 0)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		unlinkat(fd, de->d_name, 0);
	}
	closedir(d);
	return unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ?
	    -1 : 0;
}

int
spool_sub_remove(int parentfd, const char *name)
{
	size_t i;
	int fd, rc = 0;

	if ((fd = spool_open_dir_at(parentfd, name)) < 0)
		return errno == ENOENT ? 0 : -1;
	for (i = 0; i < sizeof sub_dirs / sizeof sub_dirs[0]; i++)
		if (remove_flat_dir(fd, sub_dirs[i]) < 0)
			rc = -1;
	unlinkat(fd, "lock", 0);
	close(fd);
	if (unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

/* Is the ephemeral subscription eph/ID still served by a live evsub? Its
 * evsub holds flock on eph/ID/lock for as long as it runs. */
static int
eph_alive(struct spool *sp, const char *id)
{
	struct stat st;

	/* Gone from eph/: its entry goes too. Otherwise only a lock that
	 * can be taken proves it dead (spool_eph_dead): a lock that cannot
	 * be opened now (EMFILE, EIO) may belong to a live evsub. */
	if (fstatat(sp->ephfd, id, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno == ENOENT)
		return 0;
	return !spool_eph_dead(sp, id, ev_now_ms());
}

int
spool_index_update(struct spool *sp, const char *dir,
    char *const *patterns, int npatterns, struct ev_err *err)
{
	struct spool_index idx;
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	int lockfd, i, j, rc;

	lockfd = spool_create_file_at(sp, sp->fd, "subs.lock", 0);
	if (lockfd < 0)
		return ev_fail_errno(err, ev_status_for_errno(errno),
		    "%s/subs.lock", sp->path);
	while (flock(lockfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			rc = ev_fail_errno(err, EX_IOERR, "%s/subs.lock",
			    sp->path);
			close(lockfd);
			return rc;
		}
	}
	if ((rc = spool_index_read(sp, &idx, err)) != 0)
		goto unlock;
	if ((out = open_memstream(&text, &len)) == NULL) {
		rc = ev_fail_errno(err, EX_OSERR, "out of memory");
		goto free_index;
	}
	for (i = 0; i < idx.nsubs; i++) {
		const struct spool_subentry *e = &idx.subs[i];

		if (strcmp(e->dir, dir) == 0)
			continue;
		if (strncmp(e->dir, "eph/", 4) == 0 &&
		    !eph_alive(sp, e->dir + 4)) {
			spool_sub_remove(sp->ephfd, e->dir + 4);
			continue;
		}
		fputs(e->dir, out);
		for (j = 0; j < e->npatterns; j++)
			fprintf(out, " %s", e->patterns[j]);
		fputc('\n', out);
	}
	if (patterns != NULL) {
		fputs(dir, out);
		for (j = 0; j < npatterns; j++)
			fprintf(out, " %s", patterns[j]);
		fputc('\n', out);
	}
	if (fclose(out) != 0) {
		rc = ev_fail_errno(err, EX_OSERR, "out of memory");
		goto free_index;
	}
	if (ev_write_file_atomic(sp->fd, "subs.idx", text, len, sp->file_mode,
	    1) < 0)
		rc = ev_fail_errno(err, ev_status_for_errno(errno),
		    "cannot write %s/subs.idx", sp->path);
free_index:
	free(text);
	spool_index_free(&idx);
unlock:
	close(lockfd);   /* releases the flock */
	return rc;
}
