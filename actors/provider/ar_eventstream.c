/*  PLACEHOLDER (issue 5, in progress). */
#include "ar_eventstream.h"
void ar_eventstream_test (bool verbose) { (void)verbose; }
