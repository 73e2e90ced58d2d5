/* test_codec: the generated codecs against bytes captured from real clients (kafka-python 2.0.2,
 * kcat on librdkafka 2.0.2) and encode→decode→encode round trips across versions, including
 * flexible versions with tagged fields, nullable fields and defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/arena.h"
#include "proto/kbuf.h"
#include "broker/broker.h"
#include "proto/messages.h"

#define KSTR(lit) ((struct kstr){ (char *)(lit), (int32_t)sizeof(lit) - 1 })
#define ARENA_LIMIT (1u << 24)

/* ---- frames captured on 127.0.0.1 (size prefix removed): header + body ------------------- */

/* kafka-python 2.0.2 KafkaConsumer(client_id='gregor-test', group_id='g1') bootstrap. */
static const uint8_t kp_api_versions_v0[] = {
    0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0x67, 0x72,
    0x65, 0x67, 0x6f, 0x72, 0x2d, 0x74, 0x65, 0x73, 0x74,
};
static const uint8_t kp_metadata_v0[] = {
    0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x0b, 0x67, 0x72,
    0x65, 0x67, 0x6f, 0x72, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x00,
    0x00,
};
static const uint8_t kp_find_coordinator_v0[] = {
    0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0x67, 0x72,
    0x65, 0x67, 0x6f, 0x72, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x00, 0x02, 0x67,
    0x31,
};
static const uint8_t kp_metadata_v1[] = {
    0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x0b, 0x67, 0x72,
    0x65, 0x67, 0x6f, 0x72, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x06, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73,
};
/* kcat -L -t mytopic (librdkafka 2.0.2): ApiVersions v3 (flexible, header v2), Metadata v4. */
static const uint8_t kcat_api_versions_v3[] = {
    0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x72, 0x64,
    0x6b, 0x61, 0x66, 0x6b, 0x61, 0x00, 0x0b, 0x6c, 0x69, 0x62, 0x72, 0x64,
    0x6b, 0x61, 0x66, 0x6b, 0x61, 0x06, 0x32, 0x2e, 0x30, 0x2e, 0x32, 0x00,
};
static const uint8_t kcat_metadata_v4[] = {
    0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x07, 0x72, 0x64,
    0x6b, 0x61, 0x66, 0x6b, 0x61, 0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x6d,
    0x79, 0x74, 0x6f, 0x70, 0x69, 0x63, 0x01,
};

struct request_header {
    int16_t key, version;
    int32_t correlation_id;
    struct kstr client_id;
};

/* Request header v1/v2 (FORMATS.md §4.1): client_id is never compact. */
static void read_header(struct kreader *r, struct request_header *h)
{
    h->key = kr_i16(r);
    h->version = kr_i16(r);
    h->correlation_id = kr_i32(r);
    h->client_id = kr_str(r, false, true);
    if (proto_is_flexible(h->key, h->version))
        kr_skip_tags(r);
}

struct fixture {
    struct arena arena;
    struct kreader r;
    uint8_t copy[4096];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    arena_init(&f->arena, ARENA_LIMIT);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    arena_reset(&f->arena);
    free(f);
    return 0;
}

/* Opens a reader over a private copy of a captured frame (decoders borrow a mutable frame). */
static struct kreader *open_frame(struct fixture *f, const uint8_t *p, size_t n,
                                  struct request_header *h)
{
    assert_true(n <= sizeof(f->copy));
    memcpy(f->copy, p, n);
    kr_init(&f->r, f->copy, n, &f->arena);
    read_header(&f->r, h);
    assert_int_equal(f->r.err, 0);
    return &f->r;
}

static void assert_kstr(struct kstr s, const char *want)
{
    assert_non_null(s.ptr);
    assert_int_equal(s.len, (int32_t)strlen(want));
    assert_string_equal(s.ptr, want);
}

/* Encoding what was decoded must give back the body bytes exactly. */
static void assert_reencodes(int16_t key, int16_t version, const void *msg, const uint8_t *body,
                             size_t n)
{
    struct kwriter w;
    kw_init(&w, 1 << 20);
    assert_int_equal(proto_request_encode(key, version, &w, msg), 0);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.buf, body, n);
    kw_free(&w);
}

