/* configs_quotas: `gregor configs --entity-type users|clients|ips`, the quota half of
 * kafka-configs.sh: --alter --add-config / --delete-config of quota keys through
 * AlterClientQuotas, --describe through DescribeClientQuotas (raw wire: librdkafka 2.0 has
 * neither), with the lines Kafka 4.x's ConfigCommand prints. One entity type per command (the
 * user + client-id pair of Kafka's tool is not parsed yet). */
#include "cli/configs_quotas.h"
#include "cli/wire.h"

#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "proto/messages.h"

#define QUOTA_OPS_MAX 16

static const char *const quota_keys[] = {"consumer_byte_rate", "controller_mutation_rate",
                                         "producer_byte_rate", "request_percentage"};
/* An ip entity has only the connection quota (KIP-612). */
static const char *const ip_quota_keys[] = {"connection_creation_rate"};

/* The wire's entity type of a --entity-type, and the word of ConfigCommand's lines. */
static const char *wire_type(const char *type)
{
    return strcmp(type, "users") == 0 ? "user" : strcmp(type, "ips") == 0 ? "ip" : "client-id";
}

/* DynamicConfig.Ip.isValidIpEntity: an address, or a name that resolves. */
static bool valid_ip_entity(const char *name)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return false;
    freeaddrinfo(res);
    return true;
}

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

/* The next item of "k=v,k=[a,b],k" (commas inside brackets kept), cut in place; NULL at the
 * end. */
static char *next_item(char **cursor)
{
    char *s = *cursor;
    if (s == NULL || *s == '\0')
        return NULL;
    int depth = 0;
    char *p = s;
    for (; *p; p++) {
        if (*p == '[')
            depth++;
        else if (*p == ']' && depth > 0)
            depth--;
        else if (*p == ',' && depth == 0)
            break;
    }
    *cursor = *p ? p + 1 : p;
    *p = '\0';
    return s;
}

/* SCRAM-SHA-256 is 1, SCRAM-SHA-512 2 (KIP-554); 0 for another key. */
static int scram_mechanism(const char *key)
{
    return strcmp(key, "SCRAM-SHA-256") == 0 ? 1 : strcmp(key, "SCRAM-SHA-512") == 0 ? 2 : 0;
}

#define SCRAM_OPS_MAX 4

/* "[iterations=N,password=P]" of a SCRAM key into an upsertion with the salted password
 * computed here, as Kafka's admin client does (a random salt, Hi() = PBKDF2 of the mechanism's
 * hash; iterations 4096 when not given). 0, or -1 with a message printed. */
static int scram_upsertion(const char *user, int mech, char *value, struct arena *arena,
                           struct alter_user_scram_credentials_request_scram_credential_upsertion *u)
{
    size_t len = strlen(value);
    if (len < 2 || value[0] != '[' || value[len - 1] != ']') {
        fprintf(stderr, "Invalid SCRAM credential value: expected [iterations=N,password=P]\n");
        return -1;
    }
    value[len - 1] = '\0';
    long iterations = 4096;
    const char *password = NULL;
    char *cursor = value + 1;
    for (char *item; (item = next_item(&cursor)) != NULL;) {
        if (strncmp(item, "iterations=", 11) == 0)
            iterations = strtol(item + 11, NULL, 10);
        else if (strncmp(item, "password=", 9) == 0)
            password = item + 9;
    }
    if (password == NULL) {
        fprintf(stderr, "Invalid SCRAM credential value: a password must be given\n");
        return -1;
    }
    /* Kafka's ScramFormatter.secureRandomBytes: a random base-36 string of 130 bits. */
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t rnd[26];
    uint8_t *salt = arena_alloc(arena, sizeof rnd);
    uint8_t *salted = arena_alloc(arena, 64);
    if (salt == NULL || salted == NULL || RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    for (size_t i = 0; i < sizeof rnd; i++)
        salt[i] = (uint8_t)digits[rnd[i] % 36];
    const EVP_MD *md = mech == 1 ? EVP_sha256() : EVP_sha512();
    int mdlen = mech == 1 ? 32 : 64;
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)sizeof rnd, (int)iterations,
                          md, mdlen, salted) != 1)
        return -1;
    *u = (struct alter_user_scram_credentials_request_scram_credential_upsertion){
        (struct kstr){(char *)user, (int32_t)strlen(user)}, (int8_t)mech, (int32_t)iterations,
        (struct kbytes){salt, (int32_t)sizeof rnd}, (struct kbytes){salted, mdlen}};
    return 0;
}

/* Kafka's "SCRAM credential configs for user-principal 'u' are SCRAM-SHA-256=iterations=N"
 * line when the user has credentials. */
