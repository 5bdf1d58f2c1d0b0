/*
 * consume.c: taking events out of a subscription, the way maildir readers
 * do: by renaming.
 *
 *   queue/KEY --take--> cur/KEY --ack--> (unlinked)
 *                              --retry--> retry/KEY --due--> cur/KEY
 *                              --dead--> dead/KEY
 *                              --release--> queue/KEY
 *
 * An event is unlinked from the subscription only after its handler
 * succeeded (at-least-once). Whatever a crash leaves in cur/ was being
 * handled: on the next start it goes back to queue/ with one attempt
 * counted, so EV_ATTEMPT counts up across crashes. Attempts and failures are
 * kept in state/KEY, written (tmp + rename) only when something failed, so
 * the common path costs one rename and one unlink per event and never
 * touches the event file, which other subscriptions share.
 *
 * Wake-ups come from inotify on queue/ (IN_CREATE for the publishers' links,
 * IN_MOVED_TO for renames); the names it reports go into a heap ordered by
 * key, which is publish order, so a large backlog is listed once, not once
 * per event. An inotify overflow triggers a full rescan. Without inotify
 * (no watches left) the queue is rescanned every second instead.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

#define POLL_FALLBACK_MS 1000

/* A key in 16 bytes; memcmp order is the text's order. */
typedef struct {
	unsigned char b[16];
} binkey;

struct retry_entry {
	binkey key;
	int64_t due_ms;
};

struct spool_sub {
	struct ev_sub base;
	struct spool *sp;
	char name[EV_NAME_MAX + 1];
	char dir[EV_NAME_MAX + 32];       /* "subs/NAME" or "eph/ID" */
	int parentfd;                     /* subs/ or eph/ */
	int ephemeral, ordered, peek;
	int fd, queuefd, curfd, retryfd, deadfd, statefd, lockfd;
	int ifd;                          /* inotify, or -1: rescan by timer */
	int64_t next_poll_ms;
	binkey *heap;                     /* queued keys, smallest first */
	size_t nheap, capheap;
	binkey last_taken;
	struct retry_entry *retries;
	size_t nretries, capretries;
	json_t *attempts;                 /* KEY -> attempts already made */
};

static int
hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void
key_to_bin(const char *key, binkey *out)
{
	int i, j = 0;

	for (i = 0; i < EV_KEY_LEN; i++) {
		if (key[i] == '-')
			continue;
		if (j % 2 == 0)
			out->b[j / 2] = (unsigned char)(hexval(key[i]) << 4);
		else
			out->b[j / 2] |= (unsigned char)hexval(key[i]);
		j++;
	}
}