static void test_kafka_python_api_versions_v0(void **state)
{
    struct fixture *f = *state;
    struct request_header h;
    struct kreader *r = open_frame(f, kp_api_versions_v0, sizeof(kp_api_versions_v0), &h);
    assert_int_equal(h.key, PROTO_API_API_VERSIONS);
    assert_int_equal(h.version, 0);
    assert_int_equal(h.correlation_id, 1);
    assert_kstr(h.client_id, "gregor-test");
    struct api_versions_request req;
    assert_int_equal(api_versions_request_decode(r, h.version, &req), 0);
    assert_int_equal(kr_remaining(r), 0);
    assert_kstr(req.client_software_name, ""); /* absent in v0: default */
}

static void test_kafka_python_metadata_v0_and_v1(void **state)
{
    struct fixture *f = *state;
    struct request_header h;
    struct kreader *r = open_frame(f, kp_metadata_v0, sizeof(kp_metadata_v0), &h);
    assert_int_equal(h.key, PROTO_API_METADATA);
    assert_int_equal(h.version, 0);
    void *msg;
    assert_int_equal(proto_request_decode(h.key, h.version, r, &msg), 0);
    struct metadata_request *req = msg;
    assert_int_equal(req->n_topics, 0); /* v0: empty = all topics */
    assert_true(req->allow_auto_topic_creation); /* absent before v4: default true */
    assert_reencodes(h.key, h.version, req, kp_metadata_v0 + 21, sizeof(kp_metadata_v0) - 21);

    r = open_frame(f, kp_metadata_v1, sizeof(kp_metadata_v1), &h);
    assert_int_equal(h.version, 1);
    assert_int_equal(proto_request_decode(h.key, h.version, r, &msg), 0);
    req = msg;
    assert_int_equal(req->n_topics, 1);
    assert_kstr(req->topics[0].name, "orders");
    assert_reencodes(h.key, h.version, req, kp_metadata_v1 + 21, sizeof(kp_metadata_v1) - 21);
}

static void test_kafka_python_find_coordinator_v0(void **state)
{
    struct fixture *f = *state;
    struct request_header h;
    struct kreader *r = open_frame(f, kp_find_coordinator_v0, sizeof(kp_find_coordinator_v0), &h);
    assert_int_equal(h.key, PROTO_API_FIND_COORDINATOR);
    struct find_coordinator_request req;
    assert_int_equal(find_coordinator_request_decode(r, h.version, &req), 0);
    assert_kstr(req.key, "g1");
    assert_int_equal(req.key_type, 0);
    assert_int_equal(req.n_coordinator_keys, 0);
}

static void test_kcat_api_versions_v3(void **state)
{
    struct fixture *f = *state;
    struct request_header h;
    struct kreader *r = open_frame(f, kcat_api_versions_v3, sizeof(kcat_api_versions_v3), &h);
    assert_int_equal(h.key, PROTO_API_API_VERSIONS);
    assert_int_equal(h.version, 3);
    assert_true(proto_is_flexible(h.key, h.version));
    assert_kstr(h.client_id, "rdkafka");
    size_t body = r->off;
    assert_int_equal(body, 18); /* header v2 ends with an empty tag block */
    struct api_versions_request req;
    assert_int_equal(api_versions_request_decode(r, h.version, &req), 0);
    assert_int_equal(kr_remaining(r), 0);
    assert_kstr(req.client_software_name, "librdkafka");
    assert_kstr(req.client_software_version, "2.0.2");
    assert_reencodes(h.key, h.version, &req, kcat_api_versions_v3 + body,
                     sizeof(kcat_api_versions_v3) - body);
}

static void test_kcat_metadata_v4(void **state)
{
    struct fixture *f = *state;
    struct request_header h;
    struct kreader *r = open_frame(f, kcat_metadata_v4, sizeof(kcat_metadata_v4), &h);
    assert_int_equal(h.version, 4);
    size_t body = r->off;
    struct metadata_request req;
    assert_int_equal(metadata_request_decode(r, h.version, &req), 0);
    assert_int_equal(req.n_topics, 1);
    assert_kstr(req.topics[0].name, "mytopic");
    assert_true(req.allow_auto_topic_creation);
    assert_false(req.include_topic_authorized_operations);
    assert_reencodes(h.key, h.version, &req, kcat_metadata_v4 + body,
                     sizeof(kcat_metadata_v4) - body);
}

/* ---- round trips --------------------------------------------------------------------------- */