static int scram_describe(struct cli_wire *w, struct arena *arena, const char *user)
{
    struct describe_user_scram_credentials_request_user_name un = {
        (struct kstr){(char *)user, (int32_t)strlen(user)}};
    struct describe_user_scram_credentials_request req = {&un, 1};
    void *out;
    if (cli_wire_call(w, PROTO_API_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, &req, arena, &out) != 0) {
        printf("Error while executing config command with args: %s\n", w->error);
        return 1;
    }
    struct describe_user_scram_credentials_response *resp = out;
    for (int32_t i = 0; i < resp->n_results; i++) {
        if (resp->results[i].error_code || resp->results[i].n_credential_infos <= 0)
            continue;
        printf("SCRAM credential configs for user-principal '%s' are ", user);
        for (int32_t j = 0; j < resp->results[i].n_credential_infos; j++)
            printf("%s%s=iterations=%d", j ? ", " : "",
                   resp->results[i].credential_infos[j].mechanism == 1 ? "SCRAM-SHA-256"
                                                                       : "SCRAM-SHA-512",
                   resp->results[i].credential_infos[j].iterations);
        printf("\n");
    }
    return 0;
}

static void entity_words(const char *type, const char *name, char *out, size_t cap)
{
    const char *word = strcmp(type, "users") == 0 ? "user-principal"
                       : strcmp(type, "ips") == 0 ? "ip" : "client-id";
    if (name == NULL)
        snprintf(out, cap, "the default %s", word);
    else
        snprintf(out, cap, "%s '%s'", word, name);
}

static int quotas_describe(struct cli_wire *w, struct arena *arena, const char *type,
                           const char *name, bool dflt, const struct configs_quota_client *client)
{
    bool ip = strcmp(type, "ips") == 0;
    const char *wt = wire_type(type);
    struct describe_client_quotas_request_component_data comp[2] = {
        {(struct kstr){(char *)wt, (int32_t)strlen(wt)},
         (int8_t)(name ? 0 : dflt ? 1 : 2),
         name ? (struct kstr){(char *)name, (int32_t)strlen(name)} : (struct kstr){NULL, -1}},
        {(struct kstr){"client-id", 9}, 2, (struct kstr){NULL, -1}}};
    if (client) {
        comp[1].match_type = (int8_t)(client->name ? 0 : client->dflt ? 1 : 2);
        if (client->name)
            comp[1].match = (struct kstr){(char *)client->name, (int32_t)strlen(client->name)};
    }
    struct describe_client_quotas_request req = {comp, client ? 2 : 1, true};
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
        if (e->n_entity != (client ? 2 : 1))
            continue;
        char who[2400], line[4096] = "";
        /* Kafka's order: the user, then the client id. */
        int first = client && strcmp(e->entity[0].entity_type.ptr, "user") != 0 ? 1 : 0;
        entity_words(type, e->entity[first].entity_name.ptr, who, sizeof who);
        if (client) {
            size_t at = strlen(who);
            snprintf(who + at, sizeof who - at, ", ");
            entity_words("clients", e->entity[1 - first].entity_name.ptr, who + at + 2,
                         sizeof who - at - 2);
        }
        size_t used = 0;
        /* ConfigCommand lists the keys by name. */
        const char *const *keys = ip ? ip_quota_keys : quota_keys;
        size_t nkeys = ip ? sizeof ip_quota_keys / sizeof ip_quota_keys[0]
                          : sizeof quota_keys / sizeof quota_keys[0];
        for (size_t k = 0; k < nkeys; k++)
            for (int32_t j = 0; j < e->n_values; j++)
                if (strcmp(e->values[j].key.ptr, keys[k]) == 0 && used < sizeof line) {
                    char v[64];
                    java_double(e->values[j].value, v, sizeof v);
                    used += (size_t)snprintf(line + used, sizeof line - used, "%s%s=%s",
                                             used ? ", " : "", keys[k], v);
                }
        printf("Quota configs for %s are %s\n", who, line);
    }
    return 0;
}

/* AlterUserScramCredentials of the SCRAM keys; 0, or 1 after printing why. */
static int scram_alter(struct cli_wire *w, struct arena *arena,
                       struct alter_user_scram_credentials_request_scram_credential_upsertion *ups,
                       int nups,
                       struct alter_user_scram_credentials_request_scram_credential_deletion *dels,
                       int ndels)
{
    struct alter_user_scram_credentials_request req = {dels, ndels, ups, nups};
    void *out;
    if (cli_wire_call(w, PROTO_API_ALTER_USER_SCRAM_CREDENTIALS, 0, &req, arena, &out) != 0) {
        printf("Error while executing config command with args: %s\n", w->error);
        return 1;
    }
    struct alter_user_scram_credentials_response *resp = out;
    for (int32_t i = 0; i < resp->n_results; i++)
        if (resp->results[i].error_code) {
            printf("Error while executing config command with args: %s\n",
                   resp->results[i].error_message.ptr ? resp->results[i].error_message.ptr
                                                      : "AlterUserScramCredentials failed");
            return 1;
        }
    return 0;
}

