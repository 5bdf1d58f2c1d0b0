/*
 * io.c: reading and writing whole buffers and small files. Every spool file
 * is opened relative to a directory descriptor with O_NOFOLLOW, so a symlink
 * planted in the spool is refused rather than followed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int
ev_writeall(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t
ev_readall(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int
ev_read_fd(int fd, size_t max, char **out, size_t *outlen)
{
	size_t cap = 4096, len = 0;
	char *buf, *bigger;
	ssize_t n;

	if ((buf = malloc(cap + 1)) == NULL)
		return -1;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			cap *= 2;
			if ((bigger = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				return -1;
			}
			buf = bigger;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		errno = EFBIG;
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	if (outlen != NULL)
		*outlen = len;
	return 0;
}

int
ev_read_file_at(int dirfd, const char *name, size_t max, char **out,
    size_t *outlen)
{
	int fd, rc, saved;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	rc = ev_read_fd(fd, max, out, outlen);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
ev_write_file_atomic(int dirfd, const char *name, const void *buf,
    size_t len, mode_t mode, int sync)
{
	char tmp[256];
	int fd, saved;

	snprintf(tmp, sizeof tmp, ".%s.%ld.tmp", name, (long)getpid());
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) < 0 || ev_writeall(fd, buf, len) < 0 ||
	    (sync && fsync(fd) < 0)) {
		saved = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (sync && fsync(dirfd) < 0)
		return -1;
	return 0;
}

DIR *
ev_opendir_at(int dirfd)
{
	DIR *d;
	int fd, saved;

	/* A copy, so closedir() leaves DIRFD open; close-on-exec, so no
	 * handler inherits it. */
	if ((fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	rewinddir(d);   /* the copy shares the offset of DIRFD */
	return d;
}