/* Encodes in at version v, decodes into out (sized like *in), re-encodes and compares bytes. */
static void round_trip(struct fixture *f, const struct proto_codec *c, int16_t v, const void *in,
                       void *out, struct kwriter *w)
{
    kw_init(w, 1 << 20);
    c->encode(w, v, in);
    assert_int_equal(w->err, 0);
    kr_init(&f->r, w->buf, w->len, &f->arena);
    assert_int_equal(c->decode(&f->r, v, out), 0);
    assert_int_equal(kr_remaining(&f->r), 0);
    struct kwriter again;
    kw_init(&again, 1 << 20);
    c->encode(&again, v, out);
    assert_int_equal(again.len, w->len);
    assert_memory_equal(again.buf, w->buf, w->len);
    kw_free(&again);
}

static void test_produce_request_versions(void **state)
{
    struct fixture *f = *state;
    uint8_t batch[61] = { 0 };
    for (size_t i = 0; i < sizeof(batch); i++)
        batch[i] = (uint8_t)(i * 7);
    struct produce_request_partition_produce_data parts[2] = {
        { .index = 0, .records = { .ptr = batch, .len = sizeof(batch) } },
        { .index = 3, .records = { .ptr = NULL, .len = -1 } },
    };
    struct produce_request_topic_produce_data topic = {
        .name = KSTR("orders"), .partition_data = parts, .n_partition_data = 2 };
    struct produce_request req = { .transactional_id = KSTR("tx-1"), .acks = -1,
                                   .timeout_ms = 30000, .topic_data = &topic, .n_topic_data = 1 };
    const struct proto_codec *c = proto_request_codec(PROTO_API_PRODUCE);
    const int16_t versions[] = { 3, 7, 8, 9, 11 };
    size_t sizes[5];
    for (size_t i = 0; i < 5; i++) {
        struct produce_request out;
        struct kwriter w;
        round_trip(f, c, versions[i], &req, &out, &w);
        sizes[i] = w.len;
        assert_kstr(out.transactional_id, "tx-1");
        assert_int_equal(out.acks, -1);
        assert_int_equal(out.timeout_ms, 30000);
        assert_int_equal(out.n_topic_data, 1);
        assert_kstr(out.topic_data[0].name, "orders");
        assert_int_equal(out.topic_data[0].n_partition_data, 2);
        assert_int_equal(out.topic_data[0].partition_data[1].index, 3);
        struct krecords rec = out.topic_data[0].partition_data[0].records;
        assert_int_equal(rec.len, sizeof(batch));
        assert_memory_equal(rec.ptr, batch, sizeof(batch));
        assert_int_equal(out.topic_data[0].partition_data[1].records.len, -1);
        kw_free(&w);
    }
    /* v3-v8 share the classic layout; flexible v9 is smaller (varint lengths) */
    assert_int_equal(sizes[0], sizes[2]);
    assert_true(sizes[3] < sizes[2]);
    assert_int_equal(sizes[3], sizes[4]);
}

static void test_produce_response_tagged_fields(void **state)
{
    struct fixture *f = *state;
    struct produce_response_partition_produce_response part;
    produce_response_partition_produce_response_set_defaults(&part);
    assert_true(part.log_append_time_ms == -1); /* defaults from the description */
    assert_true(part.log_start_offset == -1);
    assert_null(part.error_message.ptr);
    part.index = 2;
    part.base_offset = 1000;
    struct produce_response_topic_produce_response topic = {
        .name = KSTR("t"), .partition_responses = &part, .n_partition_responses = 1 };
    struct produce_response resp;
    produce_response_set_defaults(&resp);
    resp.responses = &topic;
    resp.n_responses = 1;
    const struct proto_codec *c = proto_response_codec(PROTO_API_PRODUCE);

    struct kwriter plain, tagged;
    struct produce_response out;
    round_trip(f, c, 10, &resp, &out, &plain);
    assert_int_equal(out.responses[0].partition_responses[0].current_leader.leader_id, -1);

    /* A non-default tagged value is written (tag 0, size, value) and read back. */
    part.current_leader.leader_id = 1;
    part.current_leader.leader_epoch = 7;
    struct produce_response_node_endpoint node = {
        .node_id = 1, .host = KSTR("localhost"), .port = 9092, .rack = { NULL, 0 } };
    resp.node_endpoints = &node;
    resp.n_node_endpoints = 1;
    round_trip(f, c, 10, &resp, &out, &tagged);
    assert_true(tagged.len > plain.len);
    struct produce_response_partition_produce_response *p = &out.responses[0].partition_responses[0];
    assert_int_equal(p->current_leader.leader_id, 1);
    assert_int_equal(p->current_leader.leader_epoch, 7);
    assert_true(p->log_append_time_ms == -1);
    assert_int_equal(out.n_node_endpoints, 1);
    assert_kstr(out.node_endpoints[0].host, "localhost");
    assert_null(out.node_endpoints[0].rack.ptr);
    kw_free(&plain);
    kw_free(&tagged);

    /* Before v10 the tagged fields do not exist: decoded as defaults. */
    struct kwriter w;
    round_trip(f, c, 9, &resp, &out, &w);
    assert_int_equal(out.responses[0].partition_responses[0].current_leader.leader_id, -1);
    assert_int_equal(out.n_node_endpoints, 0);
    kw_free(&w);
    /* v3-4 have no log_start_offset: the decoder fills the default, not what was sent. */
    part.log_start_offset = 55;
    round_trip(f, c, 4, &resp, &out, &w);
    assert_true(out.responses[0].partition_responses[0].log_start_offset == -1);
    kw_free(&w);
}