int configs_quotas_run(const char *bootstrap, int timeout_ms, bool alter, const char *type,
                       const char *name, bool dflt, const struct configs_quota_client *client,
                       char *add, char *del)
{
    bool user = strcmp(type, "users") == 0, ip = strcmp(type, "ips") == 0;
    const char *wt = wire_type(type);
    struct alter_client_quotas_request_alter_client_quotas_op ops[QUOTA_OPS_MAX];
    struct alter_user_scram_credentials_request_scram_credential_upsertion ups[SCRAM_OPS_MAX];
    struct alter_user_scram_credentials_request_scram_credential_deletion dels[SCRAM_OPS_MAX];
    int nops = 0, nups = 0, ndels = 0;
    struct arena arena;
    arena_init(&arena, CLI_WIRE_ARENA_LIMIT);
    int rc = 0;
    if (alter && ip && name && !valid_ip_entity(name)) {
        fprintf(stderr, "The entity name for ips must be a valid IP or resolvable host, but it "
                        "is: %s\n", name);
        arena_reset(&arena);
        return 1;
    }
    if (alter) {
        char bad[1024] = "";
        size_t nbad = 0;
        char *cursor = add;
        for (char *tok; (tok = next_item(&cursor)) != NULL;) {
            char *eq = strchr(tok, '=');
            if (eq)
                *eq = '\0';
            int mech = user && name && !client ? scram_mechanism(tok) : 0;
            if (mech && eq && nups < SCRAM_OPS_MAX) {
                if (scram_upsertion(name, mech, eq + 1, &arena, &ups[nups]) != 0) {
                    arena_reset(&arena);
                    return 1;
                }
                nups++;
                continue;
            }
            bool known = false;
            for (size_t k = 0; !ip && k < sizeof quota_keys / sizeof quota_keys[0]; k++)
                known |= strcmp(tok, quota_keys[k]) == 0;
            for (size_t k = 0; ip && k < sizeof ip_quota_keys / sizeof ip_quota_keys[0]; k++)
                known |= strcmp(tok, ip_quota_keys[k]) == 0;
            char *end = NULL;
            double v = eq ? strtod(eq + 1, &end) : 0;
            if (!known || !eq || *end != '\0') {
                nbad += (size_t)snprintf(bad + nbad, nbad < sizeof bad ? sizeof bad - nbad : 0,
                                         "%s%s", nbad ? ", " : "", tok);
                continue;
            }
            if (nops < QUOTA_OPS_MAX)
                ops[nops++] = (struct alter_client_quotas_request_alter_client_quotas_op){
                    (struct kstr){tok, (int32_t)strlen(tok)}, v, false};
        }
        if (nbad && ip) {
            fprintf(stderr, "Only connection quota configs can be added for 'ips' using "
                            "--bootstrap-server. Unexpected config names: %s\n", bad);
            arena_reset(&arena);
            return 1;
        }
        if (nbad) {
            fprintf(stderr, "Only quota%s configs can be added for '%s' using --bootstrap-server. "
                            "Unexpected config names: Set(%s)\n",
                    user ? " and SCRAM credential" : "", type, bad);
            arena_reset(&arena);
            return 1;
        }
        for (char *tok = del ? strtok(del, ",") : NULL; tok; tok = strtok(NULL, ",")) {
            int mech = user && name && !client ? scram_mechanism(tok) : 0;
            if (mech && ndels < SCRAM_OPS_MAX)
                dels[ndels++] = (struct alter_user_scram_credentials_request_scram_credential_deletion){
                    (struct kstr){(char *)name, (int32_t)strlen(name)}, (int8_t)mech};
            else if (!mech && nops < QUOTA_OPS_MAX)
                ops[nops++] = (struct alter_client_quotas_request_alter_client_quotas_op){
                    (struct kstr){tok, (int32_t)strlen(tok)}, 0, true};
        }
        if (nops + nups + ndels == 0) {
            fprintf(stderr, "At least one of --add-config or --delete-config must be specified "
                            "with --alter\n");
            arena_reset(&arena);
            return 1;
        }
    }
    struct cli_wire w;
    if (cli_wire_connect(&w, bootstrap, timeout_ms) != 0) {
        printf("Error while executing config command with args: %s\n", w.error);
        arena_reset(&arena);
        return 1;
    }
    if (!alter) {
        rc = quotas_describe(&w, &arena, type, name, dflt, client);
        if (rc == 0 && user && name && !client)
            rc = scram_describe(&w, &arena, name);
    } else {
        if (nops > 0) {
            struct alter_client_quotas_request_alter_client_quotas_entity ent[2] = {
                {(struct kstr){(char *)wt, (int32_t)strlen(wt)},
                 name ? (struct kstr){(char *)name, (int32_t)strlen(name)} : (struct kstr){NULL, -1}},
                {(struct kstr){"client-id", 9},
                 client && client->name
                     ? (struct kstr){(char *)client->name, (int32_t)strlen(client->name)}
                     : (struct kstr){NULL, -1}}};
            struct alter_client_quotas_request_alter_client_quotas_entry entry = {
                ent, client ? 2 : 1, ops, nops};
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
                }
            }
        }
        if (rc == 0 && nups + ndels > 0)
            rc = scram_alter(&w, &arena, ups, nups, dels, ndels);
        if (rc == 0 && name)
            printf("Completed updating config for %s %s.\n",
                   user ? "user" : ip ? "ip" : "client", name);
        else if (rc == 0)
            printf("Completed updating default config for %s in the cluster.\n", type);
    }
    arena_reset(&arena);
    cli_wire_close(&w);
    return rc;
}
