/*  ar_env: configuration from ANYRAY_* environment variables, with defaults and bounds. */
#ifndef AR_ENV_H
#define AR_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Value of name, or def when unset or empty.
const char *ar_env_str (const char *name, const char *def);
//  Integer value of name within [min, max], or def when unset, empty or invalid.
int64_t ar_env_int (const char *name, int64_t def, int64_t min, int64_t max);
//  The broker endpoint every process uses: ANYRAY_BROKER_ENDPOINT, else
//  ipc://<ANYRAY_DATA_DIR>/broker.ipc. Written into buf.
const char *ar_env_broker_endpoint (char *buf, size_t size);
//  ANYRAY_DATA_DIR, default ".anyray-data"; created if missing. Returns NULL if it cannot be.
const char *ar_env_data_dir (void);

void ar_env_test (bool verbose);

#endif
