/*
 * err.c: the one error pattern of the library. A failing function fills a
 * struct ev_err with a status from sysexits(3) and one line of text, and
 * returns the status; the tool prefixes its name and exits with it.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int
vfail(struct ev_err *err, int status, int errnum, const char *fmt, va_list ap)
{
	size_t used;

	if (err == NULL)
		return status;
	err->status = status;
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	if (errnum != 0) {
		used = strlen(err->msg);
		snprintf(err->msg + used, sizeof err->msg - used, ": %s",
		    strerror(errnum));
	}
	return status;
}

int
ev_fail(struct ev_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, status, 0, fmt, ap);
	va_end(ap);
	return status;
}

int
ev_fail_errno(struct ev_err *err, int status, const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	vfail(err, status, errnum, fmt, ap);
	va_end(ap);
	return status;
}

int
ev_status_for_errno(int errnum)
{
	switch (errnum) {
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
	case EEXIST:
		return EX_CANTCREAT;
	case EAGAIN:
	case EINTR:
		return EX_TEMPFAIL;
	default:
		return EX_IOERR;
	}
}
