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
 * touches the event file, which other subscriptions share. A state/KEY
 * whose KEY is nowhere in the subscription (an acknowledgement cut short
 * between its two unlinks) is removed at the next start.
 *
 * Taking opens the event where it is, then renames it into cur/ with
 * RENAME_NOREPLACE:
 *  - an entry that cannot be opened because of the entry itself (a symlink,
 *    not a regular file, EACCES) goes to the dead letters;
 *  - one that cannot be opened for a reason of the process or the system
 *    (EMFILE, ENFILE, ENOMEM, EIO...) has not moved: it stays where it was,
 *    with no attempt counted. While handlers run, nothing more is taken
 *    for a second (STALL_MS), then the event is tried again; with none
 *    running, the take fails with EX_TEMPFAIL (a running evsub says so
 *    and tries again later; evsub --once exits 75);
 *  - when cur/KEY exists already (evctl replay linked queue/KEY again while
 *    the same event was in flight), the queued copy is left in queue/ and
 *    parked: it is taken again once the delivery in flight is settled, and
 *    never renamed over it.
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
#define STALL_MS 1000       /* after a temporary failure to open an event */

/* A key in 16 bytes; memcmp order is the text's order. */
typedef struct {
	unsigned char b[16];
} binkey;

struct retry_entry {
	binkey key;
	int64_t due_ms;
};

/* A key whose take found cur/KEY taken by a delivery in flight: it waits
 * where it is (queue/ or retry/) until that delivery is settled. */
