/*
 * spool.c: the file spool: where it is, how it is laid out, opening it.
 *
 * Layout (man/evspool.7 is the contract):
 *
 *   SPOOL/config       optional settings, "key = value" lines
 *   SPOOL/tmp/         events being written, as KEY.PID
 *   SPOOL/log/KEY      every published event, kept for a retention period
 *   SPOOL/ids/ID       caller-chosen ids (--id): a hard link of log/KEY
 *   SPOOL/subs.idx     one line per subscription: its directory and patterns
 *                      (the registry publishers read; see subs.c)
 *   SPOOL/subs.lock    flock(2)ed while subs.idx is rewritten
 *   SPOOL/subs/NAME/   a durable subscription
 *   SPOOL/eph/ID/      an ephemeral one, living as long as its evsub
 *
 * and in each subscription directory:
 *
 *   lock               flock(2)ed by the evsub serving it, holding its pid
 *   queue/KEY          waiting to be handled
 *   cur/KEY            being handled now
 *   retry/KEY          failed, waiting for its next try
 *   dead/KEY           dead letters
 *   state/KEY          attempts and last failure of an event that failed
 *
 * An event is one immutable file. It is written completely under tmp/, then
 * hard-linked into the queue of every matching subscription and renamed
 * into log/: no reader ever sees a partial event, and the file is freed
 * when the last subscription is done with it. Per-subscription state lives
 * only in that subscription's directories. KEY is a UUIDv7, so names sort
 * in publish order.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

int
ev_default_spool(char *buf, size_t len, struct ev_err *err)
{
	const char *env = getenv("EV_SPOOL"), *state, *home;
	int n;

	if (env != NULL && *env != '\0')
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/var/spool/evspool");
	else if ((state = getenv("XDG_STATE_HOME")) != NULL && *state == '/')
		n = snprintf(buf, len, "%s/evspool", state);
	else if ((home = getenv("HOME")) != NULL && *home == '/')
		n = snprintf(buf, len, "%s/.local/state/evspool", home);
	else
		return ev_fail(err, EX_USAGE,
		    "no spool: set EV_SPOOL, HOME or use -s DIR");
	if (n < 0 || (size_t)n >= len)
		return ev_fail(err, EX_USAGE, "spool path is too long");
	return 0;
}

int
spool_open_dir_at(int dirfd, const char *name)
{
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
}

int
spool_mkdir_at(struct spool *sp, int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, sp->dir_mode) < 0) {
		if (errno != EEXIST)
			return -1;
		return 0;
	}
	/* The umask may have stripped group bits a shared spool needs. */
	if (sp->config.shared_group &&
	    fchmodat(dirfd, name, sp->dir_mode, 0) < 0)
		return -1;
	return 0;
}

int
spool_create_file_at(struct spool *sp, int dirfd, const char *name, int excl)
{
	int fd, created = 1;

	/* Only a file this call creates gets its mode fixed: fchmod() of one
	 * another member of a shared spool created (subs.lock, gc.stamp)
	 * fails with EPERM. */
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, sp->file_mode);
	if (fd < 0 && errno == EEXIST && !excl) {
		created = 0;
		fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd >= 0 && created && sp->fix_mode &&
	    fchmod(fd, sp->file_mode) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* mkdir -p for the spool's own path, which the user names (so symlinks in
 * it are theirs to make and are followed). */
static int
mkdir_parents(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int
parse_size(const char *text, int64_t *out)
{
	char *end;
	long long n, mult;

	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno != 0 || end == text || n < 0)
		return -1;
	switch (*end) {
	case 'k': case 'K': mult = 1024LL; end++; break;
	case 'm': case 'M': mult = 1024LL * 1024; end++; break;
	case 'g': case 'G': mult = 1024LL * 1024 * 1024; end++; break;
	default: mult = 1; break;
	}
	/* An overflow would wrap to a negative size: an error, not a limit
	 * that empties the log. */
	if (*end != '\0' || n > INT64_MAX / mult)
		return -1;
	n *= mult;
	*out = n;
	return 0;
}

/* The config file is optional; a line that cannot be read is an error, so
 * a typo does not silently keep the default. */
static int
read_config(struct spool *sp, struct ev_err *err)
{
	struct spool_config *c = &sp->config;
	char *text, *line, *save = NULL, *key, *value, *eq;
	int64_t n;
	int lineno = 0, rc = 0;

	c->log_max_age_ms = 7LL * 86400 * 1000;
	c->log_max_bytes = 256LL * 1024 * 1024;
	c->payload_max = EV_PAYLOAD_MAX_DEFAULT;
	c->shared_group = 0;
	if (ev_read_file_at(sp->fd, "config", 64 * 1024, &text, NULL) < 0) {
		if (errno == ENOENT)
			return 0;
		return ev_fail_errno(err, EX_CANTCREAT, "%s/config", sp->path);
	}
	for (line = strtok_r(text, "\n", &save); line != NULL && rc == 0;
	    line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#' || *line == '\0')
			continue;
		if ((eq = strchr(line, '=')) == NULL) {
			rc = ev_fail(err, EX_CONFIG,
			    "%s/config: line %d: expected key = value",
			    sp->path, lineno);
			break;
		}
		*eq = '\0';
		key = line;
		value = eq + 1;
		key[strcspn(key, " \t")] = '\0';
		value += strspn(value, " \t");
		value[strcspn(value, " \t\r")] = '\0';
		if (strcmp(key, "log_max_age") == 0 &&
		    ev_duration_parse(value, &n) == 0)
			c->log_max_age_ms = n;
		else if (strcmp(key, "log_max_bytes") == 0 &&
		    parse_size(value, &n) == 0)
			c->log_max_bytes = n;
		else if (strcmp(key, "payload_max") == 0 &&
		    parse_size(value, &n) == 0 && n > 0 && n <= 1024LL * 1024 * 1024)
			c->payload_max = (size_t)n;
		else if (strcmp(key, "shared_group") == 0 &&
		    (strcmp(value, "0") == 0 || strcmp(value, "1") == 0))
			c->shared_group = value[0] == '1';
		else
			rc = ev_fail(err, EX_CONFIG,
			    "%s/config: line %d: bad setting '%s'",
			    sp->path, lineno, key);
	}
	free(text);
	return rc;
}

