/*  PLACEHOLDER (issue 5, in progress). */
#ifndef AR_GOOGLE_AUTH_H
#define AR_GOOGLE_AUTH_H
#include <stdbool.h>
void ar_google_auth_test (bool verbose);
#endif
