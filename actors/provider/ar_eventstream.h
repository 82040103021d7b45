/*  PLACEHOLDER (issue 5, in progress). */
#ifndef AR_EVENTSTREAM_H
#define AR_EVENTSTREAM_H
#include <stdbool.h>
void ar_eventstream_test (bool verbose);
#endif
