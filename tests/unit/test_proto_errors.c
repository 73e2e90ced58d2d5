/* test_proto_errors: the generated walk over the errors a response carries (used to log refused
 * requests): each non-zero ErrorCode once, outer first, with its resource, partition and the
 * ErrorMessage only in versions that have one; the callback can stop it. And the generated
 * lookup of a response's throttle_time_ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "proto/messages.h"

#define KSTR(lit) ((struct kstr){ (char *)(lit), (int32_t)sizeof(lit) - 1 })

struct seen {
    int n, stop_after;
    struct proto_error_site sites[8];
};

static bool collect(void *ctx, const struct proto_error_site *site)
{
    struct seen *s = ctx;
    if (s->n < 8)
        s->sites[s->n] = *site;
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after;
}

static bool kstr_eq(struct kstr k, const char *lit)
{
    return k.ptr != NULL && (size_t)k.len == strlen(lit) && memcmp(k.ptr, lit, (size_t)k.len) == 0;
}

/* Two topics of three partitions, errors on a-1 (with a message) and b-2. */
static void produce_fixture(struct produce_response *resp,
                            struct produce_response_topic_produce_response *topics,
                            struct produce_response_partition_produce_response parts[2][3])
{
    memset(resp, 0, sizeof(*resp));
    memset(topics, 0, 2 * sizeof(*topics));
    memset(parts, 0, 6 * sizeof(parts[0][0]));
    topics[0].name = KSTR("a");
    topics[1].name = KSTR("b");
    for (int t = 0; t < 2; t++) {
        for (int p = 0; p < 3; p++)
            parts[t][p].index = p;
        topics[t].partition_responses = parts[t];
        topics[t].n_partition_responses = 3;
    }
    parts[0][1].error_code = 87; /* INVALID_RECORD */
    parts[0][1].error_message = KSTR("timestamp out of range");
    parts[1][2].error_code = 2; /* CORRUPT_MESSAGE */
    resp->responses = topics;
    resp->n_responses = 2;
}

static void test_produce_errors_with_resource_and_message(void **state)
{
    (void)state;
    struct produce_response resp;
    struct produce_response_topic_produce_response topics[2];
    struct produce_response_partition_produce_response parts[2][3];
    produce_fixture(&resp, topics, parts);
    struct seen s = {0};
    assert_false(proto_response_errors(0, 9, &resp, collect, &s));
    assert_int_equal(s.n, 2);
    assert_int_equal(s.sites[0].code, 87);
    assert_true(kstr_eq(s.sites[0].resource, "a"));
    assert_int_equal(s.sites[0].partition, 1);
    assert_true(kstr_eq(s.sites[0].message, "timestamp out of range"));
    assert_int_equal(s.sites[1].code, 2);
    assert_true(kstr_eq(s.sites[1].resource, "b"));
    assert_int_equal(s.sites[1].partition, 2);
    assert_null(s.sites[1].message.ptr);

    /* v7 has no ErrorMessage: not read, whatever the struct holds. */
    struct seen old = {0};
    proto_response_errors(0, 7, &resp, collect, &old);
    assert_int_equal(old.n, 2);
    assert_null(old.sites[0].message.ptr);

    /* The callback stops the walk. */
    struct seen first = {.stop_after = 1};
    assert_true(proto_response_errors(0, 9, &resp, collect, &first));
    assert_int_equal(first.n, 1);
}

static void test_top_level_error_and_unknown_key(void **state)
{
    (void)state;
    struct describe_cluster_response dc;
    memset(&dc, 0, sizeof(dc));
    dc.error_code = 42;
    dc.error_message = KSTR("Only broker endpoints are served");
    struct seen s = {0};
    proto_response_errors(60, 1, &dc, collect, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.sites[0].code, 42);
    assert_null(s.sites[0].resource.ptr);
    assert_int_equal(s.sites[0].partition, -1);
    assert_true(kstr_eq(s.sites[0].message, "Only broker endpoints are served"));

    dc.error_code = 0;
    struct seen none = {0};
    assert_false(proto_response_errors(60, 1, &dc, collect, &none));
    assert_int_equal(none.n, 0);
    assert_false(proto_response_errors(9999, 0, &dc, collect, &none));
    assert_int_equal(none.n, 0);
}

/* proto_response_codes (/metrics' error counts): every ErrorCode the version has, NONE too,
 * in the same order; a response with none at its version gives nothing. */
static void test_codes_count_none_too(void **state)
{
    (void)state;
    struct produce_response resp;
    struct produce_response_topic_produce_response topics[2];
    struct produce_response_partition_produce_response parts[2][3];
    produce_fixture(&resp, topics, parts);
    struct seen s = {0};
    assert_false(proto_response_codes(0, 9, &resp, collect, &s));
    assert_int_equal(s.n, 6);
    static const int16_t want[6] = {0, 87, 0, 0, 0, 2};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(s.sites[i].code, want[i]);
        assert_int_equal(s.sites[i].partition, i % 3);
        assert_true(kstr_eq(s.sites[i].resource, i < 3 ? "a" : "b"));
    }
    struct describe_cluster_response dc;
    memset(&dc, 0, sizeof(dc));
    struct seen one = {0};
    assert_false(proto_response_codes(60, 1, &dc, collect, &one));
    assert_int_equal(one.n, 1);
    assert_int_equal(one.sites[0].code, 0);
    struct seen none = {0};
    assert_false(proto_response_codes(9999, 0, &dc, collect, &none));
    assert_int_equal(none.n, 0);
}

/* proto_response_throttle: the top-level ThrottleTimeMs, only in the versions that have it. */
static void test_throttle_field_by_version(void **state)
{
    (void)state;
    struct metadata_response md;
    memset(&md, 0, sizeof(md));
    assert_null(proto_response_throttle(PROTO_API_METADATA, 2, &md));
    assert_ptr_equal(proto_response_throttle(PROTO_API_METADATA, 3, &md), &md.throttle_time_ms);
    assert_ptr_equal(proto_response_throttle(PROTO_API_METADATA, 13, &md), &md.throttle_time_ms);
    struct offset_commit_response oc;
    assert_null(proto_response_throttle(PROTO_API_OFFSET_COMMIT, 2, &oc));
    assert_ptr_equal(proto_response_throttle(PROTO_API_OFFSET_COMMIT, 3, &oc), &oc.throttle_time_ms);
    struct api_versions_response av;
    assert_null(proto_response_throttle(PROTO_API_API_VERSIONS, 0, &av));
    assert_ptr_equal(proto_response_throttle(PROTO_API_API_VERSIONS, 1, &av), &av.throttle_time_ms);
    struct produce_response pr;
    assert_null(proto_response_throttle(PROTO_API_PRODUCE, 0, &pr));
    assert_ptr_equal(proto_response_throttle(PROTO_API_PRODUCE, 1, &pr), &pr.throttle_time_ms);
    assert_null(proto_response_throttle(9999, 0, &md));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_produce_errors_with_resource_and_message),
        cmocka_unit_test(test_top_level_error_and_unknown_key),
        cmocka_unit_test(test_codes_count_none_too),
        cmocka_unit_test(test_throttle_field_by_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
