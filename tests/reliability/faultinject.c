/*
 * faultinject.c: an LD_PRELOAD shim that makes one call of a libc wrapper
 * fail, or kills the process right at it, to prove that evspool's tools
 * lose nothing when a system call fails or the power goes at that point.
 *
 * The tools link libc dynamically, so these definitions are found before
 * libc's. Environment:
 *
 *   EVFI_CALL   fsync, write, rename, renameat (also renameat2), link,
 *               linkat, unlink, unlinkat, syncfs, openat (also open),
 *               inotify_init1, pread (also pread64)
 *   EVFI_NTH    which call of it to hit, counting from 1 (default 1)
 *   EVFI_ERRNO  EIO, ENOSPC, EACCES, EMFILE (default EIO); the call fails
 *               with it and does nothing
 *   EVFI_KILL   1: SIGKILL the process at that call instead, before it is
 *               made (a power cut right before the call)
 *   EVFI_ALL    1: fail that call and every later one of the same wrapper
 *   EVFI_LOG    a file: append "CALL N ARG" for every call of a wrapper
 *               above (one write each, O_APPEND), to learn the sequence
 *   EVFI_CLOCK_BACK_MS
 *               every clock_gettime(CLOCK_REALTIME) and time() answers
 *               that many milliseconds further in the past than the one
 *               before it: the wall clock keeps stepping back
 *
 * Only the process that loaded the shim is affected: a forked child (the
 * detached gc) and anything it executes (handlers) run untouched, because
 * the constructor takes LD_PRELOAD out of the environment and the pid is
 * checked at every call.
 *
 * Build: cc -shared -fPIC -O2 -o faultinject.so faultinject.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static char fi_call[32];
static long fi_nth = 1, fi_count[16];
static int fi_errno = EIO, fi_kill, fi_all, fi_logfd = -1;
static long long fi_back_ms, fi_clock_calls;
static pid_t fi_pid;

enum { C_FSYNC, C_WRITE, C_RENAME, C_RENAMEAT, C_LINK, C_LINKAT, C_UNLINK,
    C_UNLINKAT, C_SYNCFS, C_OPENAT, C_INOTIFY, C_PREAD, C_N };
static const char *const fi_names[C_N] = { "fsync", "write", "rename",
    "renameat", "link", "linkat", "unlink", "unlinkat", "syncfs", "openat",
    "inotify_init1", "pread" };

__attribute__((constructor)) static void
fi_init(void)
{
	const char *v;

	fi_pid = getpid();
	if ((v = getenv("EVFI_CALL")) != NULL)
		snprintf(fi_call, sizeof fi_call, "%s", v);
	if ((v = getenv("EVFI_NTH")) != NULL)
		fi_nth = atol(v);
	if ((v = getenv("EVFI_ERRNO")) != NULL) {
		fi_errno = strcmp(v, "ENOSPC") == 0 ? ENOSPC :
		    strcmp(v, "EACCES") == 0 ? EACCES :
		    strcmp(v, "EMFILE") == 0 ? EMFILE : EIO;
	}
	fi_kill = (v = getenv("EVFI_KILL")) != NULL && strcmp(v, "1") == 0;
	fi_all = (v = getenv("EVFI_ALL")) != NULL && strcmp(v, "1") == 0;
	if ((v = getenv("EVFI_CLOCK_BACK_MS")) != NULL)
		fi_back_ms = atoll(v);
	if ((v = getenv("EVFI_LOG")) != NULL)
		fi_logfd = (int)syscall(SYS_openat, AT_FDCWD, v,
		    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	/* Handlers and helpers the tool runs are not under test. */
	unsetenv("LD_PRELOAD");
}

/* Count a call of wrapper C; returns -1 (errno set) when it is to fail,
 * does not return when it is to be killed, 0 to go on. */
