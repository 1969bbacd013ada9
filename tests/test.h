/* Minimal typed test assertions (libuv task.h style): print both expressions and values. */
#ifndef OTELPROF_TEST_H
#define OTELPROF_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit code ctest maps to SKIPPED (SKIP_RETURN_CODE). */
#define TEST_SKIP_CODE 77

#define TEST_FAIL(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        abort();                                                                                   \
    } while (0)

#define TEST_SKIP(...)                                                                             \
    do {                                                                                           \
        printf("SKIPPED: ");                                                                       \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        exit(TEST_SKIP_CODE);                                                                      \
    } while (0)

#define ASSERT_INT_(a, op, b)                                                                      \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!(a_ op b_))                                                                           \
            TEST_FAIL("ASSERT(%s %s %s) failed: %lld vs %lld", #a, #op, #b, a_, b_);               \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_(a, >=, b)
#define ASSERT_TRUE(a)  ASSERT_INT_(!!(a), ==, 1)
#define ASSERT_NULL(a)  ASSERT_TRUE((a) == NULL)

/* otelprof_status comparisons that print the status names. */
#define ASSERT_STATUS(a, b)                                                                        \
    do {                                                                                           \
        int a_ = (int)(a), b_ = (int)(b);                                                          \
        if (a_ != b_)                                                                              \
            TEST_FAIL("ASSERT_STATUS(%s, %s) failed: %s (%d) vs %s (%d)", #a, #b,                  \
                      otelprof_status_name((otelprof_status)a_), a_,                               \
                      otelprof_status_name((otelprof_status)b_), b_);                              \
    } while (0)
#define ASSERT_OK(a) ASSERT_STATUS(a, OTELPROF_OK)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            TEST_FAIL("ASSERT_STR_EQ(%s, %s) failed: \"%s\" vs \"%s\"", #a, #b,                    \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                     \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0)                                                            \
            TEST_FAIL("ASSERT_MEM_EQ(%s, %s, %s) failed", #a, #b, #n);                             \
    } while (0)

/* A test file holds several cases; the runner picks one by name (argv[1]) so each is its
 * own ctest entry. */
typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

static inline int test_main(const test_case *cases, int argc, char **argv)
{
    if (argc < 2) {
        for (const test_case *c = cases; c->name; c++)
            printf("%s\n", c->name);
        return 0;
    }
    for (const test_case *c = cases; c->name; c++) {
        if (strcmp(c->name, argv[1]) == 0) {
            c->fn();
            printf("ok %s\n", c->name);
            return 0;
        }
    }
    fprintf(stderr, "no test case named %s\n", argv[1]);
    return 2;
}

#endif
