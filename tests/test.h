/* test.h — a minimal test harness. Each check prints a line on failure with
 * file:line; test_report() prints "<file>: N passed, N failed" and returns
 * the exit status (non-zero on any failure). */
#ifndef TG_TEST_H
#define TG_TEST_H

#include <math.h>
#include <stdio.h>

static int test_passed_, test_failed_;

#define TEST_CHECK(cond) do {                                                  \
        if (cond) test_passed_++;                                              \
        else { test_failed_++;                                                 \
               fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

#define TEST_CHECK_MSG(cond, ...) do {                                         \
        if (cond) test_passed_++;                                              \
        else { test_failed_++;                                                 \
               fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
               fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); }            \
    } while (0)

/* |a - b| <= atol + rtol * |b|, with NaN never close. */
#define TEST_CLOSE(a, b, atol, rtol) do {                                      \
        double a_ = (double)(a), b_ = (double)(b);                             \
        if (fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_)) test_passed_++;        \
        else { test_failed_++;                                                 \
               fprintf(stderr, "FAIL %s:%d: %s = %.17g, expected %s = %.17g\n", \
                       __FILE__, __LINE__, #a, a_, #b, b_); }                  \
    } while (0)

static inline int test_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

#endif
