/* fuzz_oauth: OAUTHBEARER's parsers (src/broker/oauth.c) on arbitrary bytes: the first byte
 * picks the client first message parser (its token then checked as a JWT), the JWKS parser, or
 * the JWT check against a fixed JWKS (an EC P-256 and an RSA key). Nothing may crash, leak or
 * read past the input; a valid result must carry a principal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/oauth.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char JWKS[] = "{\"keys\": [{\"kty\": \"EC\", \"kid\": \"e1\", \"crv\": \"P-256\", \"x\": \"8sEZxDQDBTtZL0QrKWNG8nzgByQzyxezZChAjX17JM4\", \"y\": \"UvnvZAcp71UAlTGQqaYaWQiJh9M1suWay816Cd2QIDE\"}, {\"kty\": \"RSA\", \"kid\": \"r1\", \"n\": \"6Hf7Ss6NGzbTytTplTtJUsvl-htHJCCIyqxX968vySXY8bjY6Sr4S771ocX1e3AC4my0daVweWC3CzzKy2wx8DLZGH_j-sCYOwJkuhScQLRwuww5aoiVJVLUmsD6KIT06uqNEko3LwzeQbOgAXEnJpBvgdAfxxdmzaK21pGSls_J7S8cILva3cUh4GL80N6FYZomV7EUnbDyHt8D4UWINEmc6WGw7_zLQY_ycnUqgSlOl9f5AgbrqMLd3fI1vHl28NaC0MDybXKQszUdYWzDuA49HCiYOBo5pza0-LgSa7uujJGFgPQYAbdyN0CwpQXMaP6aFw2WvayCPxLO_MzJRQ\", \"e\": \"AQAB\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct oauth_jwks fixed;
    static bool ready;
    char err[512], principal[OAUTH_NAME_MAX], authzid[256];
    if (!ready) {
        GREGOR_ASSERT(oauth_jwks_parse(JWKS, strlen(JWKS), &fixed, err, sizeof(err)) == 0);
        GREGOR_ASSERT(fixed.n == 2);
        ready = true;
    }
    if (size == 0)
        return 0;
    uint8_t mode = data[0] % 3;
    bool audience = (data[0] & 4) != 0;
    data++;
    size--;
    /* A copy of exactly size bytes so ASan sees any read past the input. */
    char *in = malloc(size ? size : 1);
    GREGOR_ASSERT(in != NULL);
    memcpy(in, data, size);
    struct oauth_rules rules = {audience ? "aud1,aud2" : NULL, "iss", "sub", "scope", 30};
    int64_t exp_ms;
    if (mode == 0) {
        const char *tok;
        size_t tl;
        if (oauth_client_first_parse((const uint8_t *)in, size, authzid, sizeof(authzid), &tok,
                                     &tl, err, sizeof(err)) == 0) {
            GREGOR_ASSERT(tok >= in && tok + tl <= in + size && tl > 0);
            GREGOR_ASSERT(strlen(authzid) < sizeof(authzid));
            oauth_jwt_validate(tok, tl, &fixed, &rules, 1700000000000, principal,
                               sizeof(principal), &exp_ms, err, sizeof(err));
        }
    } else if (mode == 1) {
        struct oauth_jwks j;
        if (oauth_jwks_parse(in, size, &j, err, sizeof(err)) == 0) {
            GREGOR_ASSERT(j.n >= 0 && j.n <= OAUTH_KEYS_MAX);
            oauth_jwks_free(&j);
        }
    } else if (oauth_jwt_validate(in, size, &fixed, &rules, 1700000000000, principal,
                                  sizeof(principal), &exp_ms, err, sizeof(err)) == OAUTH_VALID) {
        GREGOR_ASSERT(principal[0] != '\0');
    }
    free(in);
    return 0;
}