struct parked_entry {
	binkey key;
	int64_t due_ms;                   /* of a retry */
	int from_retry;
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
	struct retry_entry *retries;
	size_t nretries, capretries;
	struct parked_entry *parked;
	size_t nparked, capparked;
	json_t *attempts;                 /* KEY -> attempts already made */
	int inflight;                     /* deliveries taken, not yet settled */
	int64_t stall_until_ms;           /* monotonic; 0: not stalled */
	int no_noreplace;                 /* the file system refuses
	                                   * RENAME_NOREPLACE */
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

/* Is KEY in DIRFD? Anything but a clear "no" counts as yes. */
static int
key_in(int dirfd, const char *key)
{
	return faccessat(dirfd, key, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT;
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
		if (!ev_key_valid(de->d_name) || key_in(s->deadfd, de->d_name))
			continue;
		/* A state whose event is in none of queue/, cur/, retry/ and
		 * dead/ belongs to an event that was acknowledged by an evsub
		 * that died between the two unlinks of spool_sub_ack(): the
		 * event is done, its count means nothing any more, and kept it
		 * would count against the event if it came back (evctl replay,
		 * --since). Nobody else writes state files while we hold the
		 * lock, and each writer puts the state in place before it
		 * moves the event out of cur/. */
		if (!key_in(s->queuefd, de->d_name) &&
		    !key_in(s->curfd, de->d_name) &&
		    !key_in(s->retryfd, de->d_name)) {
			unlinkat(s->statefd, de->d_name, 0);
			continue;
		}
		if (ev_read_file_at(s->statefd, de->d_name, 65536, &text,
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

/* Is the file open as LOCKFD still the lock of the subscription, linked
 * at PARENT/NAME/lock? 1 yes, 0 no (removed, or replaced by a new one),
 * -1 with errno when it cannot be told. */
static int
lock_is_current(const struct spool_sub *s)
{
	char path[EV_NAME_MAX + 16];
	struct stat mine, there;

	snprintf(path, sizeof path, "%s/lock", s->name);
	if (fstat(s->lockfd, &mine) < 0)
		return -1;
	if (fstatat(s->parentfd, path, &there, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	return mine.st_nlink > 0 && mine.st_dev == there.st_dev &&
	    mine.st_ino == there.st_ino;
}

/*
 * Take the subscription's lock. evctl rm (and, for an ephemeral
 * subscription, the gc) removes a subscription while holding its lock: an
 * evsub that opened the lock file before the removal and gets the flock
 * after it holds the lock of a directory that is gone. So once the flock
 * is ours, the file must still be the one at NAME/lock; when it is not,
 * *removed is set and the caller creates the subscription again, as if it
 * had started just after the removal.
 */
static int
take_lock(struct spool_sub *s, int *removed, struct ev_err *err)
{
	char pid[32], held[32];
	ssize_t n;
	int tries, current;

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
	if ((current = lock_is_current(s)) < 0)
		return ev_fail_errno(err, ev_status_for_errno(errno),
		    "cannot check %s/%s/lock", s->sp->path, s->dir);
	if (!current) {
		*removed = 1;
		return ev_fail(err, EX_TEMPFAIL, "subscription '%s' was "
		    "removed while evsub was starting", s->name);
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
	free(s->parked);
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
	int i, rc, tries, removed;

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
	/* A subscription removed under a starting evsub is made again; a
	 * few times only, so that an evsub racing a loop of evctl rm gives
	 * up (75) rather than spin. */
	for (tries = 0;; tries++) {
		removed = 0;
		if ((rc = spool_sub_mkdirs(sp, s->parentfd, s->name, err)) != 0)
			goto fail;
		if ((s->fd = spool_open_dir_at(s->parentfd, s->name)) < 0) {
			rc = ev_fail_errno(err, ev_status_for_errno(errno),
			    "cannot open %s/%s", sp->path, s->dir);
			goto fail;
		}
		if ((rc = take_lock(s, &removed, err)) == 0)
			break;
		if (!removed || tries == 2)
			goto fail;
		close(s->lockfd);
		close(s->fd);
		s->lockfd = s->fd = -1;
	}
	if ((rc = open_dirs(s, err)) != 0)
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

enum {
	OPEN_GONE = -1,        /* no such entry: taken or removed meanwhile */
	OPEN_BAD = -2,         /* the entry's fault: for the dead letters */
	OPEN_TRANSIENT = -3    /* the process's or the system's: try later */
};

/* Errors of open(2) and fstat(2) that say nothing about the entry: out of
 * descriptors or memory, a device error. The entry stays and is tried
 * again. Everything else (ELOOP for a symlink, EACCES, ENXIO for a socket,
 * EOVERFLOW...) is what the entry is, and does not change by waiting. */
static int
transient_errno(int e)
{
	switch (e) {
	case EAGAIN:
	case EINTR:
	case EIO:
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		return 1;
	default:
		return 0;
	}
}

/* Open the entry KEY of DIRFD; anything but a regular file (a planted
 * symlink, a fifo, a directory) is refused without being followed. Returns
 * the descriptor, or OPEN_* with *errnum (0 for a file of the wrong type). */
static int
open_event(int dirfd, const char *key, int *errnum)
{
	struct stat st;
	int fd;

	*errnum = 0;
	do
		fd = openat(dirfd, key, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		/* ELOOP: a symbolic link, refused as a wrong file type. */
		*errnum = errno == ELOOP ? 0 : errno;
		return errno == ENOENT ? OPEN_GONE : transient_errno(errno) ?
		    OPEN_TRANSIENT : OPEN_BAD;
	}
	if (fstat(fd, &st) < 0) {
		*errnum = errno;
		close(fd);
		return transient_errno(*errnum) ? OPEN_TRANSIENT : OPEN_BAD;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return OPEN_BAD;
	}
	return fd;
}

/* Rename FROMFD/KEY to cur/KEY, never over a cur/KEY in flight: -1 with
 * EEXIST then. A file system without RENAME_NOREPLACE (EINVAL: NFS, some
 * FUSE) gets a check before a plain rename, which leaves a gap that only a
 * concurrent evctl replay can hit. */
static int
take_rename(struct spool_sub *s, int fromfd, const char *key)
{
	if (!s->no_noreplace) {
		if (renameat2(fromfd, key, s->curfd, key, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EINVAL && errno != ENOSYS)
			return -1;
		s->no_noreplace = 1;
	}
	if (faccessat(s->curfd, key, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	return renameat(fromfd, key, s->curfd, key);
}

static int
park(struct spool_sub *s, const binkey *k, int from_retry, int64_t due)
{
	struct parked_entry *more;
	size_t i;

	/* Once per place: a rescan of the queue (an inotify overflow, or
	 * every second without inotify) finds a parked entry again. */
	for (i = 0; i < s->nparked; i++)
		if (memcmp(s->parked[i].key.b, k->b, 16) == 0 &&
		    s->parked[i].from_retry == from_retry)
			return 0;
	if (s->nparked == s->capparked) {
		size_t cap = s->capparked ? s->capparked * 2 : 8;

		if ((more = realloc(s->parked, cap * sizeof *more)) == NULL)
			return -1;
		s->parked = more;
		s->capparked = cap;
	}
	s->parked[s->nparked].key = *k;
	s->parked[s->nparked].due_ms = due;
	s->parked[s->nparked++].from_retry = from_retry;
	return 0;
}

/* The delivery of KEY is settled: what waited for it may be taken. */
static int
settled(struct spool_sub *s, const char *key)
{
	struct parked_entry p;
	size_t i = 0;
	binkey k;
	char pkey[EV_KEY_LEN + 1];

	s->inflight--;
	key_to_bin(key, &k);
	while (i < s->nparked) {
		if (memcmp(s->parked[i].key.b, k.b, 16) != 0) {
			i++;
			continue;
		}
		p = s->parked[i];
		s->parked[i] = s->parked[--s->nparked];
		bin_to_key(&p.key, pkey);
		if ((p.from_retry ? add_retry(s, pkey, p.due_ms) :
		    heap_push(s, &p.key)) < 0)
			return -1;
	}
	return 0;
}

/* Is taking held back after a temporary failure? Only while deliveries
 * are in flight: once none is, trying again costs nothing, and a second
 * failure then ends the take with EX_TEMPFAIL. */
static int
stalled(const struct spool_sub *s)
{
	return s->stall_until_ms > 0 && s->inflight > 0 &&
	    ev_monotonic_ms() < s->stall_until_ms;
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
	int64_t now = ev_now_ms(), next_due = -1, due = 0;
	size_t i, best;
	int from_retry, srcfd, in_place, fd, e;
	binkey k;

	d->fd = -1;
	if (!stalled(s))
		s->stall_until_ms = 0;
	while (s->stall_until_ms == 0) {
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
			due = s->retries[best].due_ms;
			s->retries[best] = s->retries[--s->nretries];
			srcfd = s->retryfd;
		} else {
			k = s->heap[0];
			heap_pop(s);
			srcfd = s->queuefd;
		}
		bin_to_key(&k, d->key);
		in_place = s->peek && !from_retry;
		/* Opened where it is, before it moves: an entry that cannot
		 * be opened for now has not moved at all. */
		fd = open_event(srcfd, d->key, &e);
		if (fd == OPEN_GONE)
			continue;   /* a key reported twice, or removed */
		if (fd == OPEN_TRANSIENT) {
			if ((from_retry ? add_retry(s, d->key, due) :
			    heap_push(s, &k)) < 0)
				return ev_fail_errno(err, EX_OSERR,
				    "out of memory");
			if (s->inflight == 0)
				return ev_fail(err, EX_TEMPFAIL, "cannot open "
				    "%s/%s/%s/%s: %s; it stays there, with no "
				    "attempt counted", s->sp->path, s->dir,
				    from_retry ? "retry" : "queue", d->key,
				    strerror(e));
			s->stall_until_ms = ev_monotonic_ms() + STALL_MS;
			break;
		}
		if (!in_place && take_rename(s, srcfd, d->key) < 0) {
			e = errno;
			if (fd >= 0)
				close(fd);
			if (e == ENOENT)
				continue;   /* gone: taken or removed meanwhile */
			if (e == EEXIST) {
				/* The same event is in flight (evctl replay
				 * queued it again meanwhile): this copy waits
				 * in place for that delivery to settle. */
				if (park(s, &k, from_retry, due) < 0)
					return ev_fail_errno(err, EX_OSERR,
					    "out of memory");
				continue;
			}
			errno = e;
			return ev_fail_errno(err, EX_IOERR, "cannot take %s/%s/%s",
			    s->sp->path, s->dir, d->key);
		}
		s->inflight++;
		d->attempt = attempts_of(s, d->key) + 1;
		d->backend = in_place ? &in_queue : NULL;
		if (fd >= 0) {
			d->fd = fd;
			return 0;
		}
		snprintf(bad.reason, sizeof bad.reason,
		    "not a readable regular file: %s", e == 0 ?
		    "wrong file type" : strerror(e));
		if (spool_sub_dead(sub, d, &bad, err) != 0)
			return err->status;
	}
	for (i = 0; !s->ordered && i < s->nretries; i++)
		if (next_due < 0 || s->retries[i].due_ms < next_due)
			next_due = s->retries[i].due_ms;
	*wait_ms = next_due < 0 ? -1 : next_due - now;
	if (next_due >= 0 && *wait_ms < 0)
		*wait_ms = 0;
	if (s->stall_until_ms > 0) {
		int64_t stall_in = s->stall_until_ms - ev_monotonic_ms();

		if (stall_in < 0)
			stall_in = 0;
		if (*wait_ms < 0 || stall_in < *wait_ms)
			*wait_ms = stall_in;
	}
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

static void
forget_state(struct spool_sub *s, const char *key)
{
	if (json_object_get(s->attempts, key) != NULL) {
		json_object_del(s->attempts, key);
		unlinkat(s->statefd, key, 0);
	}
}

/*
 * Done: unlink the event, then its state. In this order, a crash between
 * the two leaves a state whose event is gone, which load_states() removes
 * at the next start: the event was handled, so its count no longer
 * matters. The other order would leave cur/KEY without its state after
 * such a crash, and that event, delivered again, would start over at
 * attempt 1 with the attempts it had already spent forgotten, and so
 * retried more often than -r allows.
 */
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
	if (settled(s, d->key) < 0)
		return ev_fail_errno(err, EX_OSERR, "out of memory");
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
	if (settled(s, d->key) < 0)
		return ev_fail_errno(err, EX_OSERR, "out of memory");
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
	if (settled(s, d->key) < 0)
		return ev_fail_errno(err, EX_OSERR, "out of memory");
	return 0;
}

int
spool_sub_release(struct ev_sub *sub, struct ev_delivery *d,
    struct ev_err *err)
{
	struct spool_sub *s = (struct spool_sub *)sub;
	binkey k;

	settle_fd(d);
	if (d->backend != &in_queue) {
		/* Over a copy parked in queue/: the same event, queued once. */
		if (renameat(s->curfd, d->key, s->queuefd, d->key) < 0)
			return ev_fail_errno(err, EX_IOERR, "cannot put back "
			    "%s/%s/%s", s->sp->path, s->dir, d->key);
		key_to_bin(d->key, &k);
		if (heap_push(s, &k) < 0)
			return ev_fail_errno(err, EX_OSERR, "out of memory");
	}
	/* In place (peek), it never left the queue. */
	if (settled(s, d->key) < 0)
		return ev_fail_errno(err, EX_OSERR, "out of memory");
	return 0;
}