static void test_api_versions_response(void **state)
{
    struct fixture *f = *state;
    struct api_versions_response_api_version keys[2] = { { 0, 3, 11 }, { 18, 0, 4 } };
    struct api_versions_response_supported_feature_key feat = { KSTR("metadata.version"), 1, 20 };
    struct api_versions_response resp;
    api_versions_response_set_defaults(&resp);
    assert_true(resp.finalized_features_epoch == -1);
    resp.api_keys = keys;
    resp.n_api_keys = 2;
    resp.throttle_time_ms = 5;
    resp.supported_features = &feat;
    resp.n_supported_features = 1;
    resp.finalized_features_epoch = 42;
    const struct proto_codec *c = proto_response_codec(PROTO_API_API_VERSIONS);

    struct api_versions_response out;
    struct kwriter w;
    round_trip(f, c, 0, &resp, &out, &w);
    /* v0: error_code, int32 count, 2 x 6 bytes: nothing else */
    assert_int_equal(w.len, 2 + 4 + 12);
    assert_int_equal(out.throttle_time_ms, 0);
    assert_int_equal(out.n_supported_features, 0);
    kw_free(&w);

    round_trip(f, c, 3, &resp, &out, &w);
    assert_int_equal(out.n_api_keys, 2);
    assert_int_equal(out.api_keys[1].api_key, 18);
    assert_int_equal(out.api_keys[1].max_version, 4);
    assert_int_equal(out.throttle_time_ms, 5);
    assert_int_equal(out.n_supported_features, 1);
    assert_kstr(out.supported_features[0].name, "metadata.version");
    assert_true(out.finalized_features_epoch == 42);
    assert_int_equal(out.n_finalized_features, 0);
    /* Layout: int16 error, compact array len 3, 2 x (6 bytes + empty tags), int32, then tags */
    size_t tags = 2 + 1 + 2 * 7 + 4;
    assert_int_equal(w.buf[tags], 2); /* two tagged fields: 0 and 1 */
    assert_int_equal(w.buf[tags + 1], 0); /* tag 0 first (ascending) */
    kw_free(&w);
}

static void test_unknown_tags_are_skipped(void **state)
{
    struct fixture *f = *state;
    uint8_t body[] = { 2, 'a', 2, 'b', 2, 9, 3, 0xde, 0xad, 0xbe, 30, 0 };
    struct api_versions_request req;
    kr_init(&f->r, body, sizeof(body), &f->arena);
    assert_int_equal(api_versions_request_decode(&f->r, 3, &req), 0);
    assert_kstr(req.client_software_name, "a");
    assert_kstr(req.client_software_version, "b");
    assert_int_equal(kr_remaining(&f->r), 0);

    /* A known tag whose value is longer than its declared size fails: no reading past it. */
    uint8_t resp[] = { 0, 0, 1, 0, 0, 0, 0, 1, 1, 2, 0, 7 };
    struct api_versions_response out;
    kr_init(&f->r, resp, sizeof(resp), &f->arena);
    assert_int_equal(api_versions_response_decode(&f->r, 3, &out), -1);
    assert_non_null(f->r.where);
    assert_string_equal(f->r.where, "api_versions_response");
}

