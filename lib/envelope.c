/*
 * envelope.c: reading a stored event.
 *
 * Readers need the envelope (id, type, time, source, causationid,
 * correlationid, subscription) and where the payload is; they never need
 * the payload parsed. The payload was checked when it was published and is
 * kept as the publisher spelled it, which can be valid JSON that jansson
 * cannot hold (1e400, an integer past 64 bits, a \u0000 in a key). So the
 * payload is located, checked as publishers check it, then blanked in a
 * copy, and only the envelope goes through jansson. The common case, an
 * event jansson can hold whole, is parsed in one go.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int
copy_string(json_t *obj, const char *name, char **out, int required)
{
	json_t *v = json_object_get(obj, name);

	*out = NULL;
	if (v == NULL)
		return required ? -1 : 0;
	if (!json_is_string(v))
		return -1;
	*out = strdup(json_string_value(v));
	return *out == NULL ? -1 : 0;
}

int
ev_envelope_parse(const char *text, size_t len, struct ev_envelope *env,
    struct ev_err *err)
{
	json_error_t jerr;
	json_t *obj;
	char *copy;
	size_t plen;
	const char *why;
	int rc = 0;

	memset(env, 0, sizeof *env);
	/* A raw NUL is never valid JSON, but jansson takes one after a
	 * number ("payload":1<NUL>} passes), which would hand readers a
	 * payload span holding a NUL: refuse it, as ev_payload_parse does. */
	if (memchr(text, '\0', len) != NULL)
		return ev_fail(err, EX_DATAERR, "not an event: NUL byte");
	obj = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    &jerr);
	if (json_object_get(obj, "payload") == NULL ||
	    ev_json_member_span(text, len, "payload", &env->payload_off,
	    &env->payload_len) < 0) {
		if (obj != NULL || (json_error_code(&jerr) !=
		    json_error_numeric_overflow && json_error_code(&jerr) !=
		    json_error_null_byte_in_key)) {
			json_decref(obj);
			return ev_fail(err, EX_DATAERR, "not an event: %s",
			    obj ? "no payload" : jerr.text);
		}
		/* Valid JSON jansson cannot hold, or garbage: the payload
		 * is checked on its own, the rest without it. */
		if (ev_json_member_span(text, len, "payload", &env->payload_off,
		    &env->payload_len) < 0 || env->payload_len == 0 ||
		    ev_payload_parse(text + env->payload_off, env->payload_len,
		    SIZE_MAX, &copy, &plen, err) != 0)
			return ev_fail(err, EX_DATAERR, "not an event: bad payload");
		free(copy);
		if ((copy = malloc(len + 1)) == NULL)
			return ev_fail_errno(err, EX_OSERR, "out of memory");
		memcpy(copy, text, len);
		memset(copy + env->payload_off, ' ', env->payload_len);
		copy[env->payload_off] = '0';
		obj = json_loadb(copy, len, JSON_REJECT_DUPLICATES, &jerr);
		free(copy);
	}
	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		return ev_fail(err, EX_DATAERR, "not an event: %s",
		    obj ? "not an object" : jerr.text);
	}
	if (copy_string(obj, "id", &env->id, 1) < 0 ||
	    copy_string(obj, "type", &env->type, 1) < 0 ||
	    copy_string(obj, "time", &env->time, 1) < 0 ||
	    copy_string(obj, "source", &env->source, 0) < 0 ||
	    copy_string(obj, "causationid", &env->causationid, 0) < 0 ||
	    copy_string(obj, "correlationid", &env->correlationid, 0) < 0 ||
	    copy_string(obj, "subscription", &env->subscription, 0) < 0)
		rc = ev_fail(err, EX_DATAERR, "not an event: id, type or time "
		    "missing, or a field is not a string");
	else if (ev_type_valid(env->type, &why) != 0)
		rc = ev_fail(err, EX_DATAERR, "not an event: invalid type: %s",
		    why);
	json_decref(obj);
	if (rc != 0)
		ev_envelope_free(env);
	return rc;
}

void
ev_envelope_free(struct ev_envelope *env)
{
	free(env->id);
	free(env->type);
	free(env->time);
	free(env->source);
	free(env->causationid);
	free(env->correlationid);
	free(env->subscription);
	memset(env, 0, sizeof *env);
}
