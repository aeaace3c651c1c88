/*
 * test_fastvec.c - quartzd's fast path for the vector of a request body
 * (tools/quartzd/fastvec.c) against the path it stands in for: cJSON's
 * parse, then (float)valuedouble. Every float it returns must be bit for bit
 * the cJSON path's, for numbers printed every way clients print them, and
 * every body it does not take whole must be left byte for byte untouched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool qd_fastvec_take(char *body, size_t blen, const char *key, float *out, size_t dim);

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The cJSON path: the first top-level KEY, each element as (float)double. */
static size_t cjson_floats(const char *body, const char *key, float *out, size_t cap)
{
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    size_t n = 0;
    for (const cJSON *c = a ? a->child : NULL; c && n < cap; c = c->next) out[n++] = (float)c->valuedouble;
    cJSON_Delete(j);
    return n;
}

static void check_body_agrees(const char *body, size_t dim)
{
    size_t len = strlen(body);
    char *copy = malloc(len + 1);
    float *fast = malloc(dim * sizeof(float)), *slow = malloc(dim * sizeof(float));
    assert_true(copy && fast && slow);
    memcpy(copy, body, len + 1);
    if (!qd_fastvec_take(copy, len, "query", fast, dim)) fail_msg("not taken: %.300s", body);
    assert_int_equal(cjson_floats(body, "query", slow, dim), dim);
    for (size_t i = 0; i < dim; i++)
        if (memcmp(&fast[i], &slow[i], sizeof(float)) != 0)
            fail_msg("element %zu: fast %.9g, cJSON %.9g, in %.200s", i, fast[i], slow[i], body);
    /* what is left parses, with the array empty and the rest intact */
    cJSON *j = cJSON_Parse(copy);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "query")), 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "k")->valueint, 10);
    cJSON_Delete(j);
    free(copy);
    free(fast);
    free(slow);
}

static float random_float(void)
{
    for (;;) {
        uint32_t u = (uint32_t)next();
        float f;
        memcpy(&f, &u, sizeof f);
        if (isfinite(f)) return f;
    }
}

/* Numbers as clients print them: %.9g of floats, %.17g of the float as a
 * double (numpy tolist + json.dumps), short decimals, random long decimals. */
static void test_agrees_with_cjson(void **state)
{
    (void)state;
    enum { DIM = 256, ROUNDS = 4000 };
    char *body = malloc(DIM * 48 + 64);
    assert_non_null(body);
    for (int round = 0; round < ROUNDS; round++) {
        size_t at = (size_t)sprintf(body, "{\"k\": 10, \"query\": [");
        int style = round % 6;
        for (int i = 0; i < DIM; i++) {
            float f = random_float();
            if (round % 3 == 0) f = (float)((double)(int32_t)next() / 2147483648.0); /* embedding-like, [-1, 1) */
            if (i) body[at++] = ',';
            switch (style) {
            case 0: at += (size_t)sprintf(body + at, "%.9g", f); break;
            case 1: at += (size_t)sprintf(body + at, "%.17g", (double)f); break;
            case 2: at += (size_t)sprintf(body + at, "%.3f", (double)((int)(next() % 20001) - 10000) / 1000.0); break;
            case 3: { /* random decimal with up to 25 digits and an exponent */
                int nd = 1 + (int)(next() % 25);
                if (next() & 1) body[at++] = '-';
                body[at++] = (char)('1' + next() % 9);
                if (nd > 1) body[at++] = '.';
                for (int d = 1; d < nd; d++) body[at++] = (char)('0' + next() % 10);
                at += (size_t)sprintf(body + at, "e%d", (int)(next() % 60) - 40);
                break;
            }
            case 4: at += (size_t)sprintf(body + at, "%.17g", (double)random_float() * 1e-3); break;
            default: at += (size_t)sprintf(body + at, "%d", (int)(next() % 2000001) - 1000000); break;
            }
        }
        at += (size_t)sprintf(body + at, "] }");
        /* keep only bodies whose every number is a finite float, as the fast path requires */
        float tmp[DIM];
        size_t n = cjson_floats(body, "query", tmp, DIM);
        assert_int_equal(n, DIM);
        bool finite = true;
        for (int i = 0; i < DIM; i++) finite &= isfinite(tmp[i]) != 0;
        if (finite) check_body_agrees(body, DIM);
    }
    free(body);
}