static void test_nullable_versions(void **state)
{
    struct fixture *f = *state;
    struct metadata_request req;
    metadata_request_set_defaults(&req);
    req.n_topics = -1; /* null = all topics, legal from v1 */
    const struct proto_codec *c = proto_request_codec(PROTO_API_METADATA);
    struct metadata_request out;
    struct kwriter w;
    round_trip(f, c, 1, &req, &out, &w);
    assert_int_equal(out.n_topics, -1);
    kw_free(&w);
    round_trip(f, c, 0, &req, &out, &w); /* v0 cannot say null: written as empty */
    assert_int_equal(out.n_topics, 0);
    kw_free(&w);
    round_trip(f, c, 12, &req, &out, &w);
    assert_int_equal(out.n_topics, -1);
    kw_free(&w);

    /* Topic names are nullable only from v10 (topic ids instead). */
    struct metadata_request_metadata_request_topic t = { .name = { NULL, 0 } };
    t.topic_id.b[15] = 9;
    req.topics = &t;
    req.n_topics = 1;
    round_trip(f, c, 10, &req, &out, &w);
    assert_null(out.topics[0].name.ptr);
    assert_int_equal(out.topics[0].topic_id.b[15], 9);
    kw_free(&w);
    round_trip(f, c, 9, &req, &out, &w);
    assert_kstr(out.topics[0].name, "");
    kw_free(&w);
}

static void test_nullable_struct(void **state)
{
    struct fixture *f = *state;
    const struct proto_codec *c = proto_response_codec(PROTO_API_CONSUMER_GROUP_HEARTBEAT);
    struct consumer_group_heartbeat_response resp;
    consumer_group_heartbeat_response_set_defaults(&resp);
    assert_null(resp.assignment);
    resp.member_id = KSTR("m-1");
    resp.member_epoch = 3;
    struct consumer_group_heartbeat_response out;
    struct kwriter w;
    round_trip(f, c, 0, &resp, &out, &w);
    assert_null(out.assignment);
    assert_kstr(out.member_id, "m-1");
    kw_free(&w);

    int32_t parts[] = { 0, 2 };
    struct consumer_group_heartbeat_response_topic_partitions tp = {
        .partitions = parts, .n_partitions = 2 };
    tp.topic_id.b[0] = 0xab;
    struct consumer_group_heartbeat_response_assignment as = {
        .topic_partitions = &tp, .n_topic_partitions = 1 };
    resp.assignment = &as;
    round_trip(f, c, 1, &resp, &out, &w);
    assert_non_null(out.assignment);
    assert_int_equal(out.assignment->n_topic_partitions, 1);
    assert_int_equal(out.assignment->topic_partitions[0].topic_id.b[0], 0xab);
    assert_int_equal(out.assignment->topic_partitions[0].partitions[1], 2);
    kw_free(&w);
}

static void test_fetch_versions(void **state)
{
    struct fixture *f = *state;
    struct fetch_request_fetch_partition fp;
    fetch_request_fetch_partition_set_defaults(&fp);
    fp.partition = 1;
    fp.fetch_offset = 100;
    fp.partition_max_bytes = 1 << 20;
    struct fetch_request_fetch_topic ft = { .topic = KSTR("logs"), .partitions = &fp,
                                            .n_partitions = 1 };
    ft.topic_id.b[3] = 3;
    struct fetch_request req;
    fetch_request_set_defaults(&req);
    assert_int_equal(req.max_bytes, 0x7fffffff);
    assert_int_equal(req.replica_id, -1);
    req.max_wait_ms = 500;
    req.min_bytes = 1;
    req.topics = &ft;
    req.n_topics = 1;
    req.rack_id = KSTR("rack-a");
    const struct proto_codec *c = proto_request_codec(PROTO_API_FETCH);
    for (int16_t v = 4; v <= 17; v++) {
        struct fetch_request out;
        struct kwriter w;
        round_trip(f, c, v, &req, &out, &w);
        assert_int_equal(out.max_wait_ms, 500);
        assert_int_equal(out.topics[0].partitions[0].fetch_offset, 100);
        if (v <= 12)
            assert_kstr(out.topics[0].topic, "logs");
        else
            assert_int_equal(out.topics[0].topic_id.b[3], 3);
        if (v >= 11)
            assert_kstr(out.rack_id, "rack-a");
        else
            assert_kstr(out.rack_id, "");
        assert_true(out.topics[0].partitions[0].log_start_offset == -1);
        kw_free(&w);
    }
}