static void
bin_to_key(const binkey *k, char out[EV_KEY_LEN + 1])
{
	const unsigned char *b = k->b;

	snprintf(out, EV_KEY_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
	    b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---- the heap of queued keys ---------------------------------------- */

static int
heap_push(struct spool_sub *s, const binkey *k)
{
	size_t i, parent;
	binkey *more;

	if (s->nheap == s->capheap) {
		size_t cap = s->capheap ? s->capheap * 2 : 1024;

		if ((more = realloc(s->heap, cap * sizeof *more)) == NULL)
			return -1;
		s->heap = more;
		s->capheap = cap;
	}
	for (i = s->nheap++; i > 0; i = parent) {
		parent = (i - 1) / 2;
		if (memcmp(s->heap[parent].b, k->b, 16) <= 0)
			break;
		s->heap[i] = s->heap[parent];
	}
	s->heap[i] = *k;
	return 0;
}

static void
heap_pop(struct spool_sub *s)
{
	binkey last = s->heap[--s->nheap];
	size_t i = 0, child;

	while ((child = 2 * i + 1) < s->nheap) {
		if (child + 1 < s->nheap &&
		    memcmp(s->heap[child + 1].b, s->heap[child].b, 16) < 0)
			child++;
		if (memcmp(last.b, s->heap[child].b, 16) <= 0)
			break;
		s->heap[i] = s->heap[child];
		i = child;
	}
	if (s->nheap > 0)
		s->heap[i] = last;
}

/* ---- state files ----------------------------------------------------- */

static int
attempts_of(const struct spool_sub *s, const char *key)
{
	return (int)json_integer_value(json_object_get(s->attempts, key));
}

/* Write state/KEY: the record of an event that failed, read by evctl. */
static int
write_state(struct spool_sub *s, const char *key, int attempts,
    int64_t next_try_ms, int dead, const struct ev_failure *why)
{
	char now[EV_TIMEBUF], next[EV_TIMEBUF];
	json_t *st;
	char *text;
	int rc;

	ev_time_rfc3339(now);
	st = json_pack("{s:s, s:i}", "key", key, "attempts", attempts);
	if (st == NULL)
		return -1;
	if (next_try_ms >= 0) {
		ev_time_rfc3339_ms(next_try_ms, next);
		json_object_set_new(st, "next_try", json_string(next));
		json_object_set_new(st, "next_try_ms", json_integer(next_try_ms));
	}
	if (dead)
		json_object_set_new(st, "dead_at", json_string(now));
	if (why != NULL)
		json_object_set_new(st, "last_failure", json_pack(
		    "{s:s, s:o, s:o, s:b, s:s}", "time", now,
		    "exit", why->exit_status >= 0 ?
		    json_integer(why->exit_status) : json_null(),
		    "signal", why->signal > 0 ? json_integer(why->signal) :
		    json_null(), "timeout", why->timed_out,
		    "reason", why->reason));
	text = json_dumps(st, JSON_COMPACT);
	json_decref(st);
	if (text == NULL)
		return -1;
	rc = ev_write_file_atomic(s->statefd, key, text, strlen(text),
	    s->sp->file_mode, 0);
	free(text);
	return rc;
}

/* Load state/: attempts made so far, and when each retry is due. */
static int
load_states(struct spool_sub *s)
{
	json_t *st;
	struct dirent *de;
	char *text;
	DIR *d;

	if ((d = ev_opendir_at(s->statefd)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		/* A crash in the middle of a state write leaves its temporary
		 * file (see ev_write_file_atomic); nobody else writes here. */
		if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp") != NULL) {
			unlinkat(s->statefd, de->d_name, 0);
			continue;
		}
		/* A dead letter's attempts are over: evctl retry starts it
		 * again at attempt 1, as spool_sub_dead() forgets them. */
		if (!ev_key_valid(de->d_name) ||
		    faccessat(s->deadfd, de->d_name, F_OK,
		    AT_SYMLINK_NOFOLLOW) == 0 ||
		    ev_read_file_at(s->statefd, de->d_name, 65536, &text,
		    NULL) < 0)
			continue;
		st = json_loads(text, 0, NULL);
		free(text);
		if (json_is_integer(json_object_get(st, "attempts")))
			json_object_set(s->attempts, de->d_name,
			    json_object_get(st, "attempts"));
		json_decref(st);
	}
	closedir(d);
	return 0;
}

static int64_t
state_due(const struct spool_sub *s, const char *key)
{
	json_t *st;
	char *text;
	int64_t due = 0;

	if (ev_read_file_at(s->statefd, key, 65536, &text, NULL) < 0)
		return 0;
	st = json_loads(text, 0, NULL);
	free(text);
	if (json_is_integer(json_object_get(st, "next_try_ms")))
		due = json_integer_value(json_object_get(st, "next_try_ms"));
	json_decref(st);
	return due;
}

/* ---- scanning -------------------------------------------------------- */

/* Call FN for every valid key in directory DIRFD. */
static int
each_key(int dirfd, int (*fn)(struct spool_sub *, const char *),
    struct spool_sub *s)
{
	struct dirent *de;
	int rc = 0;
	DIR *d;

	if ((d = ev_opendir_at(dirfd)) == NULL)
		return -1;
	rewinddir(d);
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (ev_key_valid(de->d_name))
			rc = fn(s, de->d_name);
	closedir(d);
	return rc;
}

static int
push_key(struct spool_sub *s, const char *key)
{
	binkey k;

	key_to_bin(key, &k);
	return heap_push(s, &k);
}

static int
rescan_queue(struct spool_sub *s)
{
	s->nheap = 0;
	return each_key(s->queuefd, push_key, s);
}

/* Something in cur/ after a start means a crash in the middle of handling
 * it: that attempt counts, and the event goes back to the queue. */
static int
recover_inflight(struct spool_sub *s, const char *key)
{
	int attempts = attempts_of(s, key) + 1;

	json_object_set_new(s->attempts, key, json_integer(attempts));
	if (write_state(s, key, attempts, -1, 0, NULL) < 0)
		return -1;
	if (renameat(s->curfd, key, s->queuefd, key) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

static int
add_retry(struct spool_sub *s, const char *key, int64_t due)
{
	struct retry_entry *more;

	if (s->nretries == s->capretries) {
		size_t cap = s->capretries ? s->capretries * 2 : 16;

		if ((more = realloc(s->retries, cap * sizeof *more)) == NULL)
			return -1;
		s->retries = more;
		s->capretries = cap;
	}
	key_to_bin(key, &s->retries[s->nretries].key);
	s->retries[s->nretries++].due_ms = due;
	return 0;
}

static int
load_retry(struct spool_sub *s, const char *key)
{
	return add_retry(s, key, state_due(s, key));
}

/* --since: link logged events that match into the queue again. */
static int
replay_log(struct spool_sub *s, const struct ev_sub_opts *o)
{
	int64_t oldest = o->replay_all ? 0 : ev_now_ms() - o->since_ms;
	struct ev_envelope env;
	struct ev_err err;
	struct dirent *de;
	size_t len;
	char *text;
	int i, match;
	DIR *d;

	if ((d = ev_opendir_at(s->sp->logfd)) == NULL)
		return -1;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!ev_key_valid(de->d_name) ||
		    ev_key_time_ms(de->d_name) < oldest ||
		    ev_read_file_at(s->sp->logfd, de->d_name, 64 * 1024 * 1024,
		    &text, &len) < 0)
			continue;
		match = 0;
		if (ev_envelope_parse(text, len, &env, &err) == 0) {
			for (i = 0; !match && i < o->npatterns; i++)
				match = ev_pattern_match(o->patterns[i], env.type);
			ev_envelope_free(&env);
		}
		free(text);
		/* An event this subscription still holds (in flight, waiting
		 * for a retry, dead) is not queued a second time. */
		if (match && (faccessat(s->curfd, de->d_name, F_OK,
		    AT_SYMLINK_NOFOLLOW) == 0 || faccessat(s->retryfd,
		    de->d_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
		    faccessat(s->deadfd, de->d_name, F_OK,
		    AT_SYMLINK_NOFOLLOW) == 0))
			continue;
		if (match && linkat(s->sp->logfd, de->d_name, s->queuefd,
		    de->d_name, 0) < 0 && errno != EEXIST) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* ---- opening --------------------------------------------------------- */

/* Is the process that wrote HELD (a pid) into the lock gone? */
static int
holder_gone(const char *held)
{
	char *end;
	long pid;

	errno = 0;
	pid = strtol(held, &end, 10);
	if (errno != 0 || end == held || *end != '\0' || pid <= 0)
		return 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static int
take_lock(struct spool_sub *s, struct ev_err *err)
{
	char pid[32], held[32];
	ssize_t n;
	int tries;

	s->lockfd = openat(s->fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, s->sp->file_mode);
	if (s->lockfd < 0)
		return ev_fail_errno(err, ev_status_for_errno(errno),
		    "cannot open %s/%s/lock", s->sp->path, s->dir);
	/* The umask may have taken the group's bits: fix them, on a lock
	 * file of our own (another member's is theirs to fix). */
	if (s->sp->fix_mode) {
		struct stat lst;

		if (fstat(s->lockfd, &lst) == 0 && lst.st_uid == geteuid() &&
		    (lst.st_mode & 07777) != s->sp->file_mode)
			(void)fchmod(s->lockfd, s->sp->file_mode);
	}
	for (tries = 0; flock(s->lockfd, LOCK_EX | LOCK_NB) < 0; tries++) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return ev_fail_errno(err, EX_IOERR, "cannot lock %s/%s",
			    s->sp->path, s->dir);
		n = pread(s->lockfd, held, sizeof held - 1, 0);
		held[n > 0 ? n : 0] = '\0';
		held[strcspn(held, "\n")] = '\0';
		/* An evsub killed while starting a handler leaves the lock
		 * shared with that child until its exec closes it (the
		 * descriptor is close-on-exec): when the pid in the lock is
		 * gone, wait a moment for that rather than refuse. */
		if (tries < 200 && holder_gone(held)) {
			usleep(10 * 1000);
			continue;
		}
		return ev_fail(err, EX_TEMPFAIL,
		    "subscription '%s' is held by process %s", s->name,
		    held[0] ? held : "(unknown)");
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(s->lockfd, 0) < 0 || pwrite(s->lockfd, pid, (size_t)n, 0) != n)
		return ev_fail_errno(err, EX_IOERR, "cannot write %s/%s/lock",
		    s->sp->path, s->dir);
	return 0;
}

/* Register the patterns, unless the index already has exactly these. */
static int
register_patterns(struct spool_sub *s, const struct ev_sub_opts *o,
    struct ev_err *err)
{
	struct spool_index idx;
	int i, j, same = 0, rc;

	if ((rc = spool_index_read(s->sp, &idx, err)) != 0)
		return rc;
	for (i = 0; i < idx.nsubs; i++) {
		if (strcmp(idx.subs[i].dir, s->dir) != 0 ||
		    idx.subs[i].npatterns != o->npatterns)
			continue;
		for (same = 1, j = 0; j < o->npatterns; j++)
			same &= strcmp(idx.subs[i].patterns[j], o->patterns[j]) == 0;
	}
	spool_index_free(&idx);
	if (same)
		return 0;
	return spool_index_update(s->sp, s->dir, o->patterns, o->npatterns, err);
}

static int
open_dirs(struct spool_sub *s, struct ev_err *err)
{
	static const char *const names[] = { "queue", "cur", "retry", "dead",
	    "state" };
	int *fds[] = { &s->queuefd, &s->curfd, &s->retryfd, &s->deadfd,
	    &s->statefd };
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if ((*fds[i] = spool_open_dir_at(s->fd, names[i])) < 0)
			return ev_fail_errno(err, ev_status_for_errno(errno),
			    "cannot open %s/%s/%s", s->sp->path, s->dir, names[i]);
	return 0;
}

static int
start_watch(struct spool_sub *s)
{
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/%s/queue", s->sp->path, s->dir);
	s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ifd >= 0 && inotify_add_watch(s->ifd, path, IN_CREATE |
	    IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW) < 0) {
		close(s->ifd);
		s->ifd = -1;
	}
	return s->ifd >= 0;
}

static void
free_sub(struct spool_sub *s)
{
	int *fds[] = { &s->fd, &s->queuefd, &s->curfd, &s->retryfd,
	    &s->deadfd, &s->statefd, &s->ifd, &s->lockfd };
	size_t i;

	for (i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	json_decref(s->attempts);
	free(s->heap);
	free(s->retries);
	free(s);
}

int
spool_sub_open(struct ev_bus *bus, const struct ev_sub_opts *o,
    struct ev_sub **subp, struct ev_err *err)
{
	struct spool *sp = (struct spool *)bus;
	struct spool_sub *s;
	const char *why;
	char rnd[EV_KEY_LEN + 1];
	int i, rc;

	if (o->name != NULL && ev_name_valid(o->name, &why) != 0)
		return ev_fail(err, EX_USAGE, "invalid subscription name '%s': %s",
		    o->name, why);
	if (o->npatterns == 0)
		return ev_fail(err, EX_USAGE, "no pattern given");
	for (i = 0; i < o->npatterns; i++)
		if (ev_pattern_valid(o->patterns[i], &why) != 0)
			return ev_fail(err, EX_USAGE, "invalid pattern '%s': %s",
			    o->patterns[i], why);
	if ((s = calloc(1, sizeof *s)) == NULL)
		return ev_fail_errno(err, EX_OSERR, "out of memory");
	s->base.ops = &ev_spool_backend;
	s->sp = sp;
	s->fd = s->queuefd = s->curfd = s->retryfd = s->deadfd = s->statefd =
	    s->lockfd = s->ifd = -1;
	s->ordered = o->ordered;
	s->peek = o->peek;
	s->base.name = s->name;
	s->attempts = json_object();
	if (o->name != NULL) {
		snprintf(s->name, sizeof s->name, "%s", o->name);
		snprintf(s->dir, sizeof s->dir, "subs/%s", o->name);
		s->parentfd = sp->subsfd;
	} else {
		ev_key_new(rnd);
		snprintf(s->name, sizeof s->name, "%ld-%.8s", (long)getpid(),
		    rnd + 28);
		snprintf(s->dir, sizeof s->dir, "eph/%s", s->name);
		s->parentfd = sp->ephfd;
		s->ephemeral = 1;
	}
	if ((rc = spool_sub_mkdirs(sp, s->parentfd, s->name, err)) != 0)
		goto fail;
	if ((s->fd = spool_open_dir_at(s->parentfd, s->name)) < 0) {
		rc = ev_fail_errno(err, ev_status_for_errno(errno),
		    "cannot open %s/%s", sp->path, s->dir);
		goto fail;
	}
	if ((rc = take_lock(s, err)) != 0 || (rc = open_dirs(s, err)) != 0)
		goto fail;
	/* Watch before listing, so nothing arriving in between is missed. */
	if (!start_watch(s))
		s->next_poll_ms = ev_monotonic_ms() + POLL_FALLBACK_MS;
	if ((rc = register_patterns(s, o, err)) != 0)
		goto fail;
	if (load_states(s) < 0 || each_key(s->curfd, recover_inflight, s) < 0 ||
	    each_key(s->retryfd, load_retry, s) < 0 ||
	    ((o->since_ms >= 0 || o->replay_all) && replay_log(s, o) < 0) ||
	    rescan_queue(s) < 0) {
		rc = ev_fail_errno(err, ev_status_for_errno(errno),
		    "cannot read subscription %s/%s", sp->path, s->dir);
		goto fail;
	}
	*subp = &s->base;
	return 0;
fail:
	if (s->ephemeral && s->lockfd >= 0)
		spool_sub_remove(s->parentfd, s->name);
	free_sub(s);
	return rc;
}

void
spool_sub_close(struct ev_sub *sub)
{
	struct spool_sub *s = (struct spool_sub *)sub;
	struct ev_err ignored;

	if (s->ephemeral) {
		spool_index_update(s->sp, s->dir, NULL, 0, &ignored);
		spool_sub_remove(s->parentfd, s->name);
	}
	free_sub(s);
}

int
spool_sub_fd(const struct ev_sub *sub)
{
	return ((const struct spool_sub *)sub)->ifd;
}

int
spool_sub_refresh(struct ev_sub *sub, struct ev_err *err)
{
	struct spool_sub *s = (struct spool_sub *)sub;
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ie;
	ssize_t n;
	char *p;
	int overflow = 0;

	if (s->ifd < 0) {
		if (ev_monotonic_ms() < s->next_poll_ms)
			return 0;
		s->next_poll_ms = ev_monotonic_ms() + POLL_FALLBACK_MS;
		overflow = 1;
	}
	while (s->ifd >= 0 && (n = read(s->ifd, buf, sizeof buf)) > 0) {
		for (p = buf; p < buf + n; p += sizeof *ie + ie->len) {
			ie = (const struct inotify_event *)p;
			if (ie->mask & IN_Q_OVERFLOW)
				overflow = 1;
			else if (ie->len > 0 && ev_key_valid(ie->name) &&
			    push_key(s, ie->name) < 0)
				return ev_fail_errno(err, EX_OSERR, "out of memory");
		}
	}
	if (overflow && rescan_queue(s) < 0)
		return ev_fail_errno(err, EX_IOERR, "cannot list %s/%s/queue",
		    s->sp->path, s->dir);
	return 0;
}

/* ---- taking and settling --------------------------------------------- */

/* Where a delivery taken in place (peek) still is: d->backend points here. */
static char in_queue;

/* Open a taken event; anything but a regular file (a planted symlink, a
 * fifo, a directory) is refused without being followed: -1 with errno, or
 * -2 for a file of the wrong type. */
static int
open_event(int dirfd, const char *key)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, key, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -2 : -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -2;
	}
	return fd;
}

/* The retry to take next: the smallest key among those due, or with
 * --ordered the smallest of all (due or not, it holds the others back). */
static size_t
next_retry(const struct spool_sub *s, int64_t now)
{
	size_t i, best = SIZE_MAX;

	for (i = 0; i < s->nretries; i++) {
		if (!s->ordered && s->retries[i].due_ms > now)
			continue;
		if (best == SIZE_MAX || memcmp(s->retries[i].key.b,
		    s->retries[best].key.b, 16) < 0)
			best = i;
	}
	return best;
}

int
spool_sub_take(struct ev_sub *sub, struct ev_delivery *d, int64_t *wait_ms,
    struct ev_err *err)
{
	struct spool_sub *s = (struct spool_sub *)sub;
	struct ev_failure bad = { .exit_status = -1 };
	int64_t now = ev_now_ms(), next_due = -1;
	size_t i, best;
	int from_retry, srcfd, in_place;
	binkey k;

	d->fd = -1;
	for (;;) {
		best = next_retry(s, now);
		if (s->ordered && best != SIZE_MAX) {
			if (s->retries[best].due_ms > now) {
				next_due = s->retries[best].due_ms;
				break;
			}
			from_retry = 1;
		} else {
			from_retry = best != SIZE_MAX && (s->nheap == 0 ||
			    memcmp(s->retries[best].key.b, s->heap[0].b, 16) < 0);
		}
		if (!from_retry && s->nheap == 0)
			break;
		if (from_retry) {
			k = s->retries[best].key;
			s->retries[best] = s->retries[--s->nretries];
			srcfd = s->retryfd;
		} else {
			k = s->heap[0];
			heap_pop(s);
			if (memcmp(k.b, s->last_taken.b, 16) == 0)
				continue;   /* reported twice by inotify */
			srcfd = s->queuefd;
		}
		bin_to_key(&k, d->key);
		in_place = s->peek && !from_retry;
		if (!in_place && renameat(srcfd, d->key, s->curfd, d->key) < 0) {
			if (errno == ENOENT)
				continue;   /* gone: taken or removed meanwhile */
			return ev_fail_errno(err, EX_IOERR, "cannot take %s/%s/%s",
			    s->sp->path, s->dir, d->key);
		}
		s->last_taken = k;
		d->attempt = attempts_of(s, d->key) + 1;
		d->backend = in_place ? &in_queue : NULL;
		d->fd = open_event(in_place ? s->queuefd : s->curfd, d->key);
		if (d->fd >= 0)
			return 0;
		if (d->fd == -1 && errno == ENOENT)
			continue;
		snprintf(bad.reason, sizeof bad.reason,
		    "not a readable regular file: %s", d->fd == -2 ?
		    "wrong file type" : strerror(errno));
		d->fd = -1;
		if (spool_sub_dead(sub, d, &bad, err) != 0)
			return err->status;
	}
	for (i = 0; !s->ordered && i < s->nretries; i++)
		if (next_due < 0 || s->retries[i].due_ms < next_due)
			next_due = s->retries[i].due_ms;
	*wait_ms = next_due < 0 ? -1 : next_due - now;
	if (next_due >= 0 && *wait_ms < 0)
		*wait_ms = 0;
	if (s->ifd < 0) {
		int64_t poll_in = s->next_poll_ms - ev_monotonic_ms();

		if (poll_in < 0)
			poll_in = 0;
		if (*wait_ms < 0 || poll_in < *wait_ms)
			*wait_ms = poll_in;
	}
	return 0;
}

static int
settle_fd(struct ev_delivery *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	return 0;
}

/* The event left the subscription: if it comes back (evctl retry or
 * replay), it is a new arrival, not an inotify duplicate to skip. */
static void
forget_taken(struct spool_sub *s, const char *key)
{
	binkey k;

	key_to_bin(key, &k);
	if (memcmp(k.b, s->last_taken.b, 16) == 0)
		memset(&s->last_taken, 0, sizeof s->last_taken);
}

static void
forget_state(struct spool_sub *s, const char *key)
{
	if (json_object_get(s->attempts, key) != NULL) {
		json_object_del(s->attempts, key);
		unlinkat(s->statefd, key, 0);
	}
}

int
spool_sub_ack(struct ev_sub *sub, struct ev_delivery *d, struct ev_err *err)
{
	struct spool_sub *s = (struct spool_sub *)sub;
	int dirfd = d->backend == &in_queue ? s->queuefd : s->curfd;

	settle_fd(d);
	if (unlinkat(dirfd, d->key, 0) < 0 && errno != ENOENT)
		return ev_fail_errno(err, EX_IOERR, "cannot remove %s/%s/%s",
		    s->sp->path, s->dir, d->key);
	forget_state(s, d->key);
	forget_taken(s, d->key);
	return 0;
}

int
spool_sub_retry(struct ev_sub *sub, struct ev_delivery *d, int64_t delay_ms,
    const struct ev_failure *why, struct ev_err *err)
{
	struct spool_sub *s = (struct spool_sub *)sub;
	int64_t due = ev_now_ms() + delay_ms;
	int fromfd = d->backend == &in_queue ? s->queuefd : s->curfd;

	settle_fd(d);
	json_object_set_new(s->attempts, d->key, json_integer(d->attempt));
	if (write_state(s, d->key, d->attempt, due, 0, why) < 0 ||
	    renameat(fromfd, d->key, s->retryfd, d->key) < 0 ||
	    add_retry(s, d->key, due) < 0)
		return ev_fail_errno(err, EX_IOERR, "cannot schedule retry of "
		    "%s/%s/%s", s->sp->path, s->dir, d->key);
	return 0;
}

int
spool_sub_dead(struct ev_sub *sub, struct ev_delivery *d,
    const struct ev_failure *why, struct ev_err *err)
{
	struct spool_sub *s = (struct spool_sub *)sub;
	int fromfd = d->backend == &in_queue ? s->queuefd : s->curfd;

	settle_fd(d);
	if (write_state(s, d->key, d->attempt, -1, 1, why) < 0 ||
	    renameat(fromfd, d->key, s->deadfd, d->key) < 0)
		return ev_fail_errno(err, EX_IOERR, "cannot move %s/%s/%s to "
		    "the dead letters", s->sp->path, s->dir, d->key);
	json_object_del(s->attempts, d->key);
	forget_taken(s, d->key);
	return 0;
}

int
spool_sub_release(struct ev_sub *sub, struct ev_delivery *d,
    struct ev_err *err)
{
	struct spool_sub *s = (struct spool_sub *)sub;
	binkey k;

	settle_fd(d);
	if (d->backend == &in_queue)
		return 0;   /* never left the queue */
	if (renameat(s->curfd, d->key, s->queuefd, d->key) < 0)
		return ev_fail_errno(err, EX_IOERR, "cannot put back %s/%s/%s",
		    s->sp->path, s->dir, d->key);
	key_to_bin(d->key, &k);
	memset(&s->last_taken, 0, sizeof s->last_taken);
	return heap_push(s, &k) < 0 ?
	    ev_fail_errno(err, EX_OSERR, "out of memory") : 0;
}