/* Floats near rounding midpoints: decimals of the midpoint between two
 * neighbouring floats, a hair above and below, to 17-25 digits. */
static void test_midpoints(void **state)
{
    (void)state;
    char body[256];
    for (int round = 0; round < 200000; round++) {
        float f = fabsf(random_float());
        if (!(f >= 1.2e-38f && f < 3e38f)) continue;
        float g = nextafterf(f, INFINITY);
        double mid = ((double)f + (double)g) / 2;
        double v = round % 3 == 0 ? mid : round % 3 == 1 ? nextafter(mid, 0) : nextafter(mid, INFINITY);
        int prec = 17 + (int)(next() % 9);
        snprintf(body, sizeof body, "{\"query\": [%.*g], \"k\": 10}", prec, v);
        check_body_agrees(body, 1);
    }
}

static void expect_untouched(const char *body, size_t dim)
{
    size_t len = strlen(body);
    char *copy = malloc(len + 1);
    float out[8];
    assert_non_null(copy);
    memcpy(copy, body, len + 1);
    if (qd_fastvec_take(copy, len, "query", out, dim)) fail_msg("took %s", body);
    assert_memory_equal(copy, body, len + 1);
    free(copy);
}

static void test_leaves_everything_else_to_cjson(void **state)
{
    (void)state;
    expect_untouched("{\"query\": [1, 2, \"3\"]}", 3);    /* a string element */
    expect_untouched("{\"query\": [1, 2]}", 3);           /* too short */
    expect_untouched("{\"query\": [1, 2, 3, 4]}", 3);     /* too long */
    expect_untouched("{\"query\": []}", 3);
    expect_untouched("{\"query\": [1, NaN, 3]}", 3);
    expect_untouched("{\"query\": [1, 1e400, 3]}", 3);     /* infinite as a double */
    expect_untouched("{\"query\": [1, 1e39, 3]}", 3);      /* infinite as a float */
    expect_untouched("{\"query\": [1, [2], 3]}", 3);
    expect_untouched("{\"query\": [01, 2, 3]}", 3);        /* not JSON */
    expect_untouched("{\"query\": [1., 2, 3]}", 3);
    expect_untouched("{\"query\": [+1, 2, 3]}", 3);
    expect_untouched("{\"query\": [1, 2, 3,]}", 3);
    expect_untouched("{\"query\": [1 2 3]}", 3);
    expect_untouched("{\"query\": [1, 2, 3}", 3);
    expect_untouched("{\"query\": \"1,2,3\"}", 3);
    expect_untouched("{\"qu\\u0065ry\": [1, 2, 3]}", 3);   /* cJSON decodes the key: it decides */
    expect_untouched("{\"other\": {\"query\": [1, 2, 3]}}", 3);
    expect_untouched("{\"other\": \"\\\"query\\\": [1, 2, 3]\"}", 3);
    expect_untouched("[{\"query\": [1, 2, 3]}]", 3);
    expect_untouched("{\"query\": [1, 2, 3", 3);
}

static void test_first_key_and_nested_values(void **state)
{
    (void)state;
    char body[] = "{\"a\": {\"query\": [9, 9, 9], \"s\": \"]}\\\"\"}, \"b\": [[1], {\"c\": \"[\"}], "
                  "\"query\": [ 1.5 , -2e-3,3 ], \"query\": [7, 7, 7], \"k\": 10}";
    float out[3];
    assert_true(qd_fastvec_take(body, strlen(body), "query", out, 3));
    assert_true(out[0] == 1.5f && out[1] == -2e-3f && out[2] == 3.0f);
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "query")), 0);
    cJSON_Delete(j);
    char zeros[] = "{\"query\": [0, -0, 0.0, 0e5]}";
    float z[4];
    assert_true(qd_fastvec_take(zeros, strlen(zeros), "query", z, 4));
    assert_true(z[0] == 0 && signbit(z[1]) && z[2] == 0 && z[3] == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_cjson),
        cmocka_unit_test(test_midpoints),
        cmocka_unit_test(test_leaves_everything_else_to_cjson),
        cmocka_unit_test(test_first_key_and_nested_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
