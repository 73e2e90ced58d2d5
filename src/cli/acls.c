/* acls: `gregor acls`, kafka-acls.sh's common options on librdkafka's admin API (CreateAcls,
 * DescribeAcls, DeleteAcls): --add, --remove, --list for topics, groups, the cluster and
 * transactional ids, LITERAL or PREFIXED, printed in Kafka's words. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/args.h"
#include "cli/cli.h"

/* Kafka's TRANSACTIONAL_ID resource type (5): Debian's librdkafka 2.0 has no name for it. */
#define ACLS_RESOURCE_TRANSACTIONAL_ID ((rd_kafka_ResourceType_t)5)
#define ACLS_MAX_BINDINGS 4096 /* one command's bindings (resources x principals x ops x hosts) */

static struct cli_opt acls_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: server to connect to>",
     "A list of host/port pairs to use for establishing the connection to the Kafka cluster.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: command-config>",
     "A property file containing configs to be passed to Admin Client.", 0, 0, 0},
    {"add", CLI_OPT_FLAG, NULL, "Indicates you are trying to add ACLs.", 0, 0, 0},
    {"remove", CLI_OPT_FLAG, NULL, "Indicates you are trying to remove ACLs.", 0, 0, 0},
    {"list", CLI_OPT_FLAG, NULL, "List ACLs for the specified resource.", 0, 0, 0},
    {"force", CLI_OPT_FLAG, NULL, "Assume Yes to all queries and do not prompt.", 0, 0, 0},
    {"topic", CLI_OPT_LIST, "<String: topic>", "topic to which ACLs should be added or removed.", 0, 0, 0},
    {"group", CLI_OPT_LIST, "<String: group>", "Consumer Group to which the ACLs should be added or removed.", 0, 0, 0},
    {"cluster", CLI_OPT_FLAG, NULL, "Add/Remove cluster ACLs.", 0, 0, 0},
    {"transactional-id", CLI_OPT_LIST, "<String: transactional-id>",
     "The transactionalId to which ACLs should be added or removed.", 0, 0, 0},
    {"resource-pattern-type", CLI_OPT_VALUE, "<ANY|MATCH|LITERAL|PREFIXED>",
     "The type of the resource pattern or pattern filter (default: LITERAL).", 0, 0, 0},
    {"allow-principal", CLI_OPT_LIST, "<String: allow-principal>", "principal in PrincipalType:name format.", 0, 0, 0},
    {"deny-principal", CLI_OPT_LIST, "<String: deny-principal>", "principal in PrincipalType:name format.", 0, 0, 0},
    {"allow-host", CLI_OPT_LIST, "<String: allow-host>", "Host from which principals listed in --allow-principal will have access (default: *).", 0, 0, 0},
    {"deny-host", CLI_OPT_LIST, "<String: deny-host>", "Host from which principals listed in --deny-principal will be denied access (default: *).", 0, 0, 0},
    {"operation", CLI_OPT_LIST, "<String>", "Operation that is being allowed or denied (default: All).", 0, 0, 0},
    {"principal", CLI_OPT_LIST, "<String: principal>", "List ACLs for the specified principal.", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd acls_cmd = {
    "kafka-acls.sh", "This tool helps to manage acls on kafka.", acls_opts,
};

struct resource {
    rd_kafka_ResourceType_t type;
    const char *name;
};

static const char *const op_names[] = {"Unknown", "Any", "All", "Read", "Write", "Create", "Delete",
                                       "Alter", "Describe", "ClusterAction", "DescribeConfigs",
                                       "AlterConfigs", "IdempotentWrite"};

/* "Read", "read", "DESCRIBE_CONFIGS", "DescribeConfigs" -> the operation; -1 when none. */
static int parse_operation(const char *s)
{
    char want[64];
    size_t n = 0;
    for (; *s && n + 1 < sizeof(want); s++)
        if (*s != '_')
            want[n++] = (char)tolower((unsigned char)*s);
    want[n] = '\0';
    for (int i = 2; i < (int)(sizeof(op_names) / sizeof(op_names[0])); i++)
        if (strcasecmp(op_names[i], want) == 0)
            return i;
    return -1;
}

static int collect_resources(struct resource *out, int max)
{
    int n = 0;
    struct { const char *opt; rd_kafka_ResourceType_t type; } kinds[] = {
        {"topic", RD_KAFKA_RESOURCE_TOPIC}, {"group", RD_KAFKA_RESOURCE_GROUP},
        {"transactional-id", ACLS_RESOURCE_TRANSACTIONAL_ID}};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        struct cli_opt *o = cli_opt_get(&acls_cmd, kinds[k].opt);
        for (int i = 0; o != NULL && i < o->count && n < max; i++)
            out[n++] = (struct resource){kinds[k].type, o->values[i]};
    }
    if (cli_has(&acls_cmd, "cluster") && n < max)
        out[n++] = (struct resource){RD_KAFKA_RESOURCE_BROKER, "kafka-cluster"};
    return n;
}