static int
spool_open(const struct ev_bus_opts *opts, struct ev_bus **busp,
    struct ev_err *err)
{
	static const char *const dirs[] = { "tmp", "log", "ids", "subs", "eph" };
	char defpath[PATH_MAX], cwd[PATH_MAX], abspath[2 * PATH_MAX];
	const char *path = opts->location;
	struct spool *sp;
	const char *env_sync;
	mode_t mask;
	size_t i;
	int rc, *fds[5];

	if (path == NULL) {
		if ((rc = ev_default_spool(defpath, sizeof defpath, err)) != 0)
			return rc;
		path = defpath;
	}
	/* The analyzer cannot see that ev_fail() never returns 0, so it
	 * thinks ev_default_spool() may succeed without writing DEFPATH. */
	/* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
	if (path[0] != '/' && getcwd(cwd, sizeof cwd) != NULL &&
	    snprintf(abspath, sizeof abspath, "%s/%s", cwd, path) <
	    (int)sizeof abspath)
		path = abspath;   /* handlers get EV_SPOOL; their cwd may differ */
	if ((sp = calloc(1, sizeof *sp)) == NULL ||
	    (sp->path = strdup(path)) == NULL) {
		free(sp);
		return ev_fail_errno(err, EX_OSERR, "out of memory");
	}
	sp->base.ops = &ev_spool_backend;
	sp->fd = sp->tmpfd = sp->logfd = sp->idsfd = sp->subsfd = sp->ephfd = -1;
	sp->sync = opts->sync;
	env_sync = getenv("EV_SYNC");
	if (env_sync != NULL && strcmp(env_sync, "0") == 0)
		sp->sync = 0;
	if (gethostname(sp->host, sizeof sp->host) < 0)
		snprintf(sp->host, sizeof sp->host, "localhost");
	sp->host[sizeof sp->host - 1] = '\0';

	if (opts->create && mkdir_parents(sp->path, 0755) < 0) {
		rc = ev_fail_errno(err, EX_CANTCREAT, "cannot create spool %s",
		    sp->path);
		goto fail;
	}
	sp->fd = open(sp->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->fd < 0) {
		rc = ev_fail_errno(err, errno == ENOENT ? EX_NOINPUT :
		    EX_CANTCREAT, "cannot open spool %s", sp->path);
		goto fail;
	}
	if ((rc = read_config(sp, err)) != 0)
		goto fail;
	sp->file_mode = sp->config.shared_group ? 0660 : 0644;
	sp->dir_mode = sp->config.shared_group ? 02770 : 0755;
	/* A private spool follows the user's umask; a shared one must give
	 * its group read and write whatever the umask of each member. */
	mask = umask(0);
	umask(mask);
	sp->fix_mode = sp->config.shared_group && (sp->file_mode & mask) != 0;

	fds[0] = &sp->tmpfd;
	fds[1] = &sp->logfd;
	fds[2] = &sp->idsfd;
	fds[3] = &sp->subsfd;
	fds[4] = &sp->ephfd;
	for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		*fds[i] = spool_open_dir_at(sp->fd, dirs[i]);
		if (*fds[i] < 0 && errno == ENOENT && opts->create) {
			if (spool_mkdir_at(sp, sp->fd, dirs[i]) == 0)
				*fds[i] = spool_open_dir_at(sp->fd, dirs[i]);
		}
		if (*fds[i] < 0) {
			rc = ev_fail_errno(err, errno == ENOENT ? EX_NOINPUT :
			    EX_CANTCREAT, "%s/%s", sp->path, dirs[i]);
			goto fail;
		}
	}
	sp->base.location = sp->path;
	sp->base.payload_max = sp->config.payload_max;
	*busp = &sp->base;
	return 0;
fail:
	spool_close_internal(sp);
	return rc;
}

void
spool_close_internal(struct spool *sp)
{
	int *fds[] = { &sp->fd, &sp->tmpfd, &sp->logfd, &sp->idsfd,
	    &sp->subsfd, &sp->ephfd };
	size_t i;

	for (i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	free(sp->path);
	free(sp);
}

static void
spool_close(struct ev_bus *bus)
{
	spool_close_internal((struct spool *)bus);
}

static int
spool_maintenance_due(struct ev_bus *bus)
{
	return spool_gc_due((struct spool *)bus);
}

static int
spool_maintain(struct ev_bus *bus, struct ev_err *err)
{
	return spool_gc((struct spool *)bus, err);
}

const struct ev_backend_ops ev_spool_backend = {
	.name = "spool",
	.open = spool_open,
	.close = spool_close,
	.maintenance_due = spool_maintenance_due,
	.maintain = spool_maintain,
	.batch_new = spool_batch_new,
	.batch_add = spool_batch_add,
	.batch_commit = spool_batch_commit,
	.batch_free = spool_batch_free,
	.sub_open = spool_sub_open,
	.sub_close = spool_sub_close,
	.sub_fd = spool_sub_fd,
	.sub_refresh = spool_sub_refresh,
	.sub_take = spool_sub_take,
	.sub_ack = spool_sub_ack,
	.sub_retry = spool_sub_retry,
	.sub_dead = spool_sub_dead,
	.sub_release = spool_sub_release,
};
