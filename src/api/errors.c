/* The errno → status table and the error bodies of each API family; see
 * errors.h. Names come from the services themselves: Nova's fault keys
 * (nova/api/openstack/wsgi.py), webob's exception class names that Neutron
 * reports as the type, and S3's error codes. */
#include "errors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "lib/cleanup.h"
#include "lib/json.h"

static const struct {
    int code;
    int status;
} errno_table[] = {
    {EINVAL, 400},    {EBADMSG, 400},      {EILSEQ, 400},       {EDOM, 400},
    {ERANGE, 400},    {ENAMETOOLONG, 400}, {EACCES, 401},       {EKEYEXPIRED, 401},
    {ENOKEY, 401},    {EPERM, 403},        {EDQUOT, 403},       {ENOENT, 404},
    {ESRCH, 404},     {ENXIO, 404},        {EBADRQC, 405},      {EEXIST, 409},
    {ECANCELED, 409}, {ENOTEMPTY, 409},    {EBUSY, 409},        {EALREADY, 409},
    {EFBIG, 413},     {E2BIG, 413},        {EMSGSIZE, 413},     {EMEDIUMTYPE, 415},
    {EUSERS, 429},    {EOPNOTSUPP, 501},   {ENOSYS, 501},       {EAGAIN, 503},
    {ESHUTDOWN, 503}, {ECONNREFUSED, 503}, {EHOSTUNREACH, 503}, {ETIMEDOUT, 504},
    {ENOSPC, 507},
};

int st_http_status_from_errno(int code)
{
    if (code >= 0)
        return 200;
    for (size_t i = 0; i < ST_ARRAY_SIZE(errno_table); i++)
        if (errno_table[i].code == -code)
            return errno_table[i].status;
    return 500;
}

struct status_names {
    int status;
    const char *reason;  /* RFC 9110 reason phrase, Keystone's "title" */
    const char *nova;    /* Nova and Cinder fault key */
    const char *neutron; /* webob exception class name */
    const char *s3;      /* S3 error code */
};

static const struct status_names names[] = {
    {400, "Bad Request", "badRequest", "HTTPBadRequest", "InvalidRequest"},
    {401, "Unauthorized", "unauthorized", "HTTPUnauthorized", "AccessDenied"},
    {403, "Forbidden", "forbidden", "HTTPForbidden", "AccessDenied"},
    {404, "Not Found", "itemNotFound", "HTTPNotFound", "NoSuchKey"},
    {405, "Method Not Allowed", "badMethod", "HTTPMethodNotAllowed", "MethodNotAllowed"},
    {406, "Not Acceptable", "computeFault", "HTTPNotAcceptable", "InvalidRequest"},
    {409, "Conflict", "conflictingRequest", "HTTPConflict", "OperationAborted"},
    {411, "Length Required", "badRequest", "HTTPLengthRequired", "MissingContentLength"},
    {412, "Precondition Failed", "badRequest", "HTTPPreconditionFailed", "PreconditionFailed"},
    {413, "Request Entity Too Large", "overLimit", "HTTPRequestEntityTooLarge", "EntityTooLarge"},
    {415, "Unsupported Media Type", "badMediaType", "HTTPUnsupportedMediaType", "InvalidRequest"},
    {416, "Range Not Satisfiable", "badRequest", "HTTPRequestRangeNotSatisfiable", "InvalidRange"},
    {429, "Too Many Requests", "overLimit", "HTTPTooManyRequests", "SlowDown"},
    {500, "Internal Server Error", "computeFault", "HTTPInternalServerError", "InternalError"},
    {501, "Not Implemented", "notImplemented", "HTTPNotImplemented", "NotImplemented"},
    {503, "Service Unavailable", "serviceUnavailable", "HTTPServiceUnavailable",
     "ServiceUnavailable"},
    {504, "Gateway Timeout", "computeFault", "HTTPGatewayTimeout", "RequestTimeout"},
    {507, "Insufficient Storage", "computeFault", "HTTPInsufficientStorage", "InternalError"},
};

static const struct status_names *lookup(int status)
{
    for (size_t i = 0; i < ST_ARRAY_SIZE(names); i++)
        if (names[i].status == status)
            return &names[i];
    return NULL;
}

const char *st_http_reason(int status)
{
    const struct status_names *n = lookup(status);
    if (n)
        return n->reason;
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    default:
        return "Error";
    }
}

const char *st_api_error_type(enum st_api_family family, int status)
{
    const struct status_names *n = lookup(status);
    switch (family) {
    case ST_API_NOVA:
    case ST_API_CINDER:
        return n ? n->nova : "computeFault";
    case ST_API_NEUTRON:
        return n ? n->neutron : "HTTPInternalServerError";
    case ST_API_S3:
        return n ? n->s3 : "InternalError";
    case ST_API_PLAIN:
    case ST_API_KEYSTONE:
    case ST_API_GLANCE:
        break;
    }
    return st_http_reason(status);
}

/* Appends s to buf at *off with XML's five entities escaped. */
static void xml_append(char *buf, size_t *off, const char *s)
{
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        }
        if (rep) {
            memcpy(buf + *off, rep, strlen(rep));
            *off += strlen(rep);
        } else {
            buf[(*off)++] = *s;
        }
    }
}

static void render_s3(struct st_http_response *resp, int status, const char *code,
                      const char *message, const char *request_id)
{
    static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>";
    size_t cap = sizeof(head) + 6 * (strlen(code) + strlen(message) + strlen(request_id)) + 64;
    st_autofree char *buf = st_xcalloc(1, cap);
    size_t off = 0;
    memcpy(buf, head, sizeof(head) - 1);
    off = sizeof(head) - 1;
    xml_append(buf, &off, code);
    off += (size_t)snprintf(buf + off, cap - off, "</Code><Message>");
    xml_append(buf, &off, message);
    off += (size_t)snprintf(buf + off, cap - off, "</Message><RequestId>");
    xml_append(buf, &off, request_id);
    off += (size_t)snprintf(buf + off, cap - off, "</RequestId></Error>");
    st_http_resp_bytes(resp, status, "application/xml", buf, off);
}

static json_t *pack_json(enum st_api_family family, int status, const char *type,
                         const char *message)
{
    switch (family) {
    case ST_API_NOVA:
    case ST_API_CINDER:
        return json_pack("{s:{s:i,s:s}}", type, "code", status, "message", message);
    case ST_API_NEUTRON:
        return json_pack("{s:{s:s,s:s,s:s}}", "NeutronError", "type", type, "message", message,
                         "detail", "");
    default:
        return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "title", type, "message",
                         message);
    }
}

void st_api_error_render(struct st_http_response *resp, enum st_api_family family, int status,
                         const char *type, const char *message, const char *request_id)
{
    if (!message)
        message = st_http_reason(status);
    if (!request_id)
        request_id = "";
    if (family == ST_API_S3 && status == 401)
        status = 403; /* S3 has no 401; its clients expect 403 AccessDenied */
    if (!type)
        type = st_api_error_type(family, status);

    if (family == ST_API_S3) {
        render_s3(resp, status, type, message, request_id);
        return;
    }
    json_t *body = pack_json(family, status, type, message);
    if (!body) /* json_pack fails only on invalid UTF-8 (a name echoed from the request) */
        body = pack_json(family, status, st_api_error_type(family, status), st_http_reason(status));
    if (!body)
        abort();
    st_http_resp_json(resp, status, body);
}
