/*  PLACEHOLDER (issue 5, in progress). */
#ifndef AR_SIGV4_H
#define AR_SIGV4_H
#include <stdbool.h>
void ar_sigv4_test (bool verbose);
#endif