static void test_fetch_response_records_from_file(void **state)
{
    (void)state;
    char path[] = "/tmp/gregor-codec-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    struct fetch_response_partition_data part;
    fetch_response_partition_data_set_defaults(&part);
    part.high_watermark = 10;
    part.records.is_file = true;
    part.records.fd = fd;
    part.records.file_offset = 4096;
    part.records.len = 300;
    struct fetch_response_fetchable_topic_response topic = {
        .topic = KSTR("t"), .partitions = &part, .n_partitions = 1 };
    struct fetch_response resp = { .responses = &topic, .n_responses = 1 };
    struct kwriter w;
    kw_init(&w, 1 << 16);
    fetch_response_encode(&w, 12, &resp);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.nfiles, 1);
    assert_int_equal(w.files[0].len, 300);
    assert_true(w.files[0].offset == 4096);
    /* after the records come only the partition, topic and response tag blocks */
    assert_int_equal(w.len - w.files[0].at, 3);
    assert_int_equal(kw_size(&w), w.len + 300);
    kw_free(&w);
    assert_true(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
}

static void test_offset_commit_value_layouts(void **state)
{
    struct fixture *f = *state;
    struct offset_commit_value val;
    offset_commit_value_set_defaults(&val);
    assert_int_equal(val.leader_epoch, -1);
    val.offset = 0x0102030405060708;
    val.leader_epoch = 4;
    val.metadata = KSTR("m");
    val.commit_timestamp = 9;
    val.expire_timestamp = 11;
    struct kwriter w;
    kw_init(&w, 256);
    offset_commit_value_encode(&w, 3, &val);
    /* v3: offset int64, leaderEpoch int32, metadata STRING, commitTimestamp int64 */
    const uint8_t v3[] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 4, 0, 1, 'm', 0, 0, 0, 0, 0, 0, 0, 9 };
    assert_int_equal(w.len, sizeof(v3));
    assert_memory_equal(w.buf, v3, sizeof(v3));
    kw_free(&w);

    kw_init(&w, 256);
    offset_commit_value_encode(&w, 4, &val); /* flexible: compact string + tag block */
    const uint8_t v4[] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 4, 2, 'm', 0, 0, 0, 0, 0, 0, 0, 9, 0 };
    assert_int_equal(w.len, sizeof(v4));
    assert_memory_equal(w.buf, v4, sizeof(v4));
    kw_free(&w);

    const struct proto_codec *c = NULL;
    for (int i = 0; i < proto_messages_count; i++)
        if (strcmp(proto_messages[i].name, "offset_commit_value") == 0)
            c = &proto_messages[i];
    assert_non_null(c);
    struct offset_commit_value out;
    round_trip(f, c, 1, &val, &out, &w);
    assert_true(out.expire_timestamp == 11);
    assert_int_equal(out.leader_epoch, -1);
    assert_int_equal(w.len, 8 + 3 + 8 + 8);
    kw_free(&w);
}

static void test_group_metadata_value(void **state)
{
    struct fixture *f = *state;
    uint8_t sub[] = { 0, 1, 0, 0, 0, 0 };
    struct group_metadata_value_member_metadata m;
    group_metadata_value_member_metadata_set_defaults(&m);
    m.member_id = KSTR("c-1");
    m.group_instance_id = KSTR("static-1");
    m.client_id = KSTR("app");
    m.client_host = KSTR("/127.0.0.1");
    m.rebalance_timeout = 300000;
    m.session_timeout = 45000;
    m.subscription = (struct kbytes){ sub, sizeof(sub) };
    struct group_metadata_value val;
    group_metadata_value_set_defaults(&val);
    val.protocol_type = KSTR("consumer");
    val.generation = 5;
    val.protocol = KSTR("range");
    val.leader = KSTR("c-1");
    val.current_state_timestamp = 1700000000000;
    val.members = &m;
    val.n_members = 1;
    const struct proto_codec *c = NULL;
    for (int i = 0; i < proto_messages_count; i++)
        if (strcmp(proto_messages[i].name, "group_metadata_value") == 0)
            c = &proto_messages[i];
    assert_non_null(c);
    for (int16_t v = 0; v <= 4; v++) {
        struct group_metadata_value out;
        struct kwriter w;
        round_trip(f, c, v, &val, &out, &w);
        assert_kstr(out.protocol, "range");
        assert_int_equal(out.members[0].session_timeout, 45000);
        assert_int_equal(out.members[0].subscription.len, sizeof(sub));
        assert_int_equal(out.members[0].assignment.len, 0);
        if (v >= 3)
            assert_kstr(out.members[0].group_instance_id, "static-1");
        else
            assert_null(out.members[0].group_instance_id.ptr);
        assert_int_equal(out.members[0].rebalance_timeout, v >= 1 ? 300000 : -1);
        assert_true(out.current_state_timestamp == (v >= 2 ? 1700000000000 : -1));
        kw_free(&w);
    }
}

