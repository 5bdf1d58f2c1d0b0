/*
 * publish.c: putting events into the spool.
 *
 * A batch of events is published in three steps, so that nothing partial is
 * ever visible and nothing acknowledged is ever lost:
 *
 *  1. add: each event is written whole to tmp/KEY.PID (O_EXCL, O_NOFOLLOW).
 *     A caller-chosen id is reserved here by linking the file as ids/ID;
 *     link(2) is atomic, so of two publishers of one id exactly one wins.
 *  2. commit: the data is flushed (fsync of the one file, or one syncfs(2)
 *     for a batch: group commit) BEFORE any queue can name the file, so
 *     after a power cut a queue entry never points at a file whose data was
 *     lost. Then the file is hard-linked into queue/KEY of every matching
 *     subscription and renamed into log/KEY.
 *  3. the new directory entries are flushed: fsync of each directory when
 *     there are few, one syncfs(2) when there are many (fan-out to 100
 *     subscriptions would otherwise cost 100 directory flushes).
 *
 * Only when step 3 has returned does the caller report success. If any step
 * fails, every link the batch made is removed again, so no queue keeps a
 * trace of an event whose publisher reported failure. A crash in the middle
 * leaves tmp/KEY.PID behind (with links to it); gc.c removes such leftovers
 * once their process is gone.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

struct pending {
	char key[EV_KEY_LEN + 1];
	char tmpname[EV_KEY_LEN + 24];
	char id[EV_ID_MAX + 1];     /* empty: the key is the id */
	int fd;                     /* open while it is the only event */
	int *subs;                  /* indexes into the index of matching subs */
	int nsubs, nlinked;         /* matched, and linked so far */
	int logged;                 /* renamed into log/ */
};

/* Queue directories kept open per batch, for the first subscriptions of
 * the index; beyond, each use opens its own, so a spool with thousands of
 * subscriptions cannot run a publisher out of descriptors. */
#define QFD_CACHE 64

struct spool_batch {
	struct ev_batch base;
	struct spool *sp;
	struct spool_index idx;
	int qfds[QFD_CACHE];        /* -1: not open */
	int committed;              /* idx was read before the last commit */
	struct pending *items;
	int n, cap;
};

/* The queue directory of subscription SUB, opened one component at a time
 * with O_NOFOLLOW: a symlink planted in the spool (as subs/NAME or as its
 * queue) makes publishing fail rather than write through it, which a path
 * given to linkat(2) would do. Returns a descriptor for queue_put(), or -1
 * with errno set. */
static int
queue_get(struct spool_batch *b, int sub)
{
	const char *dir = b->idx.subs[sub].dir;
	int parent, fd, qfd, saved;

	if (sub < QFD_CACHE && b->qfds[sub] >= 0)
		return b->qfds[sub];
	/* subs.c lets only "subs/NAME" and "eph/ID" into the index. */
	parent = strncmp(dir, "subs/", 5) == 0 ? b->sp->subsfd : b->sp->ephfd;
	if ((fd = spool_open_dir_at(parent, strchr(dir, '/') + 1)) < 0)
		return -1;
	qfd = spool_open_dir_at(fd, "queue");
	saved = errno;
	close(fd);
	errno = saved;
	if (qfd >= 0 && sub < QFD_CACHE)
		b->qfds[sub] = qfd;
	return qfd;
}

static void
queue_put(struct spool_batch *b, int sub, int qfd)
{
	if (qfd >= 0 && sub >= QFD_CACHE)
		close(qfd);
}

static void
queues_close(struct spool_batch *b)
{
	int i;

	for (i = 0; i < QFD_CACHE; i++) {
		if (b->qfds[i] >= 0)
			close(b->qfds[i]);
		b->qfds[i] = -1;
	}
}

int
spool_batch_new(struct ev_bus *bus, struct ev_batch **batchp,
    struct ev_err *err)
{
	struct spool *sp = (struct spool *)bus;
	struct spool_batch *b;
	int i, rc;

