/*  PLACEHOLDER (issue 5, in progress). */
#include "ar_google_auth.h"
void ar_google_auth_test (bool verbose) { (void)verbose; }