static void test_api_table(void **state)
{
    (void)state;
    const struct proto_api *p = proto_api_find(PROTO_API_PRODUCE);
    assert_non_null(p);
    assert_string_equal(p->name, "Produce");
    assert_int_equal(p->min_version, 0); /* Kafka 3.9's floor: magic 0/1 sets, converted */
    assert_int_equal(p->max_version, 13);
    assert_int_equal(p->flexible_from, 9);
    assert_null(proto_api_find(4)); /* LeaderAndIsr: not described */
    assert_null(proto_api_find(-1));
    p = proto_api_find(PROTO_API_SASL_HANDSHAKE);
    assert_int_equal(p->flexible_from, -1);
    assert_false(proto_is_flexible(PROTO_API_SASL_HANDSHAKE, 1));
    assert_false(proto_is_flexible(PROTO_API_PRODUCE, 8));
    assert_true(proto_is_flexible(PROTO_API_PRODUCE, 9));
    assert_true(proto_is_flexible(PROTO_API_API_VERSIONS, 3));
    assert_int_equal(proto_apis_count, 50); /* with ControlledShutdown (7), the transaction APIs (24-28, 65, 66), the ACL APIs (29-31), ElectLeaders (43), the reassignments (45, 46), DescribeClientQuotas (48), AlterClientQuotas (49) and DescribeUserScramCredentials (50), AlterUserScramCredentials (51) */
    for (int i = 1; i < proto_apis_count; i++)
        assert_true(proto_apis[i - 1].key < proto_apis[i].key);
    assert_int_equal(proto_api_find(PROTO_API_FETCH)->min_version, 0);
    /* Served ranges come from messages.def: FindCoordinator is described to v6, served to v5;
     * SaslHandshake and SaslAuthenticate are served (SASL listeners, src/broker/sasl.c). */
    assert_int_equal(proto_api_find(PROTO_API_FIND_COORDINATOR)->max_version, 6);
    assert_int_equal(proto_api_find(PROTO_API_FIND_COORDINATOR)->served_max, 5);
    assert_int_equal(proto_api_find(PROTO_API_SASL_HANDSHAKE)->served_min, 0);
    assert_int_equal(proto_api_find(PROTO_API_SASL_HANDSHAKE)->served_max, 1);
    assert_int_equal(proto_api_find(PROTO_API_SASL_AUTHENTICATE)->served_max, 2);
    /* KIP-890: AddPartitionsToTxn's batched broker form (v4-5) and EndTxn v5 are served. */
    assert_int_equal(proto_api_find(PROTO_API_ADD_PARTITIONS_TO_TXN)->served_max, 5);
    assert_int_equal(proto_api_find(PROTO_API_END_TXN)->served_max, 5);
    /* The ACL APIs as Kafka 4 serves them: v1-3 (KIP-896 removed v0). */
    for (int16_t k = PROTO_API_DESCRIBE_ACLS; k <= PROTO_API_DELETE_ACLS; k++) {
        assert_int_equal(proto_api_find(k)->served_min, 1);
        assert_int_equal(proto_api_find(k)->served_max, 3);
        assert_int_equal(proto_api_find(k)->flexible_from, 2);
    }
    /* Every served API has a request and a response codec for each version it advertises. */
    int served = 0;
    for (int i = 0; i < proto_apis_count; i++) {
        const struct proto_api *a = &proto_apis[i];
        if (a->served_min < 0) {
            assert_int_equal(a->served_max, -1);
            continue;
        }
        served++;
        const struct proto_codec *req = proto_request_codec(a->key);
        const struct proto_codec *resp = proto_response_codec(a->key);
        assert_non_null(req);
        assert_non_null(resp);
        assert_true(a->served_min <= a->served_max);
        for (int v = a->served_min; v <= a->served_max; v++) {
            assert_true(v >= req->min_version && v <= req->max_version);
            assert_true(v >= resp->min_version && v <= resp->max_version);
        }
    }
    assert_int_equal(served, PROTO_SERVED_APIS_COUNT);
    /* The broker's table is those APIs, in key order, with exactly the served ranges. */
    assert_int_equal(broker_apis_count, served);
    for (int i = 0; i < broker_apis_count; i++) {
        const struct api_entry *e = &broker_apis[i];
        const struct proto_api *a = proto_api_find(e->key);
        assert_non_null(a);
        assert_true(i == 0 || broker_apis[i - 1].key < e->key);
        assert_string_equal(e->name, a->name);
        assert_int_equal(e->min_version, a->served_min);
        assert_int_equal(e->max_version, a->served_max);
        assert_non_null(e->handler);
        assert_ptr_equal(broker_api_find(e->key), e);
    }
}

