/* The floor a compiled statistics kernel would reach: min, max, sum and sum of squares of a
 * float32 tensor in one pass (16 lanes, which the compiler vectorizes). NaN is skipped by the
 * comparisons and shows in the sum, so a non-finite sum is where NaN/inf would be counted.
 * Built by benchmarks/activation_bench.py with the C compiler on PATH, for the benchmark only:
 * hawknb itself ships no compiled code. */
#include <math.h>

void stats4(const float *x, long n, double *out) {
    float lo[16], hi[16], s[16], q[16];
    for (int j = 0; j < 16; j++) {
        lo[j] = INFINITY;
        hi[j] = -INFINITY;
        s[j] = 0.0f;
        q[j] = 0.0f;
    }
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float v = x[i + j];
            lo[j] = v < lo[j] ? v : lo[j];
            hi[j] = v > hi[j] ? v : hi[j];
            s[j] += v;
            q[j] += v * v;
        }
    double sum = 0.0, sq = 0.0;
    float low = INFINITY, high = -INFINITY;
    for (int j = 0; j < 16; j++) {
        low = lo[j] < low ? lo[j] : low;
        high = hi[j] > high ? hi[j] : high;
        sum += s[j];
        sq += q[j];
    }
    for (; i < n; i++) {
        float v = x[i];
        low = v < low ? v : low;
        high = v > high ? v : high;
        sum += v;
        sq += (double)v * v;
    }
    out[0] = low;
    out[1] = high;
    out[2] = sum;
    out[3] = sq;
}
