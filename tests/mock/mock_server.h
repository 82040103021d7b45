/*  =========================================================================
    mock_server - the HTTP side of the mock OpenAI upstream

    Runs libmicrohttpd with an epoll thread pool and routes:

        POST   /v1/chat/completions   chat, stream or not (see mock_chat)
        GET    /v1/models             model list
        GET    /v1/models/{id}        one model
        GET    /__mock/requests       recent requests as JSON (see mock_log)
        DELETE /__mock/requests       clear them
        GET    /__mock/stats          {"requests","open_streams","parked"}

    /v1 answers check the API key like the real service when one is set;
    /__mock never does.
    =========================================================================
*/
#ifndef MOCK_SERVER_H_INCLUDED
#define MOCK_SERVER_H_INCLUDED

#include "mock_control.h"

#include <stdbool.h>

typedef struct {
    const char *host;        //  loopback address to bind
    int port;                //  0 = any free port
    const char *key;         //  required bearer key, NULL = no auth
    int threads;             //  MHD worker threads
    bool verbose;            //  MHD error log on stderr
    mock_control_t defaults; //  behaviour when a request says nothing
} mock_config_t;

typedef struct _mock_server_t mock_server_t;

//  Start serving; NULL (with a message on stderr) on failure
mock_server_t *mock_server_new (const mock_config_t *config);

//  Stop serving, end open requests, free
void mock_server_destroy (mock_server_t **self_p);

//  The port actually bound
int mock_server_port (mock_server_t *self);

#endif
