/* ApiVersions (18): which APIs and versions this broker serves. A version we do not know is
 * answered in v0 form with UNSUPPORTED_VERSION so any client can read it and retry (KIP-511). */
#include <ctype.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

static void fill_keys(struct request *r, struct api_versions_response *resp)
{
    RESP_ARRAY(r, resp->api_keys, broker_apis_count);
    if (resp->api_keys == NULL) {
        resp->n_api_keys = 0;
        return;
    }
    resp->n_api_keys = broker_apis_count;
    for (int i = 0; i < broker_apis_count; i++) {
        resp->api_keys[i].api_key = broker_apis[i].key;
        resp->api_keys[i].min_version = broker_apis[i].min_version;
        resp->api_keys[i].max_version = broker_apis[i].max_version;
    }
}

void api_versions_unsupported(struct broker *b, struct request *r)
{
    (void)b;
    r->resp = request_alloc(r, sizeof(struct api_versions_response));
    struct api_versions_response *resp = r->resp;
    r->resp_version = 0;
    r->flexible = false;
    if (resp == NULL)
        return;
    resp->error_code = KERR_UNSUPPORTED_VERSION;
    fill_keys(r, resp);
}

/* Kafka's rule for client_software_name/version: [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? */
static bool software_string_valid(const struct kstr *s)
{
    if (s->ptr == NULL || s->len == 0)
        return false;
    for (int32_t i = 0; i < s->len; i++) {
        unsigned char ch = (unsigned char)s->ptr[i];
        bool edge = i == 0 || i == s->len - 1;
        if (!(isalnum(ch) || (!edge && (ch == '-' || ch == '.'))))
            return false;
    }
    return true;
}

enum request_status handle_api_versions(struct broker *b, struct request *r)
{
    (void)b;
    struct api_versions_request *req = r->body;
    struct api_versions_response *resp = r->resp;
    resp->finalized_features_epoch = -1;
    if (r->api_version >= 3 && (!software_string_valid(&req->client_software_name) ||
                                !software_string_valid(&req->client_software_version))) {
        resp->error_code = KERR_INVALID_REQUEST;
        r->resp_version = 0; /* error bodies go out in v0 form: every client reads those */
        return REQUEST_DONE;
    }
    fill_keys(r, resp);
    return REQUEST_DONE;
}
