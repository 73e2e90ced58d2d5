/* configs_quotas: `gregor configs --entity-type users|clients`, the quota half of
 * kafka-configs.sh: --alter --add-config / --delete-config of quota keys through
 * AlterClientQuotas, --describe through DescribeClientQuotas (raw wire: librdkafka 2.0 has
 * neither), with the lines Kafka 4.x's ConfigCommand prints. One entity type per command (the
 * user + client-id pair of Kafka's tool is not parsed yet). */
#include "cli/configs_quotas.h"
#include "cli/wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/messages.h"

#define QUOTA_OPS_MAX 16

static const char *const quota_keys[] = {"consumer_byte_rate", "controller_mutation_rate",
                                         "producer_byte_rate", "request_percentage"};

/* Java's Double.toString: the shortest digits that read back, "x.y", or "x.yE<n>" outside
 * [1e-3, 1e7). */
static void java_double(double v, char *out, size_t cap)
{
    char digits[40];
    double a = fabs(v);
    bool sci = a != 0 && (a < 1e-3 || a >= 1e7);
    for (int p = 1; p <= 17; p++) {
        snprintf(digits, sizeof digits, sci ? "%.*e" : "%.*g", sci ? p - 1 : p, v);
        if (strtod(digits, NULL) == v)
            break;
    }
    if (!sci) {
        if (strchr(digits, 'e')) /* %g chose an exponent: write it out plainly */
            snprintf(digits, sizeof digits, "%.17g", v);
        snprintf(out, cap, "%s%s", digits, strchr(digits, '.') ? "" : ".0");
        return;
    }
    char *e = strchr(digits, 'e');
    *e = '\0';
    int exp = atoi(e + 1);
    snprintf(out, cap, "%s%sE%d", digits, strchr(digits, '.') ? "" : ".0", exp);
}

static void entity_words(const char *type, const char *name, char *out, size_t cap)
{
    bool user = strcmp(type, "users") == 0;
    if (name == NULL)
        snprintf(out, cap, "the default %s", user ? "user-principal" : "client-id");
    else
        snprintf(out, cap, "%s '%s'", user ? "user-principal" : "client-id", name);
}

static int quotas_describe(struct cli_wire *w, struct arena *arena, const char *type,
                           const char *name, bool dflt)
{
    bool user = strcmp(type, "users") == 0;
    struct describe_client_quotas_request_component_data comp = {
        (struct kstr){(char *)(user ? "user" : "client-id"), user ? 4 : 9},
        (int8_t)(name ? 0 : dflt ? 1 : 2),
        name ? (struct kstr){(char *)name, (int32_t)strlen(name)} : (struct kstr){NULL, -1}};
    struct describe_client_quotas_request req = {&comp, 1, true};
    void *out;
    if (cli_wire_call(w, PROTO_API_DESCRIBE_CLIENT_QUOTAS, 1, &req, arena, &out) != 0) {
        printf("Error while executing config command with args: %s\n", w->error);
        return 1;
    }
    struct describe_client_quotas_response *resp = out;
    if (resp->error_code) {
        printf("Error while executing config command with args: %s\n",
               resp->error_message.ptr ? resp->error_message.ptr : "error");
        return 1;
    }
    for (int32_t i = 0; i < resp->n_entries; i++) {
        struct describe_client_quotas_response_describe_client_quotas_entry *e = &resp->entries[i];
        if (e->n_entity != 1)
            continue;
        char who[1200], line[4096] = "";
        entity_words(type, e->entity[0].entity_name.ptr, who, sizeof who);
        size_t used = 0;
        /* ConfigCommand lists the keys by name. */
        for (size_t k = 0; k < sizeof quota_keys / sizeof quota_keys[0]; k++)
            for (int32_t j = 0; j < e->n_values; j++)
                if (strcmp(e->values[j].key.ptr, quota_keys[k]) == 0 && used < sizeof line) {
                    char v[64];
                    java_double(e->values[j].value, v, sizeof v);
                    used += (size_t)snprintf(line + used, sizeof line - used, "%s%s=%s",
                                             used ? ", " : "", quota_keys[k], v);
                }
        printf("Quota configs for %s are %s\n", who, line);
    }
    return 0;
}

