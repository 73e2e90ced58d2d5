/* fuzz_acls_file: the reader of the broker's ACL file (<first log dir>/__acls,
 * acl_store_read in src/broker/authorizer.c) on arbitrary bytes. Nothing may crash, hang or
 * read past the input; every binding it accepts is valid (acl_binding_invalid) and holds
 * strings shorter than ACL_STRING_MAX; and what it accepts the writer (acl_store_write) writes
 * back to the same bindings, in the same order, which the reader accepts again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authorizer.h"
#include "common/logging.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_bytes(struct acl_store *s, const void *buf, size_t len)
{
    FILE *f = fmemopen((void *)buf, len, "r");
    GREGOR_ASSERT(f != NULL);
    int rc = acl_store_read(s, f, "fuzz");
    fclose(f);
    return rc;
}

static void check_valid(const struct acl_binding *a)
{
    GREGOR_ASSERT(acl_binding_invalid(a) == NULL);
    GREGOR_ASSERT(strlen(a->name) < ACL_STRING_MAX && strlen(a->principal) < ACL_STRING_MAX &&
                  strlen(a->host) < ACL_STRING_MAX);
}

static void check_same(const struct acl_binding *a, const struct acl_binding *b)
{
    GREGOR_ASSERT(a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
                  a->operation == b->operation && a->permission == b->permission);
    GREGOR_ASSERT(strcmp(a->name, b->name) == 0 && strcmp(a->principal, b->principal) == 0 &&
                  strcmp(a->host, b->host) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        logging_set_level(LOG_LEVEL_ERROR + 1); /* each refused line would log an error */
        quiet = true;
    }
    if (size == 0)
        return 0; /* fmemopen wants a buffer */
    uint8_t *copy = malloc(size); /* exact size: ASan sees an overread */
    GREGOR_ASSERT(copy != NULL);
    memcpy(copy, data, size);
    struct acl_store first = {0};
    if (read_bytes(&first, copy, size) == 0) {
        char *out = NULL;
        size_t out_len = 0;
        FILE *w = open_memstream(&out, &out_len);
        GREGOR_ASSERT(w != NULL);
        acl_store_write(&first, w);
        GREGOR_ASSERT(fclose(w) == 0);
        struct acl_store again = {0};
        GREGOR_ASSERT(read_bytes(&again, out, out_len) == 0);
        GREGOR_ASSERT(again.n == first.n);
        for (int i = 0; i < first.n; i++) {
            check_valid(&first.acls[i]);
            check_same(&first.acls[i], &again.acls[i]);
        }
        acl_store_clear(&again);
        free(out);
    }
    acl_store_clear(&first);
    free(copy);
    return 0;
}
