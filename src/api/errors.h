/* Errors at the HTTP edge: the one table from negative errno to HTTP status,
 * and the error body of each API family (OpenStack services and S3 each have
 * their own shape, and their clients print the message from that body).
 * Handlers never pick a status for a failure: they return a negative errno
 * with a message, and this file turns it into what the client expects. */
#pragma once

#include <stddef.h>

struct st_http_response;

/* Which error body a route answers with (shared/specs/openstack-api-subset.md
 * §2.4, s3-api-subset.md §7). */
enum st_api_family {
    ST_API_PLAIN,    /* {"error": {"code": N, "title": "...", "message": "..."}} */
    ST_API_KEYSTONE, /* same shape as PLAIN */
    ST_API_NOVA,     /* {"itemNotFound": {"code": 404, "message": "..."}} */
    ST_API_CINDER,   /* same shape as NOVA */
    ST_API_NEUTRON,  /* {"NeutronError": {"type": "...", "message": "...", "detail": ""}} */
    ST_API_GLANCE,   /* same shape as PLAIN; Glance's clients accept JSON */
    ST_API_S3,       /* <Error><Code>NoSuchKey</Code>...</Error>, application/xml */
};

/* The one table from negative errno to HTTP status:
 *   400 -EINVAL -EBADMSG -EILSEQ -EDOM -ERANGE -ENAMETOOLONG
 *   401 -EACCES -EKEYEXPIRED -ENOKEY       403 -EPERM -EDQUOT (quota, as Nova 2.1)
 *   404 -ENOENT -ESRCH -ENXIO             405 -EBADRQC (the router's "no such method")
 *   409 -EEXIST -ECANCELED (revision conflict) -ENOTEMPTY -EBUSY (in use) -EALREADY
 *   413 -EFBIG -E2BIG -EMSGSIZE           415 -EMEDIUMTYPE ("wrong medium type")
 *   429 -EUSERS (rate limited)            501 -EOPNOTSUPP -ENOSYS
 *   503 -EAGAIN -ESHUTDOWN -ECONNREFUSED -EHOSTUNREACH   504 -ETIMEDOUT
 *   507 -ENOSPC                           500 anything else (message hidden, logged)
 * 0 and positive values give 200. */
int st_http_status_from_errno(int code);

/* "Not Found" for 404; "Error" for a status it does not know. */
const char *st_http_reason(int status);

/* The family's default name for an error of this status: the Nova/Cinder key
 * ("itemNotFound"), the Neutron type ("HTTPNotFound"), the S3 code
 * ("NoSuchKey"), or the reason phrase for the Keystone-shaped families. */
const char *st_api_error_type(enum st_api_family family, int status);

/* Replaces resp's body with the family's error body (headers are kept). type overrides the
 * default name (a Neutron "NetworkNotFound", an S3 "NoSuchBucket"); NULL uses
 * st_api_error_type(). S3 has no 401: it answers 403 AccessDenied instead. */
void st_api_error_render(struct st_http_response *resp, enum st_api_family family, int status,
                         const char *type, const char *message, const char *request_id);

/* The message a client sees for a 500: the real cause is logged, not shown. */
#define ST_API_INTERNAL_ERROR_MESSAGE                                                              \
    "The server has either erred or is incapable of performing the requested operation."