	if ((b = calloc(1, sizeof *b)) == NULL)
		return ev_fail_errno(err, EX_OSERR, "out of memory");
	b->base.ops = &ev_spool_backend;
	b->sp = sp;
	for (i = 0; i < QFD_CACHE; i++)
		b->qfds[i] = -1;
	if ((rc = spool_index_read(sp, &b->idx, err)) != 0) {
		free(b);
		return rc;
	}
	*batchp = &b->base;
	return 0;
}

/* The stored form of an event: one line of compact JSON, payload last so a
 * reader can find the payload's own text without parsing it again. */
static char *
envelope(const struct spool *sp, const struct ev_event *ev, const char *id,
    size_t *lenp, struct ev_err *err)
{
	char now[EV_TIMEBUF], *source, *cause = NULL, *corr = NULL, *text = NULL;
	const char *sub, *why;
	size_t cap;
	int n;

	ev_time_rfc3339(now);
	source = ev_json_quote(ev->source != NULL ? ev->source : sp->host);
	if (ev->causationid != NULL)
		cause = ev_json_quote(ev->causationid);
	if (ev->correlationid != NULL)
		corr = ev_json_quote(ev->correlationid);
	if (source == NULL || (ev->causationid != NULL && cause == NULL) ||
	    (ev->correlationid != NULL && corr == NULL)) {
		ev_fail(err, EX_DATAERR, "source or correlation is not valid UTF-8");
		goto done;
	}
	/* A subscription name is checked, so it needs no escaping. */
	sub = ev->subscription != NULL &&
	    ev_name_valid(ev->subscription, &why) == 0 ? ev->subscription : NULL;
	cap = ev->payload_len + strlen(id) + strlen(ev->type) + strlen(source) +
	    (sub ? strlen(sub) : 0) +
	    (cause ? strlen(cause) : 0) + (corr ? strlen(corr) : 0) + 160;
	if ((text = malloc(cap)) == NULL) {
		ev_fail_errno(err, EX_OSERR, "out of memory");
		goto done;
	}
	n = snprintf(text, cap,
	    "{\"id\":\"%s\",\"type\":\"%s\",\"time\":\"%s\",\"source\":%s"
	    "%s%s%s%s%s%s%s,\"payload\":%.*s}\n", id, ev->type, now, source,
	    cause ? ",\"causationid\":" : "", cause ? cause : "",
	    corr ? ",\"correlationid\":" : "", corr ? corr : "",
	    sub ? ",\"subscription\":\"" : "", sub ? sub : "", sub ? "\"" : "",
	    (int)ev->payload_len, ev->payload);
	*lenp = (size_t)n;
done:
	free(source);
	free(cause);
	free(corr);
	return text;
}

/* The name in tmp/ of the file with inode INO, if a publisher is still
 * working on it: the owner of an id reservation that is not committed. */
