/* exactmath.h - exp, log, sin, cos, tanh and integer powers built from IEEE additions,
 * multiplications and divisions in a fixed order, so that every build (native, WebAssembly,
 * scalar) computes the same bits. libm's versions differ between glibc and Emscripten's musl
 * in the last bit; exact mode (setting `exact`) uses these instead. Accuracy: within a few
 * units in the last place of the true value (tests/test_exact.c measures it against libm). */
#ifndef Q4_EXACTMATH_H
#define Q4_EXACTMATH_H

double q4_exact_exp(double x);
double q4_exact_log(double x);
double q4_exact_sin(double x);
double q4_exact_cos(double x);
/* x^n for n >= 0 by repeated squaring */
double q4_exact_pow_int(double x, long long n);
/* tanh of a float, computed in double through q4_exact_exp and rounded once */
float q4_exact_tanhf(float x);

#endif
