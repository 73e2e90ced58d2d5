/* test_authorizer: Kafka's ACL decision (DENY wins, implied operations, wildcards, PREFIXED),
 * the filters of DescribeAcls/DeleteAcls, binding validation and the ACL file round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "broker/authorizer.h"
#include "common/util.h"

static void add(struct acl_store *s, int type, int pattern, const char *name,
                const char *principal, const char *host, int op, int perm)
{
    struct acl_binding b = {.resource_type = (int8_t)type, .pattern_type = (int8_t)pattern,
                            .operation = (int8_t)op, .permission = (int8_t)perm,
                            .name = (char *)name, .principal = (char *)principal,
                            .host = (char *)host};
    assert_null(acl_binding_invalid(&b));
    assert_int_equal(acl_store_add(s, &b), 0);
}

static bool allows(const struct acl_store *s, const char *principal, int op, int type,
                   const char *name, bool *no_acls)
{
    const struct acl_binding *rule;
    bool dummy;
    return acl_store_allows(s, principal, "10.0.0.1", op, type, name, &rule,
                            no_acls ? no_acls : &dummy);
}

static void test_literal_implied_and_deny(void **state)
{
    (void)state;
    struct acl_store s = {0};
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:alice", "*", ACL_OP_WRITE, ACL_PERM_ALLOW);
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:bob", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    assert_true(allows(&s, "User:alice", ACL_OP_WRITE, ACL_RES_TOPIC, "t", NULL));
    assert_false(allows(&s, "User:alice", ACL_OP_READ, ACL_RES_TOPIC, "t", NULL));
    assert_true(allows(&s, "User:alice", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "t", NULL)); /* implied */
    assert_true(allows(&s, "User:bob", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "t", NULL));
    assert_false(allows(&s, "User:bob", ACL_OP_WRITE, ACL_RES_TOPIC, "t", NULL));
    assert_false(allows(&s, "User:alice", ACL_OP_WRITE, ACL_RES_TOPIC, "t2", NULL));
    assert_false(allows(&s, "User:alice", ACL_OP_WRITE, ACL_RES_GROUP, "t", NULL));
    /* A DENY of DESCRIBE is not implied by nothing: alice still writes; a DENY ALL wins. */
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:alice", "*", ACL_OP_DESCRIBE, ACL_PERM_DENY);
    assert_true(allows(&s, "User:alice", ACL_OP_WRITE, ACL_RES_TOPIC, "t", NULL));
    assert_false(allows(&s, "User:alice", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "t", NULL));
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "*", "User:*", "10.0.0.1", ACL_OP_ALL, ACL_PERM_DENY);
    assert_false(allows(&s, "User:alice", ACL_OP_WRITE, ACL_RES_TOPIC, "t", NULL));
    assert_false(allows(&s, "User:bob", ACL_OP_READ, ACL_RES_TOPIC, "t", NULL));
    acl_store_clear(&s);
}