static int
find_in_tmp(struct spool *sp, ino_t ino, char *name, size_t len)
{
	struct dirent *de;
	int found = 0;
	DIR *d;

	if ((d = ev_opendir_at(sp->tmpfd)) == NULL)
		return 0;
	rewinddir(d);
	while (!found && (de = readdir(d)) != NULL) {
		/* Dot names count too: tmp/.rollback.KEY.PID is a leftover
		 * that a gc is rolling back right now. */
		if (de->d_ino == ino && strlen(de->d_name) < len) {
			strcpy(name, de->d_name);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* Does the batch hold a reservation of an id it has not committed? */
static int
holds_ids(const struct spool_batch *b)
{
	int i;

	for (i = 0; i < b->n; i++)
		if (b->items[i].id[0] != '\0')
			return 1;
	return 0;
}

/*
 * Reserve ids/ID for the file tmp/NAME. Returns 0 when reserved, 1 when an
 * event with this id is published (committed: it is no longer in tmp/), -1
 * on an error, -2 when another live publisher has held the id for too long,
 * -3 when it is held by another live publisher and this batch holds ids of
 * its own.
 *
 * A reservation whose file is still in tmp/ is not yet a publication: if
 * its publisher is alive, wait for it to commit or fail; if it died, roll
 * its leftovers back and take the id. So "already published" is only said
 * of an event that was really committed.
 *
 * Waiting while this batch holds uncommitted ids could wait in a circle:
 * two evpub -l taking the same ids in different orders would each wait for
 * the other's commit until -2. So then it does not wait: the caller commits
 * what it has, holding nothing, and adds the event again.
 */
static int
reserve_id(struct spool_batch *b, const char *tmpname, const char *id)
{
	enum { WAIT_STEP_US = 10000, WAIT_STEPS = 500 };
	struct spool *sp = b->sp;
	char owner[EV_KEY_LEN + 48], key[EV_KEY_LEN + 1];
	const char *dot;
	struct stat st, again;
	int tries, i;
	long pid;

	for (tries = 0; tries < WAIT_STEPS; tries++) {
		if (linkat(sp->tmpfd, tmpname, sp->idsfd, id, 0) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
		if (fstatat(sp->idsfd, id, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			/* Not an event (a planted symlink, a directory): it
			 * proves nothing was published, so saying "already
			 * published" would drop the event. Refuse instead. */
			errno = S_ISLNK(st.st_mode) ? ELOOP : EEXIST;
			return -1;
		}
		if (!find_in_tmp(sp, st.st_ino, owner, sizeof owner)) {
			/* Look again: a rollback or a failed publisher's undo
			 * may have finished between the stat and the scan, and
			 * both remove ids/ID before the file leaves tmp/. */
			if (fstatat(sp->idsfd, id, &again, AT_SYMLINK_NOFOLLOW) < 0 ||
			    again.st_ino != st.st_ino)
				continue;
			if (again.st_nlink >= 2)
				return 1;   /* committed: in the log, queued */
			/* Nothing else names it: a stale reservation. Only
			 * this very file goes, not a newer reservation that a
			 * third publisher made meanwhile. */
			spool_unlink_if_same(sp->idsfd, id, &st);
			continue;
		}
		if (strncmp(owner, ".rollback.", 10) == 0) {
			/* Being rolled back: not published, and soon gone.
			 * Finishing the rollback here (it is idempotent) is
			 * quicker than waiting, and right if that gc died. */
			if (strlen(owner) > 10 + EV_KEY_LEN) {
				memcpy(key, owner + 10, EV_KEY_LEN);
				key[EV_KEY_LEN] = '\0';
				spool_rollback_claimed(sp, &b->idx, owner, key);
			}
			continue;
		}
		dot = strchr(owner, '.');
		pid = dot ? strtol(dot + 1, NULL, 10) : 0;
		for (i = 0; i < b->n; i++)
			if (strcmp(b->items[i].tmpname, owner) == 0)
				return 1;   /* an earlier event of this batch */
		if (pid == (long)getpid())
			pid = 0;   /* a dead namesake's leftover: pid reused */
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
			if (holds_ids(b))
				return -3;
			usleep(WAIT_STEP_US);
			continue;
		}
		if (dot != NULL && dot - owner == EV_KEY_LEN) {
			memcpy(key, owner, EV_KEY_LEN);
			key[EV_KEY_LEN] = '\0';
			spool_rollback_tmp(sp, &b->idx, owner, key);
		} else {
			spool_unlink_if_same(sp->idsfd, id, &st);
		}
	}
	return -2;
}

/* Remove every trace of an uncommitted event. */
static void
undo(struct spool_batch *b, struct pending *p)
{
	int i, qfd;

	for (i = 0; i < p->nlinked; i++) {
		if ((qfd = queue_get(b, p->subs[i])) >= 0)
			unlinkat(qfd, p->key, 0);
		queue_put(b, p->subs[i], qfd);
	}
	p->nlinked = 0;
	if (p->id[0] != '\0')
		unlinkat(b->sp->idsfd, p->id, 0);
	if (p->logged)
		unlinkat(b->sp->logfd, p->key, 0);
	else
		unlinkat(b->sp->tmpfd, p->tmpname, 0);
	p->logged = 0;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static void
forget(struct pending *p)
{
	if (p->fd >= 0)
		close(p->fd);
	free(p->subs);
}

int
spool_batch_add(struct ev_batch *batch, const struct ev_event *ev, char *idout,
    int *dup, struct ev_err *err)
{
	struct spool_batch *b = (struct spool_batch *)batch;
	struct spool *sp = b->sp;
	struct pending *p, *more;
	const char *why;
	char *text;
	size_t len;
	int i, j, rc, taken;

	*dup = 0;
	/* evpub -l keeps one batch for as long as its input lasts: read the
	 * index again when a commit's worth of events begins, so that a
	 * subscription made meanwhile gets the events published after it. */
	if (b->n == 0 && b->committed) {
		spool_index_free(&b->idx);
		if ((rc = spool_index_read(sp, &b->idx, err)) != 0)
			return rc;
		b->committed = 0;
	}
	if (ev_type_valid(ev->type, &why) != 0)
		return ev_fail(err, EX_USAGE, "invalid event type '%s': %s",
		    ev->type, why);
	if (ev->id != NULL && ev_id_valid(ev->id, &why) != 0)
		return ev_fail(err, EX_USAGE, "invalid event id '%s': %s",
		    ev->id, why);
	if (ev->payload_len > sp->config.payload_max)
		return ev_fail(err, EX_DATAERR,
		    "payload is %zu bytes, over the limit of %zu",
		    ev->payload_len, sp->config.payload_max);
	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 16;

		if ((more = realloc(b->items, (size_t)cap * sizeof *more)) == NULL)
			return ev_fail_errno(err, EX_OSERR, "out of memory");
		b->items = more;
		b->cap = cap;
	}
	p = &b->items[b->n];
	memset(p, 0, sizeof *p);
	p->fd = -1;
	ev_key_new(p->key);
	snprintf(p->tmpname, sizeof p->tmpname, "%s.%ld", p->key,
	    (long)getpid());
	if (ev->id != NULL)
		snprintf(p->id, sizeof p->id, "%s", ev->id);
	if ((text = envelope(sp, ev, ev->id ? ev->id : p->key, &len, err)) == NULL)
		return err->status;

	p->fd = spool_create_file_at(sp, sp->tmpfd, p->tmpname, 1);
	if (p->fd < 0) {
		rc = ev_fail_errno(err, ev_status_for_errno(errno),
		    "cannot create %s/tmp/%s", sp->path, p->tmpname);
		free(text);
		return rc;
	}
	if (ev_writeall(p->fd, text, len) < 0) {
		rc = ev_fail_errno(err, EX_IOERR, "cannot write %s/tmp/%s",
		    sp->path, p->tmpname);
		free(text);
		p->id[0] = '\0';
		undo(b, p);
		return rc;
	}
	free(text);
	if (p->id[0] != '\0') {
		taken = reserve_id(b, p->tmpname, p->id);
		if (taken != 0) {
			rc = taken == -1 ? ev_fail_errno(err,
			    ev_status_for_errno(errno), "cannot reserve id '%s'",
			    p->id) : taken < 0 ? ev_fail(err, EX_TEMPFAIL,
			    "id '%s' is being published by another process",
			    p->id) : 0;
			snprintf(idout, EV_ID_MAX + 1, "%s", p->id);
			*dup = taken > 0;
			p->id[0] = '\0';   /* not ours to remove */
			undo(b, p);
			return rc;
		}
	}
	if ((p->subs = malloc(((size_t)b->idx.nsubs + 1) * sizeof *p->subs)) == NULL) {
		rc = ev_fail_errno(err, EX_OSERR, "out of memory");
		undo(b, p);
		return rc;
	}
	for (i = 0; i < b->idx.nsubs; i++) {
		for (j = 0; j < b->idx.subs[i].npatterns; j++) {
			if (ev_pattern_match(b->idx.subs[i].patterns[j], ev->type)) {
				p->subs[p->nsubs++] = i;
				break;
			}
		}
	}
	/* Only a lone event keeps its descriptor, for fsync; a batch is
	 * flushed with one syncfs() and must not run out of descriptors. */
	if (b->n >= 1 && b->items[0].fd >= 0) {
		close(b->items[0].fd);
		b->items[0].fd = -1;
	}
	snprintf(idout, EV_ID_MAX + 1, "%s", p->id[0] ? p->id : p->key);
	b->n++;
	return 0;
}

/* Make the directory entries of the batch durable: fsync each directory
 * when there are at most FEW of them, otherwise one syncfs(). */
static int
flush_entries(struct spool_batch *b)
{
	enum { FEW = 2 };
	int dirs[FEW];
	int ndirs = 0, i, j, k, fd, seen;

	for (i = 0; i < b->n; i++) {
		for (j = 0; j < b->items[i].nsubs; j++) {
			int d = b->items[i].subs[j];

			for (seen = 0, k = 0; k < ndirs; k++)
				seen |= dirs[k] == d;
			if (seen)
				continue;
			if (ndirs == FEW)
				return syncfs(b->sp->fd);
			dirs[ndirs++] = d;
		}
		if (b->items[i].id[0] != '\0' && ndirs + 1 > FEW)
			return syncfs(b->sp->fd);
	}
	for (i = 0; i < ndirs; i++) {
		if ((fd = queue_get(b, dirs[i])) < 0) {
			if (errno == ENOENT)
				continue;   /* removed meanwhile: nothing to keep */
			return -1;
		}
		if (fsync(fd) < 0) {
			int saved = errno;

			queue_put(b, dirs[i], fd);
			errno = saved;
			return -1;
		}
		queue_put(b, dirs[i], fd);
	}
	for (i = 0; i < b->n; i++)
		if (b->items[i].id[0] != '\0')
			return fsync(b->sp->idsfd) < 0 ? -1 : fsync(b->sp->logfd);
	return fsync(b->sp->logfd);
}

int
spool_batch_commit(struct ev_batch *batch, struct ev_err *err)
{
	struct spool_batch *b = (struct spool_batch *)batch;
	struct spool *sp = b->sp;
	struct pending *p;
	int i, qfd, sub, rc = 0;

	if (b->n == 0)
		return 0;
	if (sp->sync) {
		p = &b->items[0];
		if ((b->n == 1 && p->fd >= 0 ? fsync(p->fd) : syncfs(sp->fd)) < 0) {
			rc = ev_fail_errno(err, EX_IOERR, "cannot flush events to %s",
			    sp->path);
			goto fail;
		}
	}
	for (i = 0; i < b->n; i++) {
		p = &b->items[i];
		for (; p->nlinked < p->nsubs; p->nlinked++) {
			sub = p->subs[p->nlinked];
			if ((qfd = queue_get(b, sub)) < 0 ||
			    linkat(sp->tmpfd, p->tmpname, qfd, p->key, 0) < 0) {
				int saved = errno;

				queue_put(b, sub, qfd);
				errno = saved;
				if (errno == ENOENT) {
					/* The subscription was removed since
					 * the index was read: nobody to tell. */
					p->subs[p->nlinked--] =
					    p->subs[--p->nsubs];
					continue;
				}
				rc = ev_fail_errno(err, ev_status_for_errno(errno),
				    "cannot queue event in %s/%s/queue", sp->path,
				    b->idx.subs[sub].dir);
				goto fail;
			}
			queue_put(b, sub, qfd);
		}
		if (renameat(sp->tmpfd, p->tmpname, sp->logfd, p->key) < 0) {
			rc = ev_fail_errno(err, ev_status_for_errno(errno),
			    "cannot log event in %s/log", sp->path);
			goto fail;
		}
		p->logged = 1;
	}
	if (sp->sync && flush_entries(b) < 0) {
		rc = ev_fail_errno(err, EX_IOERR, "cannot flush %s", sp->path);
		goto fail;
	}
	for (i = 0; i < b->n; i++)
		forget(&b->items[i]);
	b->n = 0;
	queues_close(b);
	b->committed = 1;
	return 0;
fail:
	for (i = 0; i < b->n; i++) {
		undo(b, &b->items[i]);
		forget(&b->items[i]);
	}
	b->n = 0;
	queues_close(b);
	return rc;
}

void
spool_batch_free(struct ev_batch *batch)
{
	struct spool_batch *b = (struct spool_batch *)batch;
	int i;

	for (i = 0; i < b->n; i++) {
		undo(b, &b->items[i]);
		forget(&b->items[i]);
	}
	queues_close(b);
	free(b->items);
	spool_index_free(&b->idx);
	free(b);
}