int configs_quotas_run(const char *bootstrap, int timeout_ms, bool alter, const char *type,
                       const char *name, bool dflt, char *add, char *del)
{
    bool user = strcmp(type, "users") == 0;
    struct alter_client_quotas_request_alter_client_quotas_op ops[QUOTA_OPS_MAX];
    int nops = 0;
    if (alter) {
        char bad[1024] = "";
        size_t nbad = 0;
        for (char *tok = add ? strtok(add, ",") : NULL; tok; tok = strtok(NULL, ",")) {
            char *eq = strchr(tok, '=');
            if (eq)
                *eq = '\0';
            bool known = false;
            for (size_t k = 0; k < sizeof quota_keys / sizeof quota_keys[0]; k++)
                known |= strcmp(tok, quota_keys[k]) == 0;
            char *end = NULL;
            double v = eq ? strtod(eq + 1, &end) : 0;
            if (!known || !eq || *end != '\0') {
                nbad += (size_t)snprintf(bad + nbad, nbad < sizeof bad ? sizeof bad - nbad : 0,
                                         "%s%s", nbad ? ", " : "", tok);
                continue;
            }
            if (nops == QUOTA_OPS_MAX)
                break;
            ops[nops++] = (struct alter_client_quotas_request_alter_client_quotas_op){
                (struct kstr){tok, (int32_t)strlen(tok)}, v, false};
        }
        if (nbad) {
            fprintf(stderr, "Only quota%s configs can be added for '%s' using --bootstrap-server. "
                            "Unexpected config names: Set(%s)\n",
                    user ? " and SCRAM credential" : "", type, bad);
            return 1;
        }
        for (char *tok = del ? strtok(del, ",") : NULL; tok && nops < QUOTA_OPS_MAX;
             tok = strtok(NULL, ","))
            ops[nops++] = (struct alter_client_quotas_request_alter_client_quotas_op){
                (struct kstr){tok, (int32_t)strlen(tok)}, 0, true};
        if (nops == 0) {
            fprintf(stderr, "At least one of --add-config or --delete-config must be specified "
                            "with --alter\n");
            return 1;
        }
    }
    struct cli_wire w;
    if (cli_wire_connect(&w, bootstrap, timeout_ms) != 0) {
        printf("Error while executing config command with args: %s\n", w.error);
        return 1;
    }
    struct arena arena;
    arena_init(&arena, CLI_WIRE_ARENA_LIMIT);
    int rc = 0;
    if (!alter) {
        rc = quotas_describe(&w, &arena, type, name, dflt);
    } else {
        struct alter_client_quotas_request_alter_client_quotas_entity ent = {
            (struct kstr){(char *)(user ? "user" : "client-id"), user ? 4 : 9},
            name ? (struct kstr){(char *)name, (int32_t)strlen(name)} : (struct kstr){NULL, -1}};
        struct alter_client_quotas_request_alter_client_quotas_entry entry = {&ent, 1, ops, nops};
        struct alter_client_quotas_request req = {&entry, 1, false};
        void *out;
        if (cli_wire_call(&w, PROTO_API_ALTER_CLIENT_QUOTAS, 1, &req, &arena, &out) != 0) {
            printf("Error while executing config command with args: %s\n", w.error);
            rc = 1;
        } else {
            struct alter_client_quotas_response *resp = out;
            if (resp->n_entries != 1 || resp->entries[0].error_code) {
                printf("Error while executing config command with args: %s\n",
                       resp->n_entries == 1 && resp->entries[0].error_message.ptr
                           ? resp->entries[0].error_message.ptr : "AlterClientQuotas failed");
                rc = 1;
            } else if (name) {
                printf("Completed updating config for %s %s.\n", user ? "user" : "client", name);
            } else {
                printf("Completed updating default config for %s in the cluster.\n", type);
            }
        }
    }
    arena_reset(&arena);
    cli_wire_close(&w);
    return rc;
}