static void test_bad_versions_and_keys(void **state)
{
    struct fixture *f = *state;
    uint8_t body[16] = { 0 };
    struct produce_request req;
    kr_init(&f->r, body, sizeof(body), &f->arena);
    assert_int_equal(produce_request_decode(&f->r, -1, &req), -1); /* below the description */
    assert_int_not_equal(f->r.err, 0);
    void *out = (void *)1;
    kr_init(&f->r, body, sizeof(body), &f->arena);
    assert_int_equal(proto_request_decode(4, 0, &f->r, &out), -1);
    assert_null(out);
    struct kwriter w;
    kw_init(&w, 64);
    produce_request_encode(&w, 14, &req); /* above the description */
    assert_int_equal(w.err, KBUF_ERR_INVALID);
    assert_int_equal(w.len, 0);
    kw_free(&w);
}

/* Every prefix of a valid body is refused cleanly, never read past. */
static void test_truncated_bodies_fail(void **state)
{
    struct fixture *f = *state;
    struct api_versions_response_api_version keys[1] = { { 1, 4, 17 } };
    struct api_versions_response resp;
    api_versions_response_set_defaults(&resp);
    resp.api_keys = keys;
    resp.n_api_keys = 1;
    resp.finalized_features_epoch = 3;
    struct kwriter w;
    kw_init(&w, 256);
    api_versions_response_encode(&w, 3, &resp);
    for (size_t n = 0; n < w.len; n++) {
        uint8_t *copy = malloc(n + 1);
        memcpy(copy, w.buf, n);
        struct api_versions_response out;
        kr_init(&f->r, copy, n, &f->arena);
        assert_int_equal(api_versions_response_decode(&f->r, 3, &out), -1);
        assert_non_null(f->r.what);
        free(copy);
    }
    kw_free(&w);
}

/* Every API and message at every version: the all-defaults value survives a round trip. */
static void test_every_codec_round_trips_defaults(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < proto_apis_count; i++) {
        const struct proto_codec *cs[2] = { proto_request_codec(proto_apis[i].key),
                                            proto_response_codec(proto_apis[i].key) };
        for (int k = 0; k < 2; k++) {
            assert_non_null(cs[k]);
            for (int16_t v = cs[k]->min_version; v <= cs[k]->max_version; v++) {
                void *in = calloc(1, cs[k]->size), *out = calloc(1, cs[k]->size);
                struct kwriter w;
                round_trip(f, cs[k], v, in, out, &w);
                kw_free(&w);
                free(in);
                free(out);
            }
        }
    }
    for (int i = 0; i < proto_messages_count; i++) {
        const struct proto_codec *c = &proto_messages[i];
        for (int16_t v = c->min_version; v <= c->max_version; v++) {
            void *in = calloc(1, c->size), *out = calloc(1, c->size);
            struct kwriter w;
            round_trip(f, c, v, in, out, &w);
            kw_free(&w);
            free(in);
            free(out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kafka_python_api_versions_v0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_python_metadata_v0_and_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_python_find_coordinator_v0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kcat_api_versions_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kcat_metadata_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_produce_request_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_produce_response_tagged_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_versions_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_tags_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nullable_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nullable_struct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_response_records_from_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_commit_value_layouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_metadata_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_versions_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_bodies_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_codec_round_trips_defaults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
