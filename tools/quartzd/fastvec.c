/*
 * fastvec.c - the fast path for the one large array of a request body: the
 * "query" of a search, the "vector" of an insert or upsert.
 *
 * Profiling quartzd's search route (bench/bench_rest.sh, perf) showed most of
 * a request's time going to cJSON turning the 384 numbers of the query into
 * one heap node each, through glibc's strtod: more than the search itself.
 * qd_fastvec_take() reads that array straight from the body text into floats
 * and blanks it ("[   ...   ]" becomes "[" spaces "]"), so cJSON still parses
 * and checks the whole body but meets an empty array.
 *
 * It only ever takes the easy case and leaves everything else to the cJSON
 * path, unchanged: the body must be an object whose first top-level member
 * named KEY (cJSON_GetObjectItemCaseSensitive() returns the first too) is an
 * array of exactly DIM plain JSON numbers, each finite as a float. Anything
 * else (a string element, a wrong length, NaN as text, malformed JSON, an
 * escaped key) returns false with the body untouched, and the cJSON path
 * reports the error exactly as before.
 *
 * The numbers come out bit for bit as cJSON's would: cJSON parses to double
 * with strtod, then quartzd rounds to float. Here a number whose mantissa is
 * below 2^53 and whose power of ten is at most 22 is computed with one IEEE
 * multiplication or division, which is correctly rounded (Clinger's fast
 * path), hence strtod's double. Longer mantissas (the 17 digits of a float32
 * printed as a double, as numpy's tolist() and json.dumps write it) take the
 * same operation on the mantissa cut to 19 digits, whose result is within
 * 2.1 double ulps of the exact value; that is enough to know the float
 * unless a float rounding midpoint is within 8 double ulps, and then strtod
 * decides. tests/quartzd/test_fastvec.c checks agreement on over a million
 * numbers, rounding midpoints included.
 */
#include "quartzd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* Skip a string starting at s[i] == '"'; returns the index after the closing quote, or n. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return n;
}

/* Skip any JSON value starting at s[i]; returns the index after it, or n when
 * the text ends first. It trusts cJSON to reject what is malformed later. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n) return n;
    if (s[i] == '"') return skip_string(s, i, n);
    if (s[i] != '{' && s[i] != '[') {
        while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
               s[i] != '\n' && s[i] != '\r')
            i++;
        return i;
    }
    int depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, i, n);
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
        }
        i++;
    }
    return n;
}

/* The float cJSON's path gives for the text s[start..end): strtod to double,
 * then a cast. */
static bool slow_float(const char *s, size_t start, size_t end, float *out)
{
    char buf[128];
    size_t len = end - start;
    if (len >= sizeof buf) return false; /* let cJSON have it */
    memcpy(buf, s + start, len);
    buf[len] = 0;
    *out = (float)strtod(buf, NULL);
    return true;
}

/* One JSON number at s[*pi] as a float; false if the text there is not one. */
static bool parse_number(const char *s, size_t *pi, size_t n, float *out)
{
    size_t i = *pi, start = i;
    bool neg = false;
    if (i < n && s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= n || s[i] < '0' || s[i] > '9') return false;
    uint64_t mant = 0;
    int digits = 0, exp10 = 0;
    bool truncated = false;
    if (s[i] == '0') {
        i++;
    } else {
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (digits < 19) mant = mant * 10 + (uint64_t)(s[i] - '0');
            else {
                exp10++;
                truncated |= s[i] != '0';
            }
            digits += mant != 0;
        }
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return false;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(s[i] - '0');
                exp10--;
                digits += mant != 0;
            } else {
                truncated |= s[i] != '0';
            }
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        if (i >= n || s[i] < '0' || s[i] > '9') return false;
        int e = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (e < 100000) e = e * 10 + (s[i] - '0');
        exp10 += eneg ? -e : e;
    }
    *pi = i;
    if (mant == 0) {
        *out = neg ? -0.0f : 0.0f;
        return true;
    }
    if (exp10 < -22 || exp10 > 22) return slow_float(s, start, i, out);
    double v = (double)mant;
    v = exp10 >= 0 ? v * pow10_exact[exp10] : v / pow10_exact[-exp10];
    if (!truncated && mant < (1ull << 53)) {
        /* Exact operands, one correctly rounded operation: strtod's double. */
        *out = (float)(neg ? -v : v);
        return true;
    }
    /* v is within 2.1 units in the last place of the exact value (mantissa
     * cut to 19 digits: < 1e-18 relative; its conversion and the operation:
     * half a unit each). Rounding it to float gives what rounding strtod's
     * double gives unless a float rounding midpoint lies that close: the
     * midpoint is where the 29 bits a float drops read 2^28. Near one, or
     * outside the normal float range, strtod decides. */
    union {
        double d;
        uint64_t u;
    } b = {.d = v};
    uint64_t low = b.u & ((1ull << 29) - 1), half = 1ull << 28;
    if ((low > half - 8 && low < half + 8) || !(v >= 1.17549435e-38 && v < 3.4028234e38))
        return slow_float(s, start, i, out);
    *out = (float)(neg ? -v : v);
    return true;
}

bool qd_fastvec_take(char *body, size_t blen, const char *key, float *out, size_t dim)
{
    size_t klen = strlen(key), i = skip_ws(body, 0, blen);
    if (i >= blen || body[i] != '{') return false;
    i = skip_ws(body, i + 1, blen);
    while (i < blen && body[i] == '"') {
        size_t ks = i + 1, ke = skip_string(body, i, blen);
        if (ke >= blen) return false;
        if (memchr(body + ks, '\\', ke - 1 - ks)) return false; /* cJSON would decode it: leave it all to cJSON */
        bool match = ke - 1 - ks == klen && memcmp(body + ks, key, klen) == 0;
        i = skip_ws(body, ke, blen);
        if (i >= blen || body[i] != ':') return false;
        i = skip_ws(body, i + 1, blen);
        if (match) {
            if (i >= blen || body[i] != '[') return false;
            size_t open = i, count = 0;
            i = skip_ws(body, i + 1, blen);
            if (i < blen && body[i] == ']') return false; /* empty: the cJSON path says so */
            for (;;) {
                float f;
                if (count >= dim || !parse_number(body, &i, blen, &f)) return false;
                if (!isfinite(f)) return false;
                out[count++] = f;
                i = skip_ws(body, i, blen);
                if (i >= blen) return false;
                if (body[i] == ']') break;
                if (body[i] != ',') return false;
                i = skip_ws(body, i + 1, blen);
            }
            if (count != dim) return false;
            memset(body + open + 1, ' ', i - open - 1);
            return true;
        }
        i = skip_ws(body, skip_value(body, i, blen), blen);
        if (i >= blen || body[i] != ',') return false;
        i = skip_ws(body, i + 1, blen);
    }
    return false;
}