static void test_prefixed_wildcards_and_configs(void **state)
{
    (void)state;
    struct acl_store s = {0};
    bool none;
    add(&s, ACL_RES_TOPIC, ACL_PAT_PREFIXED, "pre-", "User:*", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    add(&s, ACL_RES_GROUP, ACL_PAT_LITERAL, "*", "User:carol", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    add(&s, ACL_RES_CLUSTER, ACL_PAT_LITERAL, ACL_CLUSTER_NAME, "User:ops", "*",
        ACL_OP_ALTER_CONFIGS, ACL_PERM_ALLOW);
    assert_true(allows(&s, "User:anyone", ACL_OP_READ, ACL_RES_TOPIC, "pre-x", &none));
    assert_false(none);
    assert_false(allows(&s, "User:anyone", ACL_OP_READ, ACL_RES_TOPIC, "pr", &none));
    assert_true(none); /* no ACL covers "pr": allow.everyone.if.no.acl.found decides */
    assert_true(allows(&s, "User:carol", ACL_OP_READ, ACL_RES_GROUP, "any-group", NULL));
    assert_true(allows(&s, "User:carol", ACL_OP_DESCRIBE, ACL_RES_GROUP, "g", NULL));
    assert_true(allows(&s, "User:ops", ACL_OP_DESCRIBE_CONFIGS, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, NULL));
    assert_false(allows(&s, "User:ops", ACL_OP_DESCRIBE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, NULL));
    /* Host: an ACL for another host does not apply. */
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "h", "User:dan", "10.9.9.9", ACL_OP_READ, ACL_PERM_ALLOW);
    assert_false(allows(&s, "User:dan", ACL_OP_READ, ACL_RES_TOPIC, "h", NULL));
    acl_store_clear(&s);
}

static void test_filters_remove_and_validation(void **state)
{
    (void)state;
    struct acl_store s = {0};
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    assert_int_equal(s.n, 1); /* a duplicate is one ACL */
    add(&s, ACL_RES_TOPIC, ACL_PAT_PREFIXED, "t", "User:b", "*", ACL_OP_WRITE, ACL_PERM_ALLOW);
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "*", "User:c", "*", ACL_OP_READ, ACL_PERM_DENY);
    add(&s, ACL_RES_GROUP, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    struct acl_filter any = {ACL_RES_ANY, ACL_PAT_ANY, ACL_OP_ANY, ACL_PERM_ANY, NULL, NULL, NULL};
    struct acl_filter match = {ACL_RES_TOPIC, ACL_PAT_MATCH, ACL_OP_ANY, ACL_PERM_ANY, "tx", NULL, NULL};
    struct acl_filter literal = {ACL_RES_TOPIC, ACL_PAT_LITERAL, ACL_OP_ANY, ACL_PERM_ANY, "t", NULL, NULL};
    int n_any = 0, n_match = 0, n_literal = 0;
    for (int i = 0; i < s.n; i++) {
        n_any += acl_filter_matches(&any, &s.acls[i]);
        n_match += acl_filter_matches(&match, &s.acls[i]);
        n_literal += acl_filter_matches(&literal, &s.acls[i]);
    }
    assert_int_equal(n_any, 4);
    assert_int_equal(n_match, 2);   /* PREFIXED "t" and LITERAL "*" cover "tx" */
    assert_int_equal(n_literal, 1); /* only the literal "t" of topics */
    /* The file keeps them all, names with tabs and '%' included. */
    add(&s, ACL_RES_GROUP, ACL_PAT_LITERAL, "odd\tname%25", "User:x", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    char path[] = "/tmp/test_authorizer_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(acl_store_save(&s, path), 0);
    struct acl_store back = {0};
    assert_int_equal(acl_store_load(&back, path), 0);
    assert_int_equal(back.n, s.n);
    for (int i = 0; i < s.n; i++) {
        assert_string_equal(back.acls[i].name, s.acls[i].name);
        assert_string_equal(back.acls[i].principal, s.acls[i].principal);
        assert_int_equal(back.acls[i].operation, s.acls[i].operation);
        assert_int_equal(back.acls[i].permission, s.acls[i].permission);
    }
    unlink(path);
    acl_store_clear(&back);
    struct acl_binding gone[8];
    assert_int_equal(acl_store_remove(&s, &match, gone, 8), 2);
    for (int i = 0; i < 2; i++)
        acl_binding_free(&gone[i]);
    assert_int_equal(s.n, 3);
    acl_store_clear(&s);
    /* Kafka's refusals. */
    struct acl_binding bad = {ACL_RES_CLUSTER, ACL_PAT_LITERAL, ACL_OP_ALTER, ACL_PERM_ALLOW,
                              "other", "User:a", "*"};
    assert_non_null(acl_binding_invalid(&bad));
    bad = (struct acl_binding){ACL_RES_TOPIC, ACL_PAT_MATCH, ACL_OP_READ, ACL_PERM_ALLOW, "t", "User:a", "*"};
    assert_non_null(acl_binding_invalid(&bad));
    bad = (struct acl_binding){ACL_RES_TOPIC, ACL_PAT_LITERAL, ACL_OP_ANY, ACL_PERM_ALLOW, "t", "User:a", "*"};
    assert_non_null(acl_binding_invalid(&bad));
    bad = (struct acl_binding){ACL_RES_TRANSACTIONAL_ID, ACL_PAT_LITERAL, ACL_OP_READ, ACL_PERM_ALLOW, "t", "User:a", "*"};
    assert_non_null(acl_binding_invalid(&bad)); /* READ is no transactional id operation */
    bad = (struct acl_binding){ACL_RES_TOPIC, ACL_PAT_PREFIXED, ACL_OP_READ, ACL_PERM_ALLOW, "*", "User:a", "*"};
    assert_non_null(acl_binding_invalid(&bad));
}

/* Loads text as an ACL file: acl_store_load's result, the bindings in *s. */
static int load_text(struct acl_store *s, const char *text)
{
    char path[] = "/tmp/test_authorizer_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = acl_store_load(s, path);
    unlink(path);
    return rc;
}

/* What the store accepts the file keeps: an empty host (CreateAcls takes one) is an empty
 * field, not a missing one. The reader refuses what the writer never writes: a line of more
 * than seven fields, a '%' without two hex digits, an escaped NUL, an over-long field. */
static void test_file_keeps_every_binding_and_refuses_the_rest(void **state)
{
    (void)state;
    struct acl_store s = {0};
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "", ACL_OP_READ, ACL_PERM_ALLOW);
    add(&s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:", "\r", ACL_OP_WRITE, ACL_PERM_DENY);
    char path[] = "/tmp/test_authorizer_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(acl_store_save(&s, path), 0);
    struct acl_store back = {0};
    assert_int_equal(acl_store_load(&back, path), 0);
    unlink(path);
    assert_int_equal(back.n, s.n);
    for (int i = 0; i < s.n; i++) {
        assert_string_equal(back.acls[i].host, s.acls[i].host);
        assert_string_equal(back.acls[i].principal, s.acls[i].principal);
    }
    acl_store_clear(&back);
    acl_store_clear(&s);
    static const char *const refused[] = {
        "TOPIC\tLITERAL\tREAD\tALLOW\tt\tUser:a\t*\textra\n",
        "TOPIC\tLITERAL\tREAD\tALLOW\tt%zz\tUser:a\t*\n",
        "TOPIC\tLITERAL\tREAD\tALLOW\tt%4\tUser:a\t*\n",
        "TOPIC\tLITERAL\tREAD\tALLOW\tt%00x\tUser:a\t*\n",
        "TOPIC\tLITERAL\tREAD\tALLOW\tt\t\tUser:a\t*\n",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct acl_store r = {0};
        assert_int_equal(load_text(&r, refused[i]), -1);
        acl_store_clear(&r);
    }
    char *longer = malloc(ACL_STRING_MAX + 64);
    assert_non_null(longer);
    int n = snprintf(longer, ACL_STRING_MAX + 64, "TOPIC\tLITERAL\tREAD\tALLOW\t%0*d\tUser:a\t*\n",
                     ACL_STRING_MAX, 0);
    assert_true(n > ACL_STRING_MAX);
    struct acl_store r = {0};
    assert_int_equal(load_text(&r, longer), -1); /* CreateAcls refuses such a name too */
    acl_store_clear(&r);
    free(longer);
}

/* The names ZooKeeper's ACL znodes carry, as Kafka words them: every resource type, operation
 * and permission from its upper-case name; cut to the buffer. */
static void test_pascal_case_of_acl_names(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"TRANSACTIONAL_ID", "TransactionalId"}, {"DELEGATION_TOKEN", "DelegationToken"},
        {"IDEMPOTENT_WRITE", "IdempotentWrite"}, {"DESCRIBE_CONFIGS", "DescribeConfigs"},
        {"READ", "Read"},                        {"ALLOW", "Allow"},
        {"", ""},
    };
    char out[32];
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        pascal_case(cases[i][0], out, sizeof(out));
        assert_string_equal(out, cases[i][1]);
    }
    char small[5];
    pascal_case("DESCRIBE_CONFIGS", small, sizeof(small));
    assert_string_equal(small, "Desc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_implied_and_deny),
        cmocka_unit_test(test_prefixed_wildcards_and_configs),
        cmocka_unit_test(test_filters_remove_and_validation),
        cmocka_unit_test(test_file_keeps_every_binding_and_refuses_the_rest),
        cmocka_unit_test(test_pascal_case_of_acl_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