static void print_binding(const rd_kafka_AclBinding_t *b)
{
    printf(" \t(principal=%s, host=%s, operation=%s, permissionType=%s)\n",
           rd_kafka_AclBinding_principal(b), rd_kafka_AclBinding_host(b),
           rd_kafka_AclOperation_name(rd_kafka_AclBinding_operation(b)),
           rd_kafka_AclPermissionType_name(rd_kafka_AclBinding_permission_type(b)));
}

static const char *resource_type_word(rd_kafka_ResourceType_t t)
{
    return t == RD_KAFKA_RESOURCE_BROKER ? "CLUSTER"
           : t == ACLS_RESOURCE_TRANSACTIONAL_ID ? "TRANSACTIONAL_ID"
           : t == RD_KAFKA_RESOURCE_TOPIC ? "TOPIC"
           : t == RD_KAFKA_RESOURCE_GROUP ? "GROUP" : rd_kafka_ResourceType_name(t);
}

/* The librdkafka ACL resource type for ours (the cluster is its own type on the wire: 4). */
static rd_kafka_ResourceType_t wire_type(rd_kafka_ResourceType_t t)
{
    return t == RD_KAFKA_RESOURCE_BROKER ? (rd_kafka_ResourceType_t)4 : t;
}

static int add_or_remove(rd_kafka_t *rk, bool add, const struct resource *res, int nres,
                         rd_kafka_ResourcePatternType_t pattern)
{
    rd_kafka_AclBinding_t **bs = calloc(ACLS_MAX_BINDINGS, sizeof(*bs));
    if (bs == NULL)
        return 1;
    int n = 0, rc = 0;
    char err[256];
    struct cli_opt *ops = cli_opt_get(&acls_cmd, "operation");
    struct { const char *principals, *hosts; rd_kafka_AclPermissionType_t perm; } sides[] = {
        {"allow-principal", "allow-host", RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW},
        {"deny-principal", "deny-host", RD_KAFKA_ACL_PERMISSION_TYPE_DENY}};
    for (int r = 0; r < nres; r++)
        for (size_t s = 0; s < 2; s++) {
            struct cli_opt *pr = cli_opt_get(&acls_cmd, sides[s].principals);
            struct cli_opt *ho = cli_opt_get(&acls_cmd, sides[s].hosts);
            for (int p = 0; p < pr->count; p++)
                for (int o = 0; o < (ops->count > 0 ? ops->count : 1); o++)
                    for (int h = 0; h < (ho->count > 0 ? ho->count : 1); h++) {
                        int op = ops->count > 0 ? parse_operation(ops->values[o]) : 2;
                        if (op < 0) {
                            fprintf(stderr, "Invalid operation: %s\n", ops->values[o]);
                            rc = 1;
                            goto out;
                        }
                        if (n >= ACLS_MAX_BINDINGS)
                            goto out;
                        bs[n] = rd_kafka_AclBinding_new(
                            wire_type(res[r].type), res[r].name, pattern, pr->values[p],
                            ho->count > 0 ? ho->values[h] : "*", (rd_kafka_AclOperation_t)op,
                            sides[s].perm, err, sizeof(err));
                        if (bs[n] == NULL) {
                            fprintf(stderr, "%s\n", err);
                            rc = 1;
                            goto out;
                        }
                        n++;
                    }
        }
    if (n == 0) {
        rc = cli_usage_error(&acls_cmd, "You must specify one of: --allow-principal, --deny-principal");
        goto out;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options =
        cli_admin_options(rk, add ? RD_KAFKA_ADMIN_OP_CREATEACLS : RD_KAFKA_ADMIN_OP_DELETEACLS);
    if (add) {
        for (int i = 0; i < n; i++) {
            printf("Adding ACLs for resource `ResourcePattern(resourceType=%s, name=%s, "
                   "patternType=%s)`: \n",
                   resource_type_word(rd_kafka_AclBinding_restype(bs[i])),
                   rd_kafka_AclBinding_name(bs[i]),
                   rd_kafka_ResourcePatternType_name(pattern));
            print_binding(bs[i]);
        }
        rd_kafka_CreateAcls(rk, bs, (size_t)n, options, q);
    } else {
        rd_kafka_DeleteAcls(rk, (rd_kafka_AclBindingFilter_t **)bs, (size_t)n, options, q);
    }
    rd_kafka_event_t *ev = cli_admin_wait(q, add ? "Error while adding ACLs" : "Error while removing ACLs");
    if (ev == NULL) {
        rc = 1;
    } else if (add) {
        size_t nr;
        const rd_kafka_acl_result_t **results =
            rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &nr);
        for (size_t i = 0; i < nr; i++) {
            const rd_kafka_error_t *e = rd_kafka_acl_result_error(results[i]);
            if (e != NULL) {
                fprintf(stderr, "Error while adding ACLs: %s\n", rd_kafka_error_string(e));
                rc = 1;
            }
        }
    } else {
        size_t nr;
        const rd_kafka_DeleteAcls_result_response_t **rs =
            rd_kafka_DeleteAcls_result_responses(rd_kafka_event_DeleteAcls_result(ev), &nr);
        for (size_t i = 0; i < nr; i++) {
            const rd_kafka_error_t *e = rd_kafka_DeleteAcls_result_response_error(rs[i]);
            if (e != NULL) {
                fprintf(stderr, "Error while removing ACLs: %s\n", rd_kafka_error_string(e));
                rc = 1;
            }
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
out:
    for (int i = 0; i < n; i++)
        rd_kafka_AclBinding_destroy(bs[i]);
    free(bs);
    return rc;
}

static int list(rd_kafka_t *rk, const struct resource *res, int nres,
                rd_kafka_ResourcePatternType_t pattern)
{
    int rc = 0;
    struct cli_opt *pr = cli_opt_get(&acls_cmd, "principal");
    for (int r = 0; r < (nres > 0 ? nres : 1); r++) {
        char err[256];
        rd_kafka_AclBindingFilter_t *f = rd_kafka_AclBindingFilter_new(
            nres > 0 ? wire_type(res[r].type) : RD_KAFKA_RESOURCE_ANY,
            nres > 0 ? res[r].name : NULL, nres > 0 ? pattern : RD_KAFKA_RESOURCE_PATTERN_ANY,
            pr->count > 0 ? pr->values[0] : NULL, NULL, RD_KAFKA_ACL_OPERATION_ANY,
            RD_KAFKA_ACL_PERMISSION_TYPE_ANY, err, sizeof(err));
        if (f == NULL) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBEACLS);
        rd_kafka_DescribeAcls(rk, f, options, q);
        rd_kafka_event_t *ev = cli_admin_wait(q, "Error while listing ACLs");
        if (ev == NULL) {
            rc = 1;
        } else {
            size_t n;
            const rd_kafka_AclBinding_t **bs =
                rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev), &n);
            /* Kafka's grouping: one heading per resource pattern, its ACLs below. */
            for (size_t i = 0; i < n; i++) {
                bool first = true;
                for (size_t j = 0; j < i && first; j++)
                    first = !(rd_kafka_AclBinding_restype(bs[j]) == rd_kafka_AclBinding_restype(bs[i]) &&
                              rd_kafka_AclBinding_resource_pattern_type(bs[j]) ==
                                  rd_kafka_AclBinding_resource_pattern_type(bs[i]) &&
                              strcmp(rd_kafka_AclBinding_name(bs[j]), rd_kafka_AclBinding_name(bs[i])) == 0);
                if (!first)
                    continue;
                rd_kafka_ResourceType_t t = rd_kafka_AclBinding_restype(bs[i]);
                printf("Current ACLs for resource `ResourcePattern(resourceType=%s, name=%s, "
                       "patternType=%s)`: \n", resource_type_word(t),
                       rd_kafka_AclBinding_name(bs[i]),
                       rd_kafka_ResourcePatternType_name(rd_kafka_AclBinding_resource_pattern_type(bs[i])));
                for (size_t j = i; j < n; j++)
                    if (rd_kafka_AclBinding_restype(bs[j]) == t &&
                        rd_kafka_AclBinding_resource_pattern_type(bs[j]) ==
                            rd_kafka_AclBinding_resource_pattern_type(bs[i]) &&
                        strcmp(rd_kafka_AclBinding_name(bs[j]), rd_kafka_AclBinding_name(bs[i])) == 0)
                        print_binding(bs[j]);
                printf("\n");
            }
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_AdminOptions_destroy(options);
        rd_kafka_queue_destroy(q);
        rd_kafka_AclBinding_destroy(f);
    }
    return rc;
}

