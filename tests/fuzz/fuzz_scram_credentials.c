/* fuzz_scram_credentials: the reader of the broker's scram-credentials file (one line each,
 * scram_credentials_line_parse in src/broker/scram.c, as sasl.c's credentials_load feeds it)
 * on arbitrary bytes, split into lines at '\n'. Nothing may crash or read past a line; an
 * accepted line names a user without tab or newline and a credential within bounds, and the
 * writer (scram_credentials_line_format) writes it back to a line read as the same entry. */
#include <stdlib.h>
#include <string.h>

#include "broker/scram.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const char *line)
{
    enum scram_mechanism m, m2;
    char user[SCRAM_NAME_MAX], user2[SCRAM_NAME_MAX];
    struct scram_credential c, c2;
    int rc = scram_credentials_line_parse(line, &m, user, sizeof(user), &c);
    GREGOR_ASSERT(rc >= -1 && rc <= 1);
    if (rc != 0)
        return;
    GREGOR_ASSERT(strpbrk(user, "\t\n") == NULL);
    GREGOR_ASSERT(c.salt_len > 0 && c.salt_len <= SCRAM_SALT_MAX && c.iterations >= 1);
    char text[1024];
    GREGOR_ASSERT(scram_credentials_line_format(m, user, &c, text, sizeof(text)) == 0);
    GREGOR_ASSERT(scram_credentials_line_parse(text, &m2, user2, sizeof(user2), &c2) == 0);
    GREGOR_ASSERT(m2 == m && strcmp(user2, user) == 0 && c2.salt_len == c.salt_len &&
                  c2.iterations == c.iterations);
    size_t kl = scram_key_len(m);
    GREGOR_ASSERT(memcmp(c2.salt, c.salt, c.salt_len) == 0 &&
                  memcmp(c2.stored_key, c.stored_key, kl) == 0 &&
                  memcmp(c2.server_key, c.server_key, kl) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* credentials_load reads lines of at most 1022 bytes; longer ones are refused before. */
    for (size_t start = 0; start < size;) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl != NULL ? (size_t)(nl - data) : size;
        size_t n = end - start;
        if (n <= 1022 && memchr(data + start, '\0', n) == NULL) {
            char *line = malloc(n + 1); /* exact size: ASan sees an overread */
            GREGOR_ASSERT(line != NULL);
            memcpy(line, data + start, n);
            line[n] = '\0';
            one_line(line);
            free(line);
        }
        start = end + 1;
    }
    return 0;
}