static int
fi_hit(int c, const char *arg)
{
	char line[512];
	long n;
	int len;

	if (getpid() != fi_pid)
		return 0;
	n = ++fi_count[c];
	if (fi_logfd >= 0) {
		len = snprintf(line, sizeof line, "%s %ld %s\n", fi_names[c], n,
		    arg ? arg : "-");
		if (len > (int)sizeof line - 1)
			len = (int)sizeof line - 1;
		(void)syscall(SYS_write, fi_logfd, line, (size_t)len);
	}
	if (strcmp(fi_call, fi_names[c]) != 0 ||
	    (n != fi_nth && !(fi_all && n > fi_nth)))
		return 0;
	if (fi_kill) {
		kill(getpid(), SIGKILL);
		for (;;)
			pause();
	}
	errno = fi_errno;
	return -1;
}

#define NEXT(name) static __typeof__(name) *real; \
	if (real == NULL) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

int
fsync(int fd)
{
	NEXT(fsync);
	return fi_hit(C_FSYNC, NULL) < 0 ? -1 : real(fd);
}

int
syncfs(int fd)
{
	NEXT(syncfs);
	return fi_hit(C_SYNCFS, NULL) < 0 ? -1 : real(fd);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	NEXT(write);
	/* stdout and stderr are the tool's reports, not the spool. */
	if (fd > 2 && fi_hit(C_WRITE, NULL) < 0)
		return -1;
	return real(fd, buf, len);
}

int
rename(const char *from, const char *to)
{
	NEXT(rename);
	return fi_hit(C_RENAME, to) < 0 ? -1 : real(from, to);
}

int
renameat(int ffd, const char *from, int tfd, const char *to)
{
	NEXT(renameat);
	return fi_hit(C_RENAMEAT, to) < 0 ? -1 : real(ffd, from, tfd, to);
}

/* Counted as renameat: the take's renameat2(RENAME_NOREPLACE) is the same
 * step of the protocol as the renameat it replaced. */
int
renameat2(int ffd, const char *from, int tfd, const char *to, unsigned flags)
{
	NEXT(renameat2);
	return fi_hit(C_RENAMEAT, to) < 0 ? -1 : real(ffd, from, tfd, to, flags);
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	NEXT(pread);
	return fi_hit(C_PREAD, NULL) < 0 ? -1 : real(fd, buf, len, off);
}

ssize_t
pread64(int fd, void *buf, size_t len, off64_t off)
{
	NEXT(pread64);
	return fi_hit(C_PREAD, NULL) < 0 ? -1 : real(fd, buf, len, off);
}

int
link(const char *from, const char *to)
{
	NEXT(link);
	return fi_hit(C_LINK, to) < 0 ? -1 : real(from, to);
}

int
linkat(int ffd, const char *from, int tfd, const char *to, int flags)
{
	NEXT(linkat);
	return fi_hit(C_LINKAT, to) < 0 ? -1 : real(ffd, from, tfd, to, flags);
}

int
unlink(const char *path)
{
	NEXT(unlink);
	return fi_hit(C_UNLINK, path) < 0 ? -1 : real(path);
}

int
unlinkat(int fd, const char *path, int flags)
{
	NEXT(unlinkat);
	return fi_hit(C_UNLINKAT, path) < 0 ? -1 : real(fd, path, flags);
}

int
openat(int fd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	NEXT(openat);
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (fi_hit(C_OPENAT, path) < 0)
		return -1;
	return real(fd, path, flags, mode);
}

int
openat64(int fd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return openat(fd, path, flags, mode);
}

int
inotify_init1(int flags)
{
	NEXT(inotify_init1);
	return fi_hit(C_INOTIFY, NULL) < 0 ? -1 : real(flags);
}

/* The wall clock, stepping back by fi_back_ms at every reading. */
int
clock_gettime(clockid_t id, struct timespec *ts)
{
	long long ns;
	int rc;

	NEXT(clock_gettime);
	rc = real(id, ts);
	if (rc == 0 && fi_back_ms > 0 && id == CLOCK_REALTIME) {
		ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec -
		    ++fi_clock_calls * fi_back_ms * 1000000LL;
		ts->tv_sec = (time_t)(ns / 1000000000LL);
		ts->tv_nsec = (long)(ns % 1000000000LL);
	}
	return rc;
}

time_t
time(time_t *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (t != NULL)
		*t = ts.tv_sec;
	return ts.tv_sec;
}