int cli_acls(int argc, char **argv)
{
    int pr = cli_args_parse(&acls_cmd, argc, argv);
    if (pr != 0)
        return cli_args_exit_code(pr);
    int actions = cli_has(&acls_cmd, "add") + cli_has(&acls_cmd, "remove") + cli_has(&acls_cmd, "list");
    if (actions != 1) {
        int rc = cli_usage_error(&acls_cmd, "Command must include exactly one action: --list, --add, --remove. ");
        cli_args_free(&acls_cmd);
        return rc;
    }
    const char *pt = cli_value(&acls_cmd, "resource-pattern-type");
    rd_kafka_ResourcePatternType_t pattern = RD_KAFKA_RESOURCE_PATTERN_LITERAL;
    if (pt != NULL) {
        if (strcasecmp(pt, "PREFIXED") == 0)
            pattern = RD_KAFKA_RESOURCE_PATTERN_PREFIXED;
        else if (strcasecmp(pt, "MATCH") == 0)
            pattern = RD_KAFKA_RESOURCE_PATTERN_MATCH;
        else if (strcasecmp(pt, "ANY") == 0)
            pattern = RD_KAFKA_RESOURCE_PATTERN_ANY;
        else if (strcasecmp(pt, "LITERAL") != 0) {
            int rc = cli_usage_error(&acls_cmd, "Invalid resource-pattern-type: %s", pt);
            cli_args_free(&acls_cmd);
            return rc;
        }
    }
    struct resource res[256];
    int nres = collect_resources(res, 256);
    int rc = 1;
    if (!cli_has(&acls_cmd, "list") && nres == 0) {
        rc = cli_usage_error(&acls_cmd, "You must provide at least one resource: --topic <topic> "
                             "or --cluster or --group <group> or --transactional-id <id>");
    } else {
        rd_kafka_t *rk = cli_admin_connect(&acls_cmd);
        if (rk != NULL) {
            rc = cli_has(&acls_cmd, "list") ? list(rk, res, nres, pattern)
                                            : add_or_remove(rk, cli_has(&acls_cmd, "add"), res,
                                                            nres, pattern);
            rd_kafka_destroy(rk);
        }
    }
    cli_args_free(&acls_cmd);
    return rc;
}
