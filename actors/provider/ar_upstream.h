/*  ar_upstream: one curl multi handle for the whole process, driven by the multi socket API.

    Thousands of transfers share one multi handle, so connections (and HTTP/2 streams) are
    reused across requests, and nothing ever blocks: curl tells us which sockets it wants through
    CURLMOPT_SOCKETFUNCTION, we keep them in one epoll set, and the actor loop watches only that
    epoll fd. curl's single timer (CURLMOPT_TIMERFUNCTION) is reported to the owner, who runs
    ar_upstream_timeout when it falls due. A finished transfer is reported through done.
*/
#ifndef AR_UPSTREAM_H
#define AR_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>
#include "ar_clock.h"

#define AR_UPSTREAM_MAXCONNECTS 4096 // idle connections kept for reuse

typedef struct ar_upstream_t ar_upstream_t;

//  A transfer ended (result CURLE_OK or the failure). The handle is still added: call
//  ar_upstream_remove before cleaning it up. Called from ar_upstream_ready or _timeout only.
typedef void (ar_upstream_done_fn) (CURL *easy, CURLcode result, void *arg);
//  When ar_upstream_timeout must run next changed; due < 0 means no timer.
typedef void (ar_upstream_timer_fn) (ar_mono_ms due, void *arg);

ar_upstream_t *ar_upstream_new (ar_upstream_done_fn *done, ar_upstream_timer_fn *timer, void *arg);
//  The owner removes its transfers first.
void ar_upstream_destroy (ar_upstream_t **self_p);

//  The epoll fd to watch for readability.
int ar_upstream_fd (ar_upstream_t *self);

//  Start a configured transfer. Returns 0 or -1.
int ar_upstream_add (ar_upstream_t *self, CURL *easy);
//  Stop a transfer at once (no more bytes read, nothing more bought). Safe to call twice.
void ar_upstream_remove (ar_upstream_t *self, CURL *easy);

//  The epoll fd is readable: act on the ready sockets.
void ar_upstream_ready (ar_upstream_t *self);
//  The timer fell due.
void ar_upstream_timeout (ar_upstream_t *self);
//  When the timer falls due next, or -1.
ar_mono_ms ar_upstream_due (ar_upstream_t *self);

void ar_upstream_test (bool verbose);

#endif
