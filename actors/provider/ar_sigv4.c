/*  PLACEHOLDER (issue 5, in progress). */
#include "ar_sigv4.h"
void ar_sigv4_test (bool verbose) { (void)verbose; }
