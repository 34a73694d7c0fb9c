/* The service loop's hooks into what observe.h shows other threads
 * (internal to service/): one call where a counter changes. */
#ifndef SVC_OBSERVE_HOOKS_H
#define SVC_OBSERVE_HOOKS_H

#include <stddef.h>
#include <stdint.h>

typedef struct svc_service svc_service;
typedef struct svc_observe svc_observe;
typedef struct svc_messages svc_messages;

int svc_observe_new(svc_observe **out);
void svc_observe_free(svc_observe *o);

void svc_observe_epoch(svc_service *sv, int64_t images); /* a new epoch row (not a re-report) */
void svc_observe_worker_start(svc_service *sv);
void svc_observe_restart(svc_service *sv);  /* a run queued again after its worker failed */
void svc_observe_db_error(svc_service *sv); /* a write the database refused */
void svc_observe_slots(svc_service *sv);    /* publishes sv->slots */
void svc_observe_message(svc_service *sv, int64_t run_id, const char *line, size_t len);

/* run_messages.c: the per-run rings behind svc_service_messages. */
int svc_messages_new(svc_messages **out);
void svc_messages_free(svc_messages *m);
void svc_messages_add(svc_messages *m, int64_t run_id, const char *line, size_t len);
int svc_messages_get(svc_messages *m, int64_t run_id, char ***lines, size_t *n);

#endif
